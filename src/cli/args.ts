import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

/** One option of a subcommand; `help` feeds `--help`. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  help: string;
  short?: string;
  default?: string | boolean;
  multiple?: boolean;
  valueName?: string; // shown in --help, e.g. "DIR"
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string; // e.g. "vitprune classify [options] IMAGE..."
  options: Record<string, OptionSpec>;
  positionals?: { name: string; min: number };
}

/** Options every subcommand has. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'print one JSON document on stdout (progress stays on stderr)' },
  quiet: { type: 'boolean', help: 'no progress output on stderr' },
  verbose: { type: 'boolean', help: 'print stack traces with errors' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed | 'help' {
  const options = { ...spec.options, ...COMMON_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, parseArgsOption(o)])),
    });
  } catch (err) {
    // Node's messages run over several lines; the unknown-option one ends in a half-quoted hint.
    const { code, message } = err as NodeJS.ErrnoException;
    const unknown = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(message)?.[1] : undefined;
    const text = unknown ? `unknown option '${unknown}' for 'vitprune ${spec.name}'` : message.replace(/\s*\n\s*/g, ' ');
    throw new UsageError(`${text} (see 'vitprune ${spec.name} --help')`);
  }
  if (parsed.values.help) return 'help';
  const min = spec.positionals?.min ?? 0;
  if (parsed.positionals.length < min) {
    throw new UsageError(
      `'vitprune ${spec.name}' expects at least ${min} ${spec.positionals?.name ?? 'argument'}(s), got ${parsed.positionals.length} (see --help)`,
    );
  }
  if (!spec.positionals && parsed.positionals.length > 0) {
    throw new UsageError(`'vitprune ${spec.name}' takes no positional arguments, got '${parsed.positionals[0]}' (see --help)`);
  }
  return { values: parsed.values as Parsed['values'], positionals: parsed.positionals };
}

type ParseArgsOptionConfig = NonNullable<ParseArgsConfig['options']>[string];

/** parseArgs refuses keys present with the value undefined. */
function parseArgsOption(o: OptionSpec): ParseArgsOptionConfig {
  const config: ParseArgsOptionConfig = { type: o.type };
  if (o.short !== undefined) config.short = o.short;
  if (o.multiple !== undefined) config.multiple = o.multiple;
  if (o.default !== undefined) config.default = o.default as string & boolean;
  return config;
}

export function helpText(spec: CommandSpec): string {
  const options = { ...spec.options, ...COMMON_OPTIONS };
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    const dflt = o.default !== undefined && o.type === 'string' ? ` (default: ${o.default})` : '';
    return [flag, o.help + dflt] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [`${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:', ...rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`), ''].join('\n');
}

/** An integer option of at least `min` (default 1: a positive integer), or the default. */
export function intOption(values: Parsed['values'], name: string, fallback?: number, min = 1): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects ${min === 1 ? 'a positive integer' : `an integer ≥ ${min}`}, got '${raw}'`);
  return n;
}

export function stringOption(values: Parsed['values'], name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : undefined;
}

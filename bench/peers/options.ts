/**
 * Command-line handling shared by the benchmark scripts here: parse the options (printing the
 * usage for --help), fail with one line naming the script, read integer options, find --model.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The parsed values of options declared as `T` (string and boolean options, none multiple). */
export type OptionValues<T> = { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : string };

export function benchCommand<T extends NonNullable<ParseArgsConfig['options']>>(name: string, usage: string, options: T) {
  const fail = (message: string): never => {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(1);
  };
  if (process.argv.includes('--help')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  let values: OptionValues<T>;
  try {
    values = parseArgs({ options, allowPositionals: false }).values as OptionValues<T>;
  } catch (e) {
    return fail(`${(e as Error).message}\n${usage}`);
  }
  const intOpt = (raw: string, option: string, min: number): number => {
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) fail(`--${option} expects an integer ≥ ${min}, got '${raw}'\n${usage}`);
    return v;
  };
  return { values, fail, intOpt };
}

/** `npm run` starts scripts in the project root: a relative model folder is taken from where npm was invoked. */
export function modelSpec(spec: string): string {
  const from = process.env.INIT_CWD;
  if (!from || spec.startsWith('random:') || isAbsolute(spec)) return spec;
  const candidate = resolve(from, spec);
  return existsSync(candidate) ? candidate : spec;
}

import { packageVersion } from '../util/package-version.js';
import { VitpruneError } from '../errors.js';
import { helpText, parseCommand, type CommandSpec, type Parsed } from './args.js';
import { benchCommand, benchSpec } from './bench.js';
import { classifyCommand, classifySpec } from './classify.js';
import { closeThreads } from './common.js';
import { evalCommand, evalSpec } from './eval.js';
import { learnLtpCommand, learnLtpSpec } from './learn-ltp.js';
import { tuneCommand, tuneSpec } from './tune.js';
import { compareCommand, compareSpec } from './compare.js';
import { pruneChannelsCommand, pruneChannelsSpec } from './prune-channels.js';
import { visualizeCommand, visualizeSpec } from './visualize.js';
import { traceCommand, traceSpec } from './trace.js';
import { checkCommand, checkSpec } from './check.js';

interface Command {
  spec: CommandSpec;
  /** Resolves to the exit code (undefined: 0); a command that went on past a bad input returns 1. */
  run(parsed: Parsed): Promise<number | void>;
}

const COMMANDS: Command[] = [
  { spec: classifySpec, run: classifyCommand },
  { spec: evalSpec, run: evalCommand },
  { spec: benchSpec, run: benchCommand },
  { spec: tuneSpec, run: tuneCommand },
  { spec: learnLtpSpec, run: learnLtpCommand },
  { spec: compareSpec, run: compareCommand },
  { spec: pruneChannelsSpec, run: pruneChannelsCommand },
  { spec: visualizeSpec, run: visualizeCommand },
  { spec: traceSpec, run: traceCommand },
  { spec: checkSpec, run: checkCommand },
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  return [
    'vitprune: Vision Transformers on CPUs, and zero-shot token pruning.',
    '',
    'Usage: vitprune <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
    '',
    "Run 'vitprune <command> --help' for a command's options, 'vitprune --version' for the version.",
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`vitprune ${packageVersion()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  const verbose = rest.includes('--verbose');
  try {
    if (!command) throw new VitpruneError(`unknown command '${name}': expected one of ${COMMANDS.map((c) => c.spec.name).join(', ')} (see 'vitprune --help')`);
    const parsed = parseCommand(command.spec, rest);
    if (parsed === 'help') {
      process.stdout.write(helpText(command.spec));
      return 0;
    }
    try {
      return (await command.run(parsed)) ?? 0;
    } finally {
      await closeThreads();
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message.split('\n')[0]}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    else if (!(err instanceof VitpruneError)) process.stderr.write('(an unexpected error: run with --verbose for the stack trace)\n');
    return 1;
  }
}

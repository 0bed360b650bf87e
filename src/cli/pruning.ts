import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { listImages, spreadSample } from '../eval/dataset.js';
import { loadImageTensor } from '../image/file.js';
import { denseGmacs } from '../model/gmacs.js';
import type { ViTConfig } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { isLtpThresholdsFile } from '../prune/ltp-thresholds.js';
import { calibrationRun, type MethodOption, type PlanContext, type PruneRequest, type PruningPlan, type TokenMethod } from '../prune/method.js';
import { TOKEN_METHODS, tokenMethod } from '../prune/registry.js';
import { intOption, stringOption, type OptionSpec, type Parsed } from './args.js';

/**
 * The command line's side of token pruning: --method and the flags that choose its settings,
 * read into a request for the method registry (prune/registry.ts). Files the flags name are read
 * here; the methods take values.
 */

const names = TOKEN_METHODS.map((m) => m.name);
const methodsWith = (test: (m: TokenMethod) => boolean) =>
  TOKEN_METHODS.filter(test)
    .map((m) => m.name)
    .join('/');

/** Every method's own options, once each (a name two methods share is one flag). */
const methodOptions = new Map(TOKEN_METHODS.flatMap((m) => m.options.map((o) => [o.name, o] as const)));

/** The flag of an option: its name; a switch on by default is turned off by --no-NAME, one off by default on by --NAME. */
function optionFlag(o: MethodOption): string {
  return o.values === 'boolean' && o.default === true ? `no-${o.name}` : o.name;
}

/** Options of every command that can prune (`--method` and its settings). */
export const METHOD_OPTIONS: Record<string, OptionSpec> = {
  method: { type: 'string', valueName: 'NAME', help: `token pruning method: ${names.join(' | ')} (default: auto with --budget/--gmacs, else none, dense)` },
  keep: { type: 'string', valueName: 'RHO', help: `keep ratio (${methodsWith((m) => m.takesKeep)})` },
  budget: { type: 'string', valueName: 'F', help: 'GMACs as a fraction of dense (the settings are solved to within 1 %)' },
  gmacs: { type: 'string', valueName: 'G', help: 'GMACs as an absolute figure' },
  schedule: { type: 'string', valueName: 'FILE', help: `the method's settings as a JSON file (${methodsWith((m) => m.takesSettings)}; see README)` },
  r: { type: 'string', valueName: 'R', help: 'tome: tokens merged per block (the settings {"r": R})' },
  thresholds: { type: 'string', valueName: 'FILE', help: 'ltp: thresholds learned for this model by vitprune learn-ltp (thresholds.json)' },
  ...Object.fromEntries(
    [...methodOptions.values()].map((o) => {
      const owners = methodsWith((m) => m.options.some((mo) => mo.name === o.name));
      if (o.values === 'boolean') return [optionFlag(o), { type: 'boolean', help: `${owners}: ${o.default ? 'no ' : ''}${o.help}` }];
      const values = o.values === 'integer' ? 'an integer' : o.values === 'number' ? 'a number' : o.values.join(' | ');
      return [o.name, { type: 'string', valueName: o.name.toUpperCase(), help: `${owners}: ${o.help}: ${values} (default ${o.default})` }];
    }),
  ),
  calib: {
    type: 'string',
    valueName: 'DIR',
    help: `unlabelled images per-image methods (${methodsWith((m) => m.counts === 'per-image')}) calibrate on to reach --budget/--gmacs`,
  },
  'calib-samples': { type: 'string', valueName: 'N', help: 'calibration images used, spread evenly over the --calib folder (default 128)' },
};

/** The flags that choose settings, and the methods they apply to. */
const SETTINGS_FLAGS: Record<string, (m: TokenMethod) => boolean> = {
  keep: (m) => m.takesKeep,
  budget: () => true,
  gmacs: () => true,
  schedule: (m) => m.takesSettings,
  r: (m) => m.name === 'tome',
  thresholds: (m) => m.name === 'ltp',
};

function numberOption(values: Parsed['values'], name: string): number {
  const raw = values[name];
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${raw}'`);
  return n;
}

function readJsonFile(option: string, file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${option} file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: expected JSON, found a syntax error (${(err as Error).message})`);
  }
}

/** The request the settings flags make for `method`. */
function settingsRequest(values: Parsed['values'], method: TokenMethod, cfg: ViTConfig): PruneRequest {
  const allowed = Object.keys(SETTINGS_FLAGS).filter((flag) => SETTINGS_FLAGS[flag](method));
  const given = Object.keys(SETTINGS_FLAGS).filter((flag) => values[flag] !== undefined);
  const list = (flags: string[]) => flags.map((f) => `--${f}`).join(', ');
  if (given.length !== 1) throw new UsageError(`--method ${method.name} needs exactly one of ${list(allowed)}; found ${given.length ? list(given) : 'none'}`);
  const [flag] = given;
  if (!allowed.includes(flag)) throw new UsageError(`--method ${method.name} takes ${list(allowed)}, not --${flag}`);
  if (flag === 'keep') return { keep: numberOption(values, 'keep') };
  if (flag === 'budget') return { budget: numberOption(values, 'budget') };
  if (flag === 'gmacs') return { budget: numberOption(values, 'gmacs') / denseGmacs(cfg) };
  if (flag === 'r') return { settings: { r: numberOption(values, 'r') }, settingsSource: '--r' };
  const file = values[flag] as string;
  const settings = readJsonFile(`--${flag}`, file);
  if (flag === 'thresholds' && !isLtpThresholdsFile(settings)) {
    throw new UsageError(
      `--thresholds expects a thresholds file of vitprune learn-ltp (it names the "model" it was learned for), found ${file} without "model"; bare settings go to --schedule`,
    );
  }
  return { settings, settingsSource: file }; // ltp checks a thresholds file's model and depth
}

/** The method's own options given as flags, as values. */
function methodOptionValues(values: Parsed['values'], method: TokenMethod): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [name, known] of methodOptions) {
    const flag = optionFlag(known);
    const raw = values[flag];
    if (raw === undefined) continue;
    const option = method.options.find((o) => o.name === name);
    if (!option) {
      const owners = methodsWith((m) => m.options.some((o) => o.name === name));
      throw new UsageError(`--${flag} is not an option of --method ${method.name} (it applies to ${owners})`);
    }
    if (option.values === 'boolean') options[name] = flag === name;
    else if (option.values === 'integer' || option.values === 'number') {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} expects a number, got '${raw}'`);
      options[name] = n;
    } else options[name] = raw;
  }
  return options;
}

/** Calibration for a per-image method asked for a budget: --calib DIR, images spread over the folder. */
function calibration(values: Parsed['values'], method: TokenMethod, request: PruneRequest, runner: ViTRunner): PlanContext {
  if (method.counts !== 'per-image' || request.budget === undefined) return {};
  const dir = stringOption(values, 'calib');
  if (!dir) {
    throw new UsageError(
      `--method ${method.name} reaches --budget/--gmacs by calibrating on unlabelled images: give --calib DIR (or its settings with --schedule)`,
    );
  }
  const files = spreadSample(listImages(dir), intOption(values, 'calib-samples', 128)!);
  return {
    calibration: calibrationRun(
      runner,
      files.map((f) => loadImageTensor(f, runner.config.preprocess)),
    ),
  };
}

/** The pruning plan the options ask for on `runner`'s model, or null for the dense model. */
export async function pruningFromOptions(values: Parsed['values'], runner: ViTRunner): Promise<PruningPlan | null> {
  // --budget or --gmacs alone: the method that measured best at that budget (prune/auto.ts).
  const budgetAlone = values.method === undefined && (values.budget !== undefined || values.gmacs !== undefined);
  const name = budgetAlone ? 'auto' : (values.method as string | undefined);
  if (name === undefined) {
    const stray = Object.keys(METHOD_OPTIONS).find((k) => values[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --method (one of ${names.join(', ')})`);
    return null;
  }
  if (!names.includes(name)) throw new UsageError(`--method expects one of ${names.join(', ')}, got '${name}'`);
  const method = tokenMethod(name);
  const cfg = runner.config;
  const request = { ...settingsRequest(values, method, cfg), options: methodOptionValues(values, method) };
  return method.plan(cfg, request, calibration(values, method, request, runner));
}

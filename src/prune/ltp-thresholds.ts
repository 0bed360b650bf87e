import type { ViTConfig } from '../model/types.js';
import type { LtpThresholds } from './ltp.js';
import { ScheduleError } from '../errors.js';

/**
 * The thresholds file `vitprune learn-ltp` writes (thresholds.json), which method ltp takes as its
 * settings (`--method ltp --thresholds FILE`, `compare --methods ltp-learned --thresholds FILE`):
 *
 *   {
 *     "theta": [θ_1, …, θ_L],        one per block; 0 = the block does not prune
 *     "unit": "mean" | "absolute",   θ in multiples of the mean score 1/n, or as LTP compares it
 *     "model": "deit_tiny_patch16_224",                       what it was learned for (checked)
 *     "budget": 0.7,                                          the GMACs fraction asked for
 *     "calibration": { … }, "initial": { … }, "learning": { … }   how it was learned (free-form)
 *   }
 */

export interface LtpThresholdsFile extends LtpThresholds {
  model: string; // ViTConfig.architecture
  budget: number;
  calibration?: unknown;
  initial?: unknown;
  learning?: unknown;
}

const KEYS = ['theta', 'unit', 'model', 'budget', 'calibration', 'initial', 'learning'];

export function ltpThresholdsToJson(file: LtpThresholdsFile): string {
  return JSON.stringify(file, null, 2) + '\n';
}

/** The thresholds of a thresholds.json text (`source` names it in errors), checked against the model of `cfg`. */
export function parseLtpThresholds(text: string, source: string, cfg: ViTConfig): LtpThresholdsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScheduleError(`${source}: expected LTP thresholds as JSON, found a syntax error (${(e as Error).message})`);
  }
  return ltpThresholdsFromJson(json, source, cfg);
}

/** Whether a settings document is a thresholds file (it names the model it was learned for) rather than bare {"theta", "unit"}. */
export function isLtpThresholdsFile(json: unknown): boolean {
  return typeof json === 'object' && json !== null && !Array.isArray(json) && 'model' in json;
}

/**
 * The thresholds file of a parsed JSON document (`source` names it in errors), checked against
 * `cfg`: learned for its architecture (`model`), one threshold per block (its depth).
 */
export function ltpThresholdsFromJson(json: unknown, source: string, cfg: ViTConfig): LtpThresholdsFile {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ScheduleError(
      `${source}: expected an object { "theta": [...], "unit": ..., "model": ..., "budget": ... }, found ${JSON.stringify(json)?.slice(0, 60)}`,
    );
  }
  const file = json as Record<string, unknown>;
  const unknown = Object.keys(file).find((k) => !KEYS.includes(k));
  if (unknown !== undefined) throw new ScheduleError(`${source}: unexpected key "${unknown}" (expected ${KEYS.join(', ')})`);
  const { theta, unit, model, budget } = file;
  if (!Array.isArray(theta) || theta.length === 0 || !theta.every((t) => typeof t === 'number' && Number.isFinite(t) && t >= 0)) {
    throw new ScheduleError(`${source}: "theta": expected an array of finite numbers ≥ 0 (one per block), found ${JSON.stringify(theta)?.slice(0, 80)}`);
  }
  if (unit !== 'mean' && unit !== 'absolute') throw new ScheduleError(`${source}: "unit": expected "mean" or "absolute", found ${JSON.stringify(unit)}`);
  if (typeof model !== 'string')
    throw new ScheduleError(`${source}: "model": expected the architecture the thresholds were learned for, found ${JSON.stringify(model)}`);
  if (!(typeof budget === 'number' && budget > 0 && budget <= 1))
    throw new ScheduleError(`${source}: "budget": expected a GMACs fraction in (0, 1], found ${JSON.stringify(budget)}`);
  if (model !== cfg.architecture) throw new ScheduleError(`${source}: thresholds learned for ${model}, the model is ${cfg.architecture}`);
  if (theta.length !== cfg.depth) throw new ScheduleError(`${source}: expected one threshold per block (${cfg.depth}), found ${theta.length}`);
  return { ...file, theta: theta as number[], unit, model, budget } as LtpThresholdsFile;
}

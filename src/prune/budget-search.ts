import type { ViTConfig } from '../model/types.js';
import { denseGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';

export interface BudgetMatch<T> {
  setting: T;
  gmacs: number;
  fraction: number; // gmacs / dense GMACs
}

/**
 * Of `candidates` (in order of preference), the one whose GMACs are closest to `fraction` ×
 * dense; among equally close ones the first. Throws ScheduleError naming `what` unless it is
 * within a relative `tolerance` (default 1 %).
 */
export function closestToBudget<T>(
  cfg: ViTConfig,
  fraction: number,
  what: string,
  candidates: Iterable<T>,
  gmacsOf: (setting: T) => number,
  options: { tolerance?: number } = {},
): BudgetMatch<T> {
  if (!(fraction > 0 && fraction <= 1)) throw new ScheduleError(`GMACs budget: expected a fraction of the dense model in (0, 1], found ${fraction}`);
  const tolerance = options.tolerance ?? 0.01;
  const dense = denseGmacs(cfg);
  let best: BudgetMatch<T> | null = null;
  let bestMiss = Infinity;
  for (const setting of candidates) {
    const gmacs = gmacsOf(setting);
    const miss = Math.abs(gmacs / dense / fraction - 1);
    if (miss < bestMiss - 1e-12) {
      best = { setting, gmacs, fraction: gmacs / dense };
      bestMiss = miss;
    }
  }
  if (!best || bestMiss > tolerance) {
    throw new ScheduleError(
      `GMACs budget: expected ${what} within ${tolerance * 100} % of ${fraction} × dense, found at best ${best?.fraction.toFixed(4)} × dense (${JSON.stringify(best?.setting)})`,
    );
  }
  return best;
}

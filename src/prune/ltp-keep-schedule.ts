import type { ViTConfig } from '../model/types.js';
import { prefixTokens } from '../model/types.js';
import { denseGmacs, initialTokens, modelGmacs, type BlockTokens } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';

/**
 * A keep schedule for calibrateLtpQuantiles (docs/algorithms.md §4.5 option 1) that meets a GMACs
 * budget: every block from the second keeps the same fraction k of the patch tokens alive at it
 * (the first keeps all, as LTP's ramp does), so m patches leave block l as m·k^l, and k is
 * bisected until the GMACs of these (fractional) token counts are `fraction` × dense.
 */
export function geometricKeepSchedule(cfg: ViTConfig, fraction: number): number[] {
  if (!(fraction > 0 && fraction < 1)) throw new ScheduleError(`GMACs budget: expected a fraction of the dense model in (0, 1), found ${fraction}`);
  const prefix = prefixTokens(cfg);
  const patches = initialTokens(cfg) - prefix;
  const tokens = (k: number): BlockTokens[] =>
    Array.from({ length: cfg.depth }, (_, l) => ({
      attention: prefix + patches * k ** Math.max(l - 1, 0),
      mlp: prefix + patches * k ** l,
    }));
  const cost = (k: number) => modelGmacs(cfg, tokens(k)) / denseGmacs(cfg);
  if (cost(0) > fraction)
    throw new ScheduleError(`GMACs budget: expected at least ${cost(0).toFixed(4)} × dense (every patch pruned after the first attention), found ${fraction}`);
  let lo = 0; // cost(lo) ≤ fraction
  let hi = 1; // cost(hi) ≥ fraction
  for (let step = 0; step < 60; step++) {
    const mid = (lo + hi) / 2;
    if (cost(mid) > fraction) hi = mid;
    else lo = mid;
  }
  return Array.from({ length: cfg.depth }, (_, l) => (l === 0 ? 1 : lo));
}

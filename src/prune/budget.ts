import { ScheduleError } from '../errors.js';

/**
 * The one budget solver: the settings of a method whose GMACs per image are a given fraction of
 * the dense model's, within a relative tolerance (1 %).
 *
 * A method offers a knob: a one-parameter family of settings, position t, from the dense model
 * (t = `dense`, no pruning) to its most pruning setting (t = `sparse`), whose GMACs never grow as t
 * moves away from `dense` (ρ of a keep ratio falling from 1, ToMe's r rising from 0, …). The
 * solver brackets the target between a position above it and one at or below it, and bisects:
 *
 *   exact costs (counted from token counts, cheap): down to adjacent positions (integer knobs)
 *     or 1e-12 (continuous ones), and takes the closest setting seen;
 *   measured costs (mean GMACs over calibration images, each a pass over them): the bracket grows
 *     from `measured.start` by doubling, and the search stops at the first setting within the
 *     tolerance, after at most `measured.maxRuns` measurements.
 *
 * Equally close settings: the one seen last. A knob may then name a preferred equal position
 * (`canonical`: e.g. the keep rate with the fewest decimals among those giving the same token
 * counts). A method may offer several knobs, coarse first: the first with a setting within the
 * tolerance wins (ToMe: a constant r, then r and r + 1 mixed over the blocks).
 */
export interface BudgetKnob<S> {
  readonly dense: number; // position of the dense model: its GMACs are the dense model's, never evaluated
  readonly sparse: number; // position of the most pruning setting
  readonly integer: boolean; // positions are integers (a grid); else any number in between
  /** Settings at position t. */
  settings(t: number): S;
  /** GMACs per image of `settings`: counted (a number) or measured (a promise). */
  gmacs(settings: S): number | Promise<number>;
  /** A measured knob: where the search starts and how many measurements it may take. */
  readonly measured?: { readonly start: number; readonly maxRuns: number };
  /** The preferred position among those equivalent to t (whose GMACs are `gmacs`). */
  canonical?(t: number, gmacs: number): number;
  /** The settings as a phrase for messages, e.g. "keep rate 0.7". */
  describe(settings: S): string;
}

export interface BudgetSolution<S> {
  position: number; // t of the knob
  settings: S;
  gmacs: number; // GMACs per image of the settings (for a measured knob: on the calibration images)
  fraction: number; // gmacs / dense GMACs
}

interface Probe<S> {
  t: number;
  settings: S;
  gmacs: number;
}

/** Settings of `knobs` (tried in order) costing `fraction` × `denseGmacs` within `tolerance`; ScheduleError when none does. */
export async function solveBudget<S>(denseGmacs: number, fraction: number, knobs: readonly BudgetKnob<S>[], tolerance = 0.01): Promise<BudgetSolution<S>> {
  if (!(fraction > 0 && fraction <= 1)) throw new ScheduleError(`GMACs budget: expected a fraction of the dense model in (0, 1], found ${fraction}`);
  const target = fraction * denseGmacs;
  const miss = (p: Probe<S>) => Math.abs(p.gmacs / target - 1);
  let closest: { knob: BudgetKnob<S>; probe: Probe<S> } | null = null;
  for (const knob of knobs) {
    const probe = await searchKnob(knob, target, denseGmacs, tolerance);
    if (!closest || miss(probe) <= miss(closest.probe)) closest = { knob, probe };
    if (miss(probe) <= tolerance) {
      const t = knob.canonical?.(probe.t, probe.gmacs) ?? probe.t;
      const settings = t === probe.t ? probe.settings : knob.settings(t);
      return { position: t, settings, gmacs: probe.gmacs, fraction: probe.gmacs / denseGmacs };
    }
  }
  const best = closest!;
  throw new ScheduleError(
    `GMACs budget: expected settings within ${tolerance * 100} % of ${fraction} × dense (${target.toFixed(4)} GMACs)` +
      `${best.knob.measured ? ' on the calibration images' : ''}, ` +
      `found at best ${(best.probe.gmacs / denseGmacs).toFixed(4)} × dense (${best.knob.describe(best.probe.settings)})`,
  );
}

/** The closest setting of one knob the search finds (measured knobs: the first within the tolerance, if any). */
async function searchKnob<S>(knob: BudgetKnob<S>, target: number, denseGmacs: number, tolerance: number): Promise<Probe<S>> {
  const miss = (p: Probe<S>) => Math.abs(p.gmacs / target - 1);
  let runs = 0;
  let best: Probe<S> = { t: knob.dense, settings: knob.settings(knob.dense), gmacs: denseGmacs };
  const probe = async (t: number): Promise<Probe<S>> => {
    runs++;
    const settings = knob.settings(t);
    const p = { t, settings, gmacs: await knob.gmacs(settings) };
    if (miss(p) <= miss(best)) best = p;
    return p;
  };
  if (denseGmacs <= target) return best;

  // The bracket: `above` costs more than the target, `below` at most the target.
  let above: Probe<S> = best;
  let below: Probe<S> | null = null;
  if (knob.measured) {
    const { start, maxRuns } = knob.measured;
    let p = await probe(start);
    while (p.gmacs > target && p.t < knob.sparse && runs < maxRuns) {
      above = p;
      p = await probe(2 * p.t);
    }
    if (p.gmacs > target) above = p;
    else below = p;
  } else {
    const far = await probe(knob.sparse);
    if (far.gmacs >= target) return far;
    below = far;
  }

  const maxRuns = knob.measured?.maxRuns ?? Infinity;
  const splittable = (a: number, b: number) => (knob.integer ? Math.abs(a - b) > 1 : Math.abs(a - b) > 1e-12);
  while (below && splittable(above.t, below.t) && runs < maxRuns && !(knob.measured && miss(best) <= tolerance)) {
    const mid = await probe(knob.integer ? Math.floor((above.t + below.t) / 2) : (above.t + below.t) / 2);
    if (mid.gmacs > target) above = mid;
    else below = mid;
  }
  return best;
}

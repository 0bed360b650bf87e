import type { ViTConfig } from '../model/types.js';
import { numPatches } from '../model/types.js';
import { seededRandom } from '../model/random.js';
import { denseGmacs } from '../model/gmacs.js';
import { ScheduleError } from '../errors.js';
import { solveBudget } from './budget.js';
import { keepRatioKnob, maxSimilarityDrops, scheduleGmacs, type Placement, type PruneSchedule } from './schedule.js';

/**
 * Monte-Carlo search over Zero-TPrune schedules at a GMACs budget (the paper chooses its
 * per-budget configuration by a Monte-Carlo search; docs/algorithms.md §1.9). Our search space [I]:
 *
 *   - 2…depth−1 pruning layers after distinct blocks 1…depth−1,
 *   - per layer a relative removal weight w ∈ [0.2, 1] and an S-stage share σ ∈ [0, 1],
 *   - one global scale α bisected so the schedule's GMACs land within ±1 % of the budget:
 *     a layer seeing m patch tokens removes r = round(m · min(0.9, α·w)), rS = min(⌊σ·r⌋, ⌊m/2⌋).
 *
 * Candidates are scored without labels by a caller-supplied function (agreement with the dense
 * model's top-1 and KL to its outputs on calibration images). Successive halving spends the
 * image budget on the promising candidates: every candidate is scored on a few images, the best
 * quarter on twice as many, and so on until the survivors have seen every image.
 */

export interface CandidateScore {
  agreement: number; // share of images whose top-1 equals the dense model's
  kl: number; // mean KL(dense ‖ pruned)
}

/** Score a schedule on the first `images` calibration images. */
export type ScoreFunction = (schedule: PruneSchedule, images: number) => Promise<CandidateScore>;

export interface TuneOptions {
  budget: number; // GMACs as a fraction of dense
  candidates: number; // random schedules sampled (besides the presets)
  images: number; // calibration images available
  seed?: number;
  tolerance?: number; // relative GMACs tolerance, default 0.01
  firstRoundImages?: number; // images per candidate in the first round, default 16
  placement?: Placement; // where the schedules' layers run, for their GMACs (schedule.ts); default 'after-block'
  onProgress?: (done: number, total: number) => void;
}

export interface TunedCandidate {
  schedule: PruneSchedule;
  gmacs: number;
  fraction: number;
  score: CandidateScore;
  images: number; // calibration images the score is over
  origin: string; // "preset …" or "random #i"
}

export interface TuneResult {
  best: TunedCandidate;
  baseline: TunedCandidate; // the untuned preset (keep ratio after 3/6/9, S/I 50/50) at the same budget
  evaluated: number; // candidates scored
}

/** Lower is better: KL first (smooth, low-noise), agreement breaks near-ties. */
function objective(s: CandidateScore): number {
  return s.kl - 0.01 * s.agreement;
}

/**
 * A random schedule at the budget (null when the sampled shape cannot hit it within tolerance).
 */
export function sampleSchedule(
  cfg: ViTConfig,
  budget: number,
  rand: () => number,
  tolerance = 0.01,
  placement: Placement = 'after-block',
): PruneSchedule | null {
  const layers = 2 + Math.floor(rand() * (cfg.depth - 2));
  const blocks = new Set<number>();
  while (blocks.size < Math.min(layers, cfg.depth - 1)) blocks.add(1 + Math.floor(rand() * (cfg.depth - 1)));
  const after = [...blocks].sort((a, b) => a - b);
  const weights = after.map(() => 0.2 + 0.8 * rand());
  const sShares = after.map(() => rand());
  const build = (alpha: number): PruneSchedule => {
    let m = numPatches(cfg);
    const steps = after.map((block, i) => {
      const r = Math.round(m * Math.min(0.9, alpha * weights[i]));
      const rS = Math.min(Math.floor(sShares[i] * r), maxSimilarityDrops(m));
      m -= r;
      return { after: block, rS, rI: r - rS };
    });
    return { steps: steps.filter((s) => s.rS + s.rI > 0) };
  };
  const target = budget * denseGmacs(cfg);
  let lo = 0; // cost(lo) ≥ target
  let hi = 4; // cost(hi) ≤ target, if reachable
  if (scheduleGmacs(cfg, build(hi), placement) > target) return null;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (scheduleGmacs(cfg, build(mid), placement) > target) lo = mid;
    else hi = mid;
  }
  for (const alpha of [hi, lo]) {
    const s = build(alpha);
    if (Math.abs(scheduleGmacs(cfg, s, placement) / target - 1) <= tolerance) return s;
  }
  return null;
}

/**
 * "Constant r" schedules (docs/algorithms.md §1.9): after each of blocks 1…depth−1 drop r tokens,
 * the first k of them r + 1, a share σ by the S-stage; the (r, k) closest to the budget, or null.
 */
export function constantRateSchedule(
  cfg: ViTConfig,
  budget: number,
  sShare: number,
  tolerance = 0.01,
  placement: Placement = 'after-block',
): PruneSchedule | null {
  const target = budget * denseGmacs(cfg);
  let best: PruneSchedule | null = null;
  let bestError = tolerance;
  for (let r = 0; r * (cfg.depth - 1) < numPatches(cfg); r++) {
    for (let k = 0; k < cfg.depth - 1; k++) {
      let m = numPatches(cfg);
      const steps = [];
      for (let b = 1; b < cfg.depth && m > 1; b++) {
        const remove = Math.min(b <= k ? r + 1 : r, m - 1);
        const rS = Math.min(Math.floor(sShare * remove), maxSimilarityDrops(m));
        if (remove > 0) steps.push({ after: b, rS, rI: remove - rS });
        m -= remove;
      }
      const schedule = { steps };
      const error = Math.abs(scheduleGmacs(cfg, schedule, placement) / target - 1);
      if (error <= bestError) [best, bestError] = [schedule, error];
    }
  }
  return best;
}

/** Presets worth trying at every budget: keep-ratio schedules at several placements and S/I splits, and constant-r ones. */
export async function presetSchedules(
  cfg: ViTConfig,
  budget: number,
  tolerance = 0.01,
  placement: Placement = 'after-block',
): Promise<{ origin: string; schedule: PruneSchedule }[]> {
  const placements = [
    [3, 6, 9],
    [2, 4, 6, 8, 10],
    [3, 5, 7, 9],
    [4, 7, 10],
    [1, 3, 5, 7, 9, 11],
  ].filter((p) => p.every((b) => b < cfg.depth));
  const out: { origin: string; schedule: PruneSchedule }[] = [];
  for (const after of placements) {
    for (const sSplit of [0.5, 0.75, 1]) {
      try {
        const { settings: schedule, position: rho } = await solveBudget(denseGmacs(cfg), budget, [keepRatioKnob(cfg, { after, sSplit, placement })], tolerance);
        out.push({ origin: `preset keep ${rho} after ${after.join('/')} S-share ${sSplit}`, schedule });
      } catch (err) {
        if (!(err instanceof ScheduleError)) throw err;
      }
    }
  }
  for (const sShare of [0.5, 0.75, 1]) {
    const schedule = constantRateSchedule(cfg, budget, sShare, tolerance, placement);
    if (schedule) out.push({ origin: `preset constant r ${schedule.steps.map((s) => s.rS + s.rI).join(',')} S-share ${sShare}`, schedule });
  }
  return out;
}

export async function tuneSchedule(cfg: ViTConfig, score: ScoreFunction, opts: TuneOptions): Promise<TuneResult> {
  const tolerance = opts.tolerance ?? 0.01;
  const rand = seededRandom(opts.seed ?? 1);
  const dense = denseGmacs(cfg);
  const placement = opts.placement ?? 'after-block';
  const presets = await presetSchedules(cfg, opts.budget, tolerance, placement);
  if (presets.length === 0) throw new ScheduleError(`no keep-ratio schedule lands within ${tolerance * 100} % of ${opts.budget} × dense GMACs`);
  let pool: { origin: string; schedule: PruneSchedule; score?: CandidateScore; images?: number }[] = [...presets];
  for (let i = 0, tries = 0; i < opts.candidates && tries < opts.candidates * 20; tries++) {
    const schedule = sampleSchedule(cfg, opts.budget, rand, tolerance, placement);
    if (schedule) pool.push({ origin: `random #${i++}`, schedule });
  }

  // Successive halving over the calibration images.
  const rounds: number[] = [];
  for (let n = Math.min(opts.firstRoundImages ?? 16, opts.images); ; n = Math.min(2 * n, opts.images)) {
    rounds.push(n);
    if (n === opts.images) break;
  }
  let total = 0;
  let size = pool.length;
  for (let r = 0; r < rounds.length; r++) {
    total += size * rounds[r];
    size = r === rounds.length - 2 ? Math.min(size, 4) : Math.max(4, Math.ceil(size / 4));
  }
  let done = 0;
  let evaluated = 0;
  for (let r = 0; r < rounds.length; r++) {
    for (const c of pool) {
      c.score = await score(c.schedule, rounds[r]);
      c.images = rounds[r];
      done += rounds[r];
      evaluated++;
      opts.onProgress?.(done, total);
    }
    pool.sort((a, b) => objective(a.score!) - objective(b.score!));
    const last = r === rounds.length - 1;
    if (!last) pool = pool.slice(0, r === rounds.length - 2 ? 4 : Math.max(4, Math.ceil(pool.length / 4)));
  }
  const finish = (c: (typeof pool)[number]): TunedCandidate => {
    const gmacs = scheduleGmacs(cfg, c.schedule, placement);
    return { schedule: c.schedule, gmacs, fraction: gmacs / dense, score: c.score!, images: c.images!, origin: c.origin };
  };
  // The untuned 3/6/9 50/50 preset, scored on every image, for comparison.
  const untuned = presets[0];
  const untunedScore = pool.find((c) => c.origin === untuned.origin)?.score ?? (await score(untuned.schedule, opts.images));
  const baseline = finish({ ...untuned, score: untunedScore, images: opts.images });
  return { best: finish(pool[0]), baseline, evaluated };
}

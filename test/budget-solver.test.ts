import { describe, expect, it } from 'vitest';
import { timmArchitectureDims } from '../src/model/config.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { configFromDims } from '../src/model/random.js';
import { solveBudget, type BudgetKnob } from '../src/prune/budget.js';
import { planPruning } from '../src/prune/registry.js';
import { keepRatioKnob } from '../src/prune/schedule.js';
import { presetSchedules } from '../src/prune/tune.js';

/**
 * The settings the budget solvers chose, pinned: for the budgets that compare (0.95 … 0.62) and
 * the README (0.65, 0.653) use, on three architectures, every input-independent method must keep
 * choosing exactly these settings (a change would change every published figure).
 * Values recorded from the four solvers of commit 5b01301 (keep-ratio bisection, ToMe's constant
 * then mixed r, EViT's keep-rate grid), which the one solver of budget.ts replaced; the GMACs of
 * a setting depend on the architecture only. LTP's calibrated settings depend on the images:
 * scripts/fingerprint.ts records them on the shared data.
 *
 * Row: [Zero-TPrune and random schedule "after:rS+rI …", ToMe r ("r*blocks …"), EViT keep rate,
 * top-k keep rate, the keep ratio ρ the Zero-TPrune schedule was solved from].
 */
type Row = [string, string, number, number, number];
const PINNED: Record<string, Record<number, Row>> = {
  deit_tiny_patch16_224: {
    0.95: ['3:3+3 6:3+3 9:3+3', '2*3 1*9', 0.958, 0.963, 0.967],
    0.87: ['3:8+9 6:7+8 9:7+7', '4', 0.9, 0.905, 0.913],
    0.78: ['3:15+15 6:12+13 9:10+11', '7*5 6*7', 0.824, 0.831, 0.844],
    0.7: ['3:21+22 6:17+17 9:13+13', '9', 0.751, 0.756, 0.776],
    0.65: ['3:26+27 6:19+19 9:14+14', '11', 0.696, 0.703, 0.72959],
    0.653: ['3:26+26 6:19+19 9:14+14', '11*5 10*7', 0.7, 0.706, 0.73],
    0.62: ['3:29+30 6:20+21 9:14+14', '12*6 11*6', 0.66, 0.665, 0.69897959],
  },
  deit_small_patch16_224: {
    0.95: ['3:3+3 6:3+3 9:3+3', '2*4 1*8', 0.958, 0.963, 0.9643],
    0.87: ['3:8+9 6:8+8 9:7+7', '4', 0.894, 0.901, 0.91],
    0.78: ['3:15+16 6:13+13 9:11+11', '7', 0.822, 0.827, 0.84],
    0.7: ['3:22+23 6:17+17 9:13+13', '10*2 9*10', 0.742, 0.75, 0.77],
    0.65: ['3:27+27 6:19+20 9:14+14', '11', 0.69, 0.698, 0.72],
    0.653: ['3:26+27 6:19+20 9:14+14', '11', 0.694, 0.702, 0.7245],
    0.62: ['3:30+30 6:21+21 9:14+15', '12', 0.656, 0.664, 0.69],
  },
  deit_tiny_distilled_patch16_224: {
    0.95: ['3:3+3 6:3+3 9:3+3', '2*3 1*9', 0.958, 0.963, 0.967],
    0.87: ['3:8+9 6:7+8 9:7+7', '4', 0.898, 0.904, 0.913],
    0.78: ['3:15+15 6:12+13 9:11+11', '7*5 6*7', 0.824, 0.831, 0.84397],
    0.7: ['3:21+22 6:17+17 9:13+13', '10*1 9*11', 0.75, 0.751, 0.776],
    0.65: ['3:26+27 6:19+19 9:14+14', '11', 0.694, 0.702, 0.7273],
    0.653: ['3:26+27 6:19+19 9:14+14', '11*6 10*6', 0.696, 0.705, 0.72959],
    0.62: ['3:29+30 6:20+21 9:14+15', '12', 0.659, 0.665, 0.694],
  },
};

/** The keep ratios of tune's keep-ratio presets (placements 3/6/9, 2/4/…/10, 3/5/7/9, 4/7/10, 1/3/…/11) on DeiT-Tiny. */
const PRESET_RHOS: Record<number, string[]> = {
  0.87: ['0.913', '0.9462', '0.934', '0.8977', '0.9541'],
  0.7: ['0.776', '0.862245', '0.8265', '0.727', '0.8851'],
};

function steps(text: string): { after: number; rS: number; rI: number }[] {
  return text.split(' ').map((s) => {
    const [after, removed] = s.split(':');
    const [rS, rI] = removed.split('+').map(Number);
    return { after: Number(after), rS, rI };
  });
}

function tomeR(text: string): number | number[] {
  const runs = text.split(' ').map((s) => s.split('*').map(Number));
  return runs.length === 1 && runs[0].length === 1 ? runs[0][0] : runs.flatMap(([r, count]) => Array.from({ length: count }, () => r));
}

describe('budget solvers pick the pinned settings', () => {
  for (const [architecture, rows] of Object.entries(PINNED)) {
    const cfg = configFromDims(timmArchitectureDims(architecture), architecture);
    for (const [budget, [schedule, r, evit, topk, rho]] of Object.entries(rows)) {
      it(`${architecture} at ${budget}`, async () => {
        const b = Number(budget);
        const settings = async (method: string, options?: Record<string, unknown>) => (await planPruning(cfg, { method, budget: b, options })).settings;
        // The schedules pinned are the paper's placement's (pre-MLP solves other schedules for the same budget).
        const paper = { placement: 'after-block' };
        expect(await settings('zero-tprune', paper)).toEqual({ steps: steps(schedule), ablation: 'full', ...paper });
        expect(await settings('random', paper)).toEqual({ steps: steps(schedule), seed: 0, ...paper });
        expect(await settings('tome')).toEqual({ r: tomeR(r) });
        expect(await settings('evit')).toEqual({ keepRate: evit });
        expect(await settings('topk')).toEqual({ keepRate: topk });
        expect((await solveBudget(denseGmacs(cfg), b, [keepRatioKnob(cfg)])).position).toBe(rho);
      });
    }
  }

  it("tune's keep-ratio presets on DeiT-Tiny", async () => {
    const cfg = configFromDims(timmArchitectureDims('deit_tiny_patch16_224'), 'deit_tiny_patch16_224');
    for (const [budget, rhos] of Object.entries(PRESET_RHOS)) {
      const origins = (await presetSchedules(cfg, Number(budget))).map((p) => p.origin).filter((o) => o.startsWith('preset keep'));
      expect(origins.filter((_, i) => i % 3 === 0).map((o) => o.split(' ')[2])).toEqual(rhos);
    }
  });
});

describe('solveBudget', () => {
  /** A knob over t = 0…100 whose cost falls from 100 (dense) by 3 per step of 4 positions. */
  const steps = (calls: number[]): BudgetKnob<number> => ({
    dense: 0,
    sparse: 100,
    integer: true,
    settings: (t) => t,
    gmacs(t) {
      calls.push(t);
      return 100 - 3 * Math.floor(t / 4);
    },
    canonical: (t) => t - (t % 4),
    describe: (t) => `t = ${t}`,
  });

  it('exact costs: the closest setting, reported at its canonical position', async () => {
    const s = await solveBudget(100, 0.7, [steps([])]);
    expect(s).toEqual({ position: 40, settings: 40, gmacs: 70, fraction: 0.7 });
    expect((await solveBudget(100, 1, [steps([])])).position).toBe(0); // the dense end, never evaluated
    await expect(solveBudget(100, 0.2, [steps([])])).rejects.toThrow(
      /within 1 % of 0\.2 × dense \(20\.0000 GMACs\), found at best 0\.2500 × dense \(t = 100\)/,
    );
  });

  it('measured costs: the bracket grows by doubling from the start, the search stops at the first setting within tolerance', async () => {
    const calls: number[] = [];
    const knob = { ...steps(calls), integer: false, canonical: undefined, measured: { start: 1, maxRuns: 40 } };
    const s = await solveBudget(100, 0.7, [knob], 0.02);
    expect(calls.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 32]);
    expect(Math.abs(s.fraction / 0.7 - 1)).toBeLessThanOrEqual(0.02);
    expect(calls.at(-1)).toBe(s.position);
    const capped: number[] = [];
    await expect(solveBudget(100, 0.7, [{ ...steps(capped), integer: false, measured: { start: 1, maxRuns: 3 } }], 0.001)).rejects.toThrow(
      /on the calibration images/,
    );
    expect(capped).toEqual([1, 2, 4]);
  });

  it('knobs are tried coarse first: a finer one only when the coarse one misses the tolerance', async () => {
    const coarse: BudgetKnob<string> = {
      dense: 0,
      sparse: 10,
      integer: true,
      settings: (t) => `coarse ${t}`,
      gmacs: (s) => 100 - 10 * Number(s.split(' ')[1]),
      describe: (s) => s,
    };
    const fine: BudgetKnob<string> = { ...coarse, sparse: 100, settings: (t) => `fine ${t}`, gmacs: (s) => 100 - Number(s.split(' ')[1]) };
    expect((await solveBudget(100, 0.7, [coarse, fine])).settings).toBe('coarse 3');
    expect((await solveBudget(100, 0.65, [coarse, fine])).settings).toBe('fine 35');
  });
});

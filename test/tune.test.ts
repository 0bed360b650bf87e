import { describe, expect, it } from 'vitest';
import { configFromDims, seededRandom } from '../src/model/random.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { scheduleGmacs, validateSchedule, type PruneSchedule } from '../src/prune/schedule.js';
import { presetSchedules, sampleSchedule, tuneSchedule } from '../src/prune/tune.js';

const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });

describe('Monte-Carlo schedule search', () => {
  it('samples valid schedules within ±1 % of the budget', () => {
    const rand = seededRandom(5);
    let hits = 0;
    for (let i = 0; i < 200; i++) {
      const s = sampleSchedule(deitT, 0.653, rand);
      if (!s) continue;
      hits++;
      validateSchedule(deitT, s);
      expect(Math.abs(scheduleGmacs(deitT, s) / denseGmacs(deitT) / 0.653 - 1)).toBeLessThanOrEqual(0.01);
      expect(s.steps.length).toBeGreaterThanOrEqual(1);
    }
    expect(hits).toBeGreaterThan(150);
  });

  it('offers presets at several placements and S/I splits, all within the budget', async () => {
    const presets = await presetSchedules(deitT, 0.87);
    expect(presets.length).toBeGreaterThanOrEqual(9);
    expect(presets[0].origin).toMatch(/after 3\/6\/9 S-share 0.5/);
    for (const p of presets) expect(Math.abs(scheduleGmacs(deitT, p.schedule) / denseGmacs(deitT) / 0.87 - 1)).toBeLessThanOrEqual(0.01);
  });

  it('returns the candidate the score function prefers, scored on every calibration image', async () => {
    // A synthetic score: KL grows with the tokens removed before block 6 (so early pruning is bad).
    const early = (s: PruneSchedule) => s.steps.filter((st) => st.after < 6).reduce((sum, st) => sum + st.rS + st.rI, 0);
    const seen = new Set<number>();
    const finalRound: number[] = [];
    const result = await tuneSchedule(
      deitT,
      async (s, images) => {
        seen.add(images);
        if (images === 64) finalRound.push(early(s) / 100);
        return { agreement: 1 - early(s) / 1000, kl: early(s) / 100 };
      },
      { budget: 0.7, candidates: 40, images: 64, seed: 3 },
    );
    expect(result.best.images).toBe(64);
    expect(Math.max(...seen)).toBe(64);
    expect(Math.min(...seen)).toBe(16);
    expect(result.best.score.kl).toBeLessThanOrEqual(result.baseline.score.kl);
    expect(Math.abs(result.best.fraction / 0.7 - 1)).toBeLessThanOrEqual(0.01);
    // Nothing scored on all images beats what it returns.
    expect(result.best.score.kl).toBe(Math.min(...finalRound));
  });
});

import { describe, expect, it } from 'vitest';
import { ScheduleError, UsageError } from '../src/errors.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { denseGmacs } from '../src/model/gmacs.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { calibrationRun, type PruningPlan } from '../src/prune/method.js';
import { autoBandFor, autoMctfLayers } from '../src/prune/auto.js';
import { ltpRamp } from '../src/prune/ltp.js';
import { randomDropHooks } from '../src/prune/random.js';
import { planPruning, TOKEN_METHODS, tokenMethod } from '../src/prune/registry.js';
import { zeroTPruneHooks } from '../src/prune/zero-tprune.js';

// A 12-block model small enough to run every method: 64×64 input, patch 8 → 64 patches + CLS.
const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
const runner = new ViTRunner(randomModel(cfg, 9), createReferenceKernels());
const rand = seededRandom(4);
const images = Array.from({ length: 3 }, () => Float32Array.from({ length: 3 * 64 * 64 }, () => rand() * 4 - 2));
const context = { calibration: calibrationRun(runner, images) };

/** Mean executed GMACs of a plan over the test images. */
function executed(plan: PruningPlan): number {
  return images.reduce((sum, image, i) => sum + runner.forward(image, plan.hooks(i)).gmacs, 0) / images.length;
}

describe('the method registry', () => {
  it('lists every method once, each with a removal kind and its token counts', () => {
    expect(TOKEN_METHODS.map((m) => m.name)).toEqual(['zero-tprune', 'tome', 'mctf', 'ppt', 'pitome', 'evit', 'topk', 'ltp', 'random', 'auto']);
    expect(Object.fromEntries(TOKEN_METHODS.map((m) => [m.name, `${m.removal} ${m.counts}`]))).toEqual({
      'zero-tprune': 'dropped fixed',
      tome: 'merged fixed',
      mctf: 'fused fixed',
      ppt: 'merged fixed',
      pitome: 'merged fixed',
      evit: 'fused fixed',
      topk: 'dropped fixed',
      ltp: 'dropped per-image',
      random: 'dropped fixed',
      auto: 'merged fixed',
    });
  });

  for (const method of TOKEN_METHODS) {
    it(`${method.name}: a budget plans settings that run at the GMACs they claim, and its JSON plans the same run`, async () => {
      const plan = await method.plan(cfg, { budget: 0.7 }, context);
      expect(plan.method).toBe(method.name);
      expect(Math.abs(plan.gmacs! / denseGmacs(cfg) / 0.7 - 1)).toBeLessThanOrEqual(0.01);
      const gmacs = executed(plan);
      if (method.counts === 'fixed')
        expect(gmacs).toBeCloseTo(plan.gmacs!, 12); // the mean of equal per-image figures
      else expect(await context.calibration(plan.hooks(0))).toBe(plan.gmacs); // measured on the calibration images
      if (method.takesSettings) {
        const again = await method.plan(cfg, { settings: JSON.parse(JSON.stringify(plan.settings)) });
        expect(again.settings).toEqual(plan.settings);
        expect(executed(again)).toBe(gmacs);
      }
    });
  }

  it('a keep ratio plans the methods that have one', async () => {
    for (const method of TOKEN_METHODS.filter((m) => m.takesKeep)) {
      const plan = await method.plan(cfg, { keep: 0.7 });
      expect(plan.gmacs).toBeLessThan(denseGmacs(cfg));
    }
    expect(TOKEN_METHODS.filter((m) => m.takesKeep).map((m) => m.name)).toEqual(['zero-tprune', 'evit', 'topk', 'random']);
  });

  it('placement: pre-MLP (the default) gives the logits of after-block for fewer GMACs; after-block runs the hooks as before', async () => {
    const schedule = {
      steps: [
        { after: 3, rS: 10, rI: 10 },
        { after: 6, rS: 6, rI: 6 },
      ],
    };
    const requests = [
      ['zero-tprune', { settings: schedule }, () => zeroTPruneHooks(schedule)],
      [
        'random',
        { settings: schedule },
        () =>
          randomDropHooks(
            [
              { afterBlock: 2, remove: 20 },
              { afterBlock: 5, remove: 12 },
            ],
            0,
          ),
      ], // image 0's draws
      ['ltp', { settings: { theta: ltpRamp(12, 3).theta, unit: 'mean' } }, null],
    ] as const;
    for (const [method, request, before] of requests) {
      const preMlp = await planPruning(cfg, { method, ...request });
      const afterBlock = await planPruning(cfg, { method, ...request, options: { placement: 'after-block' } });
      expect(preMlp.settings).toMatchObject({ placement: 'pre-mlp' });
      for (const image of images) {
        const a = runner.forward(image, preMlp.hooks(0));
        const b = runner.forward(image, afterBlock.hooks(0));
        expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
        expect(a.gmacs).toBeLessThan(b.gmacs);
        a.tokens.forEach((t, l) => expect(t.mlp).toBe(l + 1 < a.tokens.length ? a.tokens[l + 1].attention : t.mlp)); // the MLP runs on the survivors
        if (before) expect(Array.from(runner.forward(image, before()).logits)).toEqual(Array.from(b.logits));
      }
      if (method !== 'ltp') expect(preMlp.gmacs).toBe(runner.forward(images[0], preMlp.hooks(0)).gmacs);
    }
  });

  it("auto: the method of the budget's band with the exact tail, within 1 % of the budget, and the same run again from its settings", async () => {
    expect([0.95, 0.87, 0.82, 0.78, 0.7, 0.65, 0.62].map((b) => autoBandFor(b).method)).toEqual(['ppt', 'ppt', 'ppt', 'mctf', 'mctf', 'mctf', 'mctf']);
    expect(autoMctfLayers(12)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect([2, 3, 4, 6].map(autoMctfLayers)).toEqual([null, [1], [2], [3, 4]]);
    const dense = denseGmacs(cfg);
    for (const budget of [0.87, 0.65]) {
      const auto = await planPruning(cfg, { method: 'auto', budget });
      const { method, settings, exactTail } = auto.settings as { method: string; settings: unknown; exactTail: boolean };
      expect(method).toBe(autoBandFor(budget).method);
      if (method === 'mctf') expect((settings as { layers: unknown }).layers).toEqual(autoMctfLayers(cfg.depth));
      expect(exactTail).toBe(true);
      expect(Math.abs(auto.gmacs! / dense / budget - 1)).toBeLessThanOrEqual(0.01);
      expect(auto.tokens!.at(-1)!.mlp).toBe(1); // the last MLP on CLS only
      // the chosen method at the settings auto found, with and without the tail: the same logits, the tail's GMACs fewer
      const chosen = await planPruning(cfg, { method, settings });
      const withTail = runner.forward(images[0], auto.hooks(0));
      expect(Array.from(withTail.logits)).toEqual(Array.from(runner.forward(images[0], chosen.hooks(0)).logits));
      expect(withTail.gmacs).toBe(auto.gmacs);
      expect(auto.gmacs!).toBeLessThan(chosen.gmacs!);
      const again = await planPruning(cfg, { method: 'auto', settings: JSON.parse(JSON.stringify(auto.settings)) });
      expect(Array.from(runner.forward(images[0], again.hooks(0)).logits)).toEqual(Array.from(withTail.logits));
      expect(again.gmacs).toBe(auto.gmacs);
    }
    // a file written before the tail (no "exactTail") runs the method alone
    const old = await planPruning(cfg, { method: 'auto', settings: { method: 'ppt', settings: { r: 8, blocks: [3, 6, 9] } } });
    expect(old.gmacs).toBe((await planPruning(cfg, { method: 'ppt', settings: { r: 8, blocks: [3, 6, 9] } })).gmacs);
    // DeiT-Tiny's shape: at 0.95 the tail and PPT r 1 (the tail alone: 0.954); at 0.99, above what the tail leaves, PPT alone
    const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
    const at95 = await planPruning(deitT, { method: 'auto', budget: 0.95 });
    expect(at95.settings).toMatchObject({ method: 'ppt', settings: { r: 1 }, exactTail: true });
    expect(Math.abs(at95.gmacs! / denseGmacs(deitT) / 0.95 - 1)).toBeLessThanOrEqual(0.01);
    expect((await planPruning(deitT, { method: 'auto', budget: 0.99 })).settings).not.toHaveProperty('exactTail');
    await expect(planPruning(cfg, { method: 'auto', settings: { method: 'ppt', settings: { r: 8 }, exactTail: 'yes' } })).rejects.toThrow(
      /"exactTail", true or false/,
    );
    await expect(planPruning(cfg, { method: 'auto', keep: 0.5 })).rejects.toThrow(/expected exactly one of budget, settings/);
    await expect(planPruning(cfg, { method: 'auto', budget: 0.7, options: { seed: 1 } })).rejects.toThrow(/auto takes no options/);
  });

  it('a budget with fixed settings: the solver turns r and keeps them (MCTF)', async () => {
    const plan = await planPruning(cfg, { method: 'mctf', budget: 0.7, fixed: { layers: [3, 4, 5, 6, 7, 8, 9, 10], tauInfo: 10 } });
    expect(plan.settings).toMatchObject({ layers: [3, 4, 5, 6, 7, 8, 9, 10], tauInfo: 10, tauSim: 1 });
    expect(Math.abs(plan.gmacs! / denseGmacs(cfg) / 0.7 - 1)).toBeLessThanOrEqual(0.01);
    const free = await planPruning(cfg, { method: 'mctf', budget: 0.7 });
    expect((free.settings as { r: number }).r).toBeLessThan((plan.settings as { r: number }).r); // fewer fusing blocks need a larger r
  });

  it('options: defaults, checked values, and the run they change', async () => {
    const seeded = (seed: number) => planPruning(cfg, { method: 'random', keep: 0.5, options: { seed } });
    expect((await planPruning(cfg, { method: 'random', keep: 0.5 })).settings).toMatchObject({ seed: 0 });
    const a = runner.forward(images[0], (await seeded(1)).hooks(0)).logits;
    const b = runner.forward(images[0], (await seeded(2)).hooks(0)).logits;
    expect(Array.from(a)).not.toEqual(Array.from(b));
    expect((await planPruning(cfg, { method: 'zero-tprune', keep: 0.7, options: { ablation: 'wpr' } })).settings).toMatchObject({ ablation: 'wpr' });
    await expect(planPruning(cfg, { method: 'zero-tprune', keep: 0.7, options: { ablation: 'most' } })).rejects.toThrow(
      /option 'ablation' expects one of wpr, .*full, found "most"/,
    );
    await expect(planPruning(cfg, { method: 'tome', budget: 0.7, options: { seed: 1 } })).rejects.toThrow(/unknown option 'seed' \(it has no options\)/);
  });

  it('errors say what the library call got wrong, in its own terms (no command-line flags)', async () => {
    const cases: [Promise<unknown>, RegExp, typeof UsageError][] = [
      [planPruning(cfg, { method: 'fastest', budget: 0.7 }), /unknown token-pruning method 'fastest': expected one of zero-tprune, tome/, UsageError],
      [planPruning(cfg, { method: 'tome', budget: 0.7, keep: 0.5 }), /expected exactly one of budget, settings; found budget, keep/, UsageError],
      [planPruning(cfg, { method: 'evit' }), /expected exactly one of budget, keep; found none/, UsageError],
      [planPruning(cfg, { method: 'tome', keep: 0.5 }), /tome has no keep ratio: it takes budget or settings/, UsageError],
      [planPruning(cfg, { method: 'evit', budget: 1.2 }), /expected a budget in \(0, 1\] of the dense model's \d\.\d{4} GMACs, found 1\.2/, UsageError],
      [
        planPruning(cfg, { method: 'ltp', budget: 0.7 }),
        /ltp reaches a budget by calibrating .* give it calibration images, or its thresholds as settings/,
        UsageError,
      ],
      [planPruning(cfg, { method: 'tome', budget: 0.01 }), /expected settings within 1 % of 0\.01 × dense .* found at best/, ScheduleError],
      [
        planPruning(cfg, { method: 'zero-tprune', settings: { steps: [{ after: 3, rS: 40, rI: 0 }] }, settingsSource: 'plan.json' }),
        /S-stage can remove at most/,
        ScheduleError,
      ],
      [
        planPruning(cfg, { method: 'tome', settings: { r: [1, -2] }, settingsSource: 'r.json' }),
        /expected r of block 2 to be an integer ≥ 0, found -2/,
        ScheduleError,
      ],
      [
        planPruning(cfg, { method: 'ltp', settings: { theta: [1, 2] }, settingsSource: 'theta.json' }),
        /theta\.json: expected "theta" to list 12 thresholds/,
        ScheduleError,
      ],
      [planPruning(cfg, { method: 'tome', budget: 0.7, fixed: { r: 3 } }), /tome: a budget cannot fix any of its settings/, UsageError],
      [planPruning(cfg, { method: 'mctf', fixed: { layers: [3] } }), /mctf: fixed settings go with a budget only/, UsageError],
      [planPruning(cfg, { method: 'mctf', budget: 0.7, fixed: { r: 3 } }), /mctf's fixed settings: unexpected key "r"/, ScheduleError],
      [planPruning(cfg, { method: 'mctf', budget: 0.7, fixed: { layers: [5, 3] } }), /MCTF's fixed settings: .*increasing order/, ScheduleError],
    ];
    for (const [promise, message, type] of cases) {
      const error = await promise.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toMatch(/--\w/);
    }
  });

  it('tokenMethod finds a method by name', () => {
    expect(tokenMethod('topk').removal).toBe('dropped');
  });
});

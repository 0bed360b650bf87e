import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { configFromDims, randomModel, seededRandom } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { wrapReductionHooks, type ForwardHooks } from '../src/model/hooks.js';
import { recordDecision, recordingDecisions, type DecisionData } from '../src/prune/decisions.js';
import { evitHooks } from '../src/prune/evit.js';
import { ltpHooks } from '../src/prune/ltp.js';
import { mctfHooks } from '../src/prune/mctf.js';
import { pitomeHooks } from '../src/prune/pitome.js';
import { pptHooks, type PptDecision } from '../src/prune/ppt.js';
import { tomeHooks } from '../src/prune/tome.js';
import { zeroTPruneHooks, type ZeroTPruneRecord } from '../src/prune/zero-tprune.js';

// The decisions methods record (for trace bundles) agree with what the methods then do.

const cfg = configFromDims({ dim: 16, depth: 3, heads: 4, imageSize: 12, patchSize: 2, mlpDim: 24, numClasses: 5 }, 'tiny');
const model = randomModel(cfg, 3);
const rand = seededRandom(9);
const input = Float32Array.from({ length: 3 * 12 * 12 }, () => 2 * rand() - 1);
const runner = new ViTRunner(model, createReferenceKernels());

interface Recorded {
  block: number;
  name: string;
  data: number[];
  shape: number[];
}

/** Run with `hooks`, recording every decision with the block of the hook that made it, and the ids after each reduction. */
function run(hooks: ForwardHooks): { decisions: Recorded[]; idsAfter: Map<number, number[]> } {
  const decisions: Recorded[] = [];
  const idsAfter = new Map<number, number[]>();
  let block = -1;
  const wrapped = wrapReductionHooks(hooks, (hook) => (state) => {
    block = state.block;
    const r = hook(state);
    if (r?.kind === 'keep')
      idsAfter.set(
        state.block,
        Array.from(r.indices, (i) => state.tokenIds[i]),
      );
    if (r?.kind === 'replace') idsAfter.set(state.block, Array.from(r.tokenIds));
    return r;
  });
  recordingDecisions(
    (name, data: DecisionData, shape) => decisions.push({ block, name, data: Array.from(data), shape: [...shape] }),
    () => runner.forward(input, wrapped),
  );
  return { decisions, idsAfter };
}

const named = (decisions: Recorded[], name: string) => decisions.filter((d) => d.name === name);

describe('recorded decisions', () => {
  it('cost nothing and go nowhere without a recorder; recorders do not nest', () => {
    expect(() => recordDecision('x', new Int32Array(1), [1])).not.toThrow();
    expect(() =>
      recordingDecisions(
        () => {},
        () =>
          recordingDecisions(
            () => {},
            () => 0,
          ),
      ),
    ).toThrow(/do not nest/);
    expect(
      recordingDecisions(
        () => {},
        () => 7,
      ),
    ).toBe(7); // and the failed nesting left no recorder installed
  });

  it('top-k / EViT: attentiveness whose top k are the survivors; EViT the fused token', () => {
    for (const fuse of [false, true]) {
      const { decisions, idsAfter } = run(evitHooks({ keepRate: 0.5, fuse, blocks: [1] }));
      const [a] = named(decisions, 'attentiveness');
      expect(a.block).toBe(1);
      expect(a.shape).toEqual([37]);
      const ranked = Array.from({ length: 36 }, (_, j) => j + 1).sort((p, q) => a.data[q] - a.data[p] || p - q);
      expect(idsAfter.get(1)!.filter((id) => id > 0)).toEqual(ranked.slice(0, 18).sort((p, q) => p - q));
      expect(named(decisions, 'fused').map((d) => d.shape)).toEqual(fuse ? [[16]] : []);
    }
  });

  it('ToMe: pairs by source position, sources the r best-scoring A tokens, merged away', () => {
    const { decisions, idsAfter } = run(tomeHooks(3));
    const scores = named(decisions, 'score');
    const pairs = named(decisions, 'pairs');
    expect(pairs.map((p) => p.block)).toEqual([0, 1, 2]);
    const [score] = scores;
    const [pair] = pairs;
    expect(score.shape).toEqual([19]); // ⌈37/2⌉ A tokens
    expect(score.data[0]).toBe(-Infinity); // CLS
    expect(pair.shape).toEqual([3, 2]);
    const sources = pair.data.filter((_, i) => i % 2 === 0);
    expect(sources).toEqual([...sources].sort((p, q) => p - q));
    for (let i = 0; i < 3; i++) {
      expect(pair.data[2 * i] % 2).toBe(0); // A = even positions
      expect(pair.data[2 * i + 1] % 2).toBe(1); // B = odd positions
    }
    const threshold = [...score.data].sort((p, q) => q - p)[2];
    for (const s of sources) expect(score.data[s / 2]).toBeGreaterThanOrEqual(threshold);
    for (const s of sources) expect(idsAfter.get(0)).not.toContain(s); // in block 0, positions are ids
  });

  it("Zero-TPrune: both stages' scores, heads and importance; S pairs and I drops are what the layer dropped", () => {
    const layers: ZeroTPruneRecord[] = [];
    const { decisions } = run(zeroTPruneHooks({ steps: [{ after: 1, rS: 6, rI: 5 }] }, { onLayer: (r) => layers.push(r) }));
    expect(decisions.map((d) => [d.name, d.shape])).toEqual([
      ['pre.scores', [4, 37]],
      ['pre.heads', [4]],
      ['pre.importance', [37]],
      ['s.pairs', [6, 2]],
      ['s.similarity', [6]],
      ['i.scores', [4, 31]],
      ['i.heads', [4]],
      ['i.importance', [31]],
      ['i.dropped', [5]],
    ]);
    const get = (name: string) => named(decisions, name)[0].data;
    expect(get('s.pairs').filter((_, i) => i % 2 === 0)).toEqual(Array.from(layers[0].droppedS)); // positions = ids after block 1
    expect(get('i.dropped')).toEqual(Array.from(layers[0].droppedI));
    for (const h of [...get('pre.heads'), ...get('i.heads')]) expect([0, 1]).toContain(h);
    // WPR keeps Σ s = 1 per head, over all 37 tokens (I′) and over the 31 survivors (I)
    for (const [name, c] of [
      ['pre.scores', 37],
      ['i.scores', 31],
    ] as const) {
      for (let h = 0; h < 4; h++)
        expect(
          get(name)
            .slice(h * c, (h + 1) * c)
            .reduce((a, b) => a + b, 0),
        ).toBeCloseTo(1, 6); // f32 attention rows sum to 1 ± 1e-7
    }
    for (const c of get('s.similarity')) expect(Math.abs(c)).toBeLessThanOrEqual(1 + 1e-12);
  });

  it('LTP: importance in the threshold unit and the mask of survivors', () => {
    const { decisions, idsAfter } = run(ltpHooks({ theta: [0, 1, 1.1], unit: 'mean' }));
    const importance = named(decisions, 'importance');
    const masks = named(decisions, 'mask');
    expect(importance.map((d) => d.block)).toEqual([1, 2]);
    const [score] = importance;
    const [mask] = masks;
    expect(score.data.reduce((a, b) => a + b, 0)).toBeCloseTo(37, 5); // mean n·s(i) = 1
    for (let i = 1; i < 37; i++) expect(mask.data[i]).toBe(score.data[i] >= 1 ? 1 : 0);
    expect(mask.data[0]).toBe(1);
    expect(idsAfter.get(1)).toEqual(mask.data.flatMap((m, i) => (m ? [i] : [])));
  });

  it('MCTF: attention received, the affinity matrix, pairs by source, pooling weights ā·s; the sources are fused away', () => {
    for (const oneStepAhead of [true, false]) {
      const { decisions, idsAfter } = run(mctfHooks({ r: 3, oneStepAhead, layers: [1, 2] }));
      expect(decisions.map((d) => [d.block, d.name, d.shape])).toEqual([
        [1, 'received', [37]],
        [1, 'affinity', [19, 18]],
        [1, 'pairs', [3, 2]],
        [1, 'weights', [37]],
        [2, 'received', [34]],
        [2, 'affinity', [17, 17]],
        [2, 'pairs', [3, 2]],
        [2, 'weights', [34]],
      ]);
      const [received] = named(decisions, 'received');
      const [weights] = named(decisions, 'weights');
      const [pairs] = named(decisions, 'pairs');
      expect(received.data.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6); // ā averages rows that sum to 1
      expect(weights.data).toEqual(received.data); // block 1: every size is 1
      const sources = pairs.data.filter((_, i) => i % 2 === 0);
      expect(sources).toEqual([...sources].sort((p, q) => p - q));
      for (const s of sources) expect(idsAfter.get(1)).not.toContain(s); // block 1 sees tokens unreduced: positions are ids
      for (const d of pairs.data.filter((_, i) => i % 2 === 1)) expect(idsAfter.get(1)).toContain(d);
      for (const w of named(decisions, 'affinity')[0].data) expect(w >= 0 && w <= 1).toBe(true);
    }
  });

  it("PPT: importance, its variance and the choice; pruning records the kept positions, pooling ToMe's pairs", () => {
    for (const threshold of [0, 1]) {
      const layers: PptDecision[] = [];
      const { decisions, idsAfter } = run(pptHooks({ r: 4, blocks: [1], threshold }, { onLayer: (d) => layers.push(d) }));
      const pruned = threshold === 0;
      expect(decisions.map((d) => [d.name, d.shape])).toEqual([
        ['importance', [37]],
        ['variance', [1]],
        ['pruned', [1]],
        ...(pruned
          ? [['kept', [33]]]
          : [
              ['score', [19]],
              ['pairs', [4, 2]],
            ]),
      ]);
      const get = (name: string) => named(decisions, name)[0].data;
      const importance = get('importance');
      expect(importance[0]).toBe(0);
      expect(importance.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(get('variance')[0]).toBe(layers[0].variance);
      expect(get('pruned')).toEqual([pruned ? 1 : 0]);
      if (pruned) expect(idsAfter.get(1)).toEqual(get('kept')); // block 1 sees tokens unreduced: positions are ids
    }
  });

  it('PiToMe: energy of the patches, the protected tokens (lowest energy), pairs among the 2r of highest energy', () => {
    const { decisions, idsAfter } = run(pitomeHooks({ r: 4 }));
    expect(decisions.filter((d) => d.block === 0).map((d) => [d.name, d.shape])).toEqual([
      ['energy', [36]],
      ['protected', [28]],
      ['pairs', [4, 2]],
    ]);
    const get = (name: string) => named(decisions, name)[0].data;
    const energy = get('energy');
    const isProtected = new Set(get('protected'));
    const paired = get('pairs');
    expect(isProtected.size).toBe(28);
    for (const p of paired) expect(isProtected.has(p)).toBe(false); // pairs come from the other 2r (destinations may repeat)
    const lowestPaired = Math.min(...paired.map((p) => energy[p - 1]));
    for (const p of isProtected) expect(energy[p - 1]).toBeLessThanOrEqual(lowestPaired);
    const sources = paired.filter((_, i) => i % 2 === 0);
    for (const s of sources) expect(idsAfter.get(0)).not.toContain(s);
  });
});

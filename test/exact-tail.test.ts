import { describe, expect, it } from 'vitest';
import { modelGmacs } from '../src/model/gmacs.js';
import type { ForwardHooks } from '../src/model/hooks.js';
import { evitHooks } from '../src/prune/evit.js';
import { exactTailHooks, exactTailSaving, withExactTail } from '../src/prune/exact-tail.js';
import { tomeHooks } from '../src/prune/tome.js';
import { tiny, tinyDistilled, tinyDistilledRunner, tinyImage, tinyRunner } from './tiny-vit.js';

// The exact tail: the patch tokens go before the last MLP, and no logit changes, alone or after a
// method that itself reduces in the last block (by keeping rows, or by replacing the tokens).

describe('the exact tail', () => {
  it('leaves every logit bit-identical, alone and after methods that reduce in the last block, on plain and distilled models', () => {
    for (const [runner, cfg] of [
      [tinyRunner, tiny],
      [tinyDistilledRunner, tinyDistilled],
    ] as const) {
      const last = cfg.depth - 1;
      const methods: ForwardHooks[] = [{}, evitHooks({ keepRate: 0.5, fuse: false, blocks: [2, last] }), tomeHooks(4)];
      for (const inner of methods) {
        const image = tinyImage(5);
        const without = runner.forward(image, inner);
        const removed: number[][] = [];
        const withTail = runner.forward(
          image,
          exactTailHooks(inner, cfg.depth, (ids) => removed.push(Array.from(ids))),
        );
        expect(Array.from(withTail.logits)).toEqual(Array.from(without.logits));
        const prefix = cfg.distilled ? 2 : 1;
        expect(withTail.tokens.at(-1)!.mlp).toBe(prefix);
        expect(withTail.tokens.slice(0, -1)).toEqual(without.tokens.slice(0, -1));
        expect(withTail.gmacs).toBe(modelGmacs(cfg, withExactTail(cfg, without.tokens)));
        expect(without.gmacs * 1e9 - withTail.gmacs * 1e9).toBeCloseTo(exactTailSaving(cfg, without.tokens), 0);
        expect(removed).toHaveLength(1);
        expect(removed[0]).toHaveLength(without.tokens.at(-1)!.mlp - prefix); // every patch alive there, none of the prefix
        expect(removed[0].every((id) => id >= prefix)).toBe(true);
      }
    }
  });
});

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../src/image/decode.js';
import { centerCrop, modelCrop, resizeShorterSide, resizeTarget } from '../src/image/preprocess.js';
import { resizePil, resizePilRegion, type ResampleFilter } from '../src/image/resize.js';
import type { RgbImage } from '../src/image/rgb-image.js';
import type { PreprocessConfig } from '../src/model/types.js';
import { encodePng } from './image-writers.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

/** Bytes from a seeded LCG: a noisy image, where every tap of the filter matters. */
function noiseImage(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

const DEIT: PreprocessConfig = { inputSize: 224, interpolation: 'bicubic', cropPct: 0.875, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Sides from 1 to `max`, with 1, 2 and 3 (thin images) drawn often. */
const side = (max: number) => fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max }));
const filter = fc.constantFrom<ResampleFilter>('bicubic', 'bilinear');

describe('computing only what the centre crop keeps', () => {
  it('resizePilRegion is the region of resizePil, bit for bit (random sizes, regions, filters)', () => {
    fc.assert(
      fc.property(side(60), side(60), side(90), side(90), filter, fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(), (w, h, outW, outH, f, seed, a, b, c, d) => {
        const full = resizePil(noiseImage(w, h, seed), outW, outH, f);
        const left = a % outW;
        const top = b % outH;
        const region = { left, top, width: 1 + (c % (outW - left)), height: 1 + (d % (outH - top)) };
        const part = resizePilRegion(noiseImage(w, h, seed), outW, outH, f, region);
        const expected = new Uint8Array(region.width * region.height * 3);
        for (let y = 0; y < region.height; y++) {
          const src = ((region.top + y) * outW + region.left) * 3;
          expected.set(full.data.subarray(src, src + region.width * 3), y * region.width * 3);
        }
        expect([part.width, part.height]).toEqual([region.width, region.height]);
        expect(part.data).toEqual(expected);
      }),
      { numRuns: 400 },
    );
  });

  it('modelCrop equals resize-then-crop for random sizes and aspects, 1-pixel-wide images included', () => {
    const config = fc.record({
      inputSize: fc.integer({ min: 1, max: 40 }),
      interpolation: filter,
      cropPct: fc.double({ min: 0.25, max: 1, noNaN: true }),
      mean: fc.constant<[number, number, number]>([0.5, 0.5, 0.5]),
      std: fc.constant<[number, number, number]>([0.5, 0.5, 0.5]),
    });
    fc.assert(
      fc.property(side(400), side(400), config, fc.nat(), (w, h, cfg, seed) => {
        const image = noiseImage(w, h, seed);
        const expected = centerCrop(resizeShorterSide(image, resizeTarget(cfg), cfg.interpolation), cfg.inputSize);
        expect(modelCrop(image, cfg)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('thin PNGs (2000×1, 1×4000, 65535×1) decode and preprocess in under 0.2 s each', () => {
    for (const [width, height] of [
      [2000, 1],
      [1, 4000],
      [65535, 1],
    ]) {
      const png = encodePng({ width, height, colorType: 2, bitDepth: 8, samples: noiseImage(width, height, 7).data });
      let best = Infinity;
      for (let run = 0; run < 3; run++) {
        const start = performance.now();
        const crop = modelCrop(decodeImage(png, `${width}x${height}.png`), DEIT);
        best = Math.min(best, performance.now() - start);
        expect([crop.width, crop.height]).toEqual([224, 224]);
      }
      process.stderr.write(`${width}×${height} PNG (${png.length} bytes): decode + resize + crop in ${best.toFixed(1)} ms (best of 3)\n`);
      expect(best).toBeLessThan(200);
    }
  });
});

describeWithData('computing only what the centre crop keeps, on the 500 dev images', () => {
  it("modelCrop gives PIL's DeiT crops (the digest image.test.ts checks for resize-then-crop) and resize-then-crop's bytes at crop_pct 0.9, bilinear", () => {
    const dir = path.join(SHARED_DATA, 'imagenet-sample/images');
    const files = readdirSync(dir).sort();
    expect(files.length).toBe(500);
    const bilinear = { ...DEIT, cropPct: 0.9, interpolation: 'bilinear' as const };
    const deit = createHash('sha256');
    const whole = createHash('sha256');
    const cropped = createHash('sha256');
    for (const name of files) {
      const image = decodeImage(readFileSync(path.join(dir, name)), name);
      deit.update(modelCrop(image, DEIT).data);
      whole.update(centerCrop(resizeShorterSide(image, resizeTarget(bilinear), 'bilinear'), 224).data);
      cropped.update(modelCrop(image, bilinear).data);
    }
    // PIL 9.4's resize + crop of the 500 images, concatenated in sorted file order (see image.test.ts).
    expect(deit.digest('hex')).toBe('b9e4009618157e1587689245907a1e56e74ca0cae933277a076dd4b18b379bc3');
    expect(cropped.digest('hex')).toBe(whole.digest('hex'));
  });
});

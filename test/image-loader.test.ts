import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ImageError } from '../src/errors.js';
import { evaluateVariants } from '../src/eval/evaluate.js';
import { BackgroundImageLoader, loadOnThisThread } from '../src/eval/image-loader.js';
import { createKernels } from '../src/kernels/index.js';
import { loadModelFolder } from '../src/model/folder.js';
import { ViTRunner } from '../src/model/vit.js';
import { encodePng, testPattern } from './image-writers.js';

// Decoding on a thread of its own (so that eval overlaps it with inference) gives the same
// tensors, the same results and the same errors as decoding in turn on the caller's thread.

const TIMEOUT = 60_000;
const TINY = path.resolve(import.meta.dirname, '../fixtures/tiny-timm');
let dir: string;
let files: string[];
let loader: BackgroundImageLoader;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vitprune-loader-'));
  files = [
    [40, 30],
    [17, 64],
    [100, 100],
    [9, 8],
    [33, 77],
    [64, 48],
  ].map(([w, h], i) => {
    const file = path.join(dir, `n000${(i % 3) + 1}_${i}.png`);
    writeFileSync(file, encodePng({ width: w, height: h, colorType: 2, bitDepth: 8, samples: testPattern(w, h) }));
    return file;
  });
  loader = await BackgroundImageLoader.start();
}, TIMEOUT);

afterAll(() => {
  loader.close();
  rmSync(dir, { recursive: true, force: true });
});

it(
  'evaluation with a background loader gives the results of loading in turn',
  async () => {
    const model = loadModelFolder(TINY);
    const runner = new ViTRunner(model, await createKernels('wasm'));
    const images = files.map((file, i) => ({ file, label: i % 3 }));
    const [inTurn] = await evaluateVariants(runner, images, [{ name: 'dense' }], { progress: false });
    const [overlapped] = await evaluateVariants(runner, images, [{ name: 'dense' }], { progress: false, loader: loader.load });
    expect(overlapped.images.map((r) => Array.from(r.logits))).toEqual(inTurn.images.map((r) => Array.from(r.logits)));
    expect(overlapped.top1).toBe(inTurn.top1);
  },
  TIMEOUT,
);

it(
  'a file that cannot be decoded fails with the same ImageError on both',
  async () => {
    const bad = path.join(dir, 'n0001_bad.png');
    writeFileSync(bad, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    const preprocess = loadModelFolder(TINY).config.preprocess;
    const here = await loadOnThisThread(bad, preprocess).catch((e: unknown) => e);
    const there = await loader.load(bad, preprocess).catch((e: unknown) => e);
    expect(here).toBeInstanceOf(ImageError);
    expect(there).toBeInstanceOf(ImageError);
    expect((there as Error).message).toBe((here as Error).message);
    // and the loader goes on
    expect(await loader.load(files[0], preprocess)).toEqual(await loadOnThisThread(files[0], preprocess));
  },
  TIMEOUT,
);

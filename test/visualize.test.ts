import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { runCli as run } from './run-cli.js';
import { loadImage, loadImageTensor } from '../src/image/file.js';
import { modelCrop } from '../src/image/preprocess.js';
import type { RgbImage } from '../src/image/rgb-image.js';
import { loadModelFolder } from '../src/model/folder.js';
import { figureLayout, markPatches, PATCH_DROPPED_EARLIER, PATCH_DROPPED_NOW, PATCH_KEPT, stagePanels } from '../src/viz/figure.js';
import { cropTensor } from '../src/viz/trace.js';
import { encodePng } from './image-writers.js';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'tiny-timm'); // 8×8 input, patch 4: 2×2 patches, 2 blocks
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-visualize-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** A smooth colour ramp, never mid-grey or pure red, so that every mark changes every pixel it covers. */
function rampImage(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      rgb.set([30 + 15 * x, 200 - 12 * y, 60 + 8 * (x + y)], (y * width + x) * 3);
    }
  }
  return rgb;
}

const image = path.join(tmp, 'ramp.png');
writeFileSync(image, encodePng({ width: 12, height: 10, colorType: 2, bitDepth: 8, samples: rampImage(12, 10) }));
const schedule = path.join(tmp, 'schedule.json');
writeFileSync(schedule, JSON.stringify({ steps: [{ after: 1, rS: 1, rI: 1 }] }));

function readPng(file: string): RgbImage {
  const png = PNG.sync.read(readFileSync(file));
  const data = new Uint8Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) data.set(png.data.subarray(i * 4, i * 4 + 3), i * 3);
  return { width: png.width, height: png.height, data };
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(i, i + 3));
}

/** Pixels of patch p (side 2, patch 4, zoom `scale`) of the panel at (x0, y0), against the crop. */
function patchPixels(out: RgbImage, x0: number, y0: number, crop: RgbImage, p: number, scale: number): { got: number[]; want: number[] }[] {
  const cell = 4 * scale;
  const px = (p % 2) * cell;
  const py = Math.floor(p / 2) * cell;
  const pixels = [];
  for (let y = py; y < py + cell; y++) {
    for (let x = px; x < px + cell; x++) {
      pixels.push({ got: pixel(out, x0 + x, y0 + y), want: pixel(crop, Math.floor(x / scale), Math.floor(y / scale)) });
    }
  }
  return pixels;
}

describe('visualize', () => {
  const cfg = loadModelFolder(FIXTURE).config;
  const crop = modelCrop(loadImage(image), cfg.preprocess);

  it('draws the crop the model sees', () => {
    expect([crop.width, crop.height]).toEqual([8, 8]);
    expect(cropTensor(crop, cfg.preprocess)).toEqual(loadImageTensor(image, cfg.preprocess));
  });

  it('marks patches: kept pixels unchanged, removed ones blended with an outline', () => {
    const marks = Uint8Array.from([PATCH_KEPT, PATCH_DROPPED_EARLIER, PATCH_DROPPED_NOW, PATCH_KEPT]);
    const out = markPatches(crop, 4, 3, marks);
    expect([out.width, out.height]).toEqual([24, 24]);
    for (const p of [0, 3]) for (const { got, want } of patchPixels(out, 0, 0, crop, p, 3)) expect(got).toEqual(want);
    for (const p of [1, 2]) for (const { got, want } of patchPixels(out, 0, 0, crop, p, 3)) expect(got).not.toEqual(want);
    // Greyed: pulled towards mid-grey; red: more red than green compared with the crop.
    const inner = (p: number) => patchPixels(out, 0, 0, crop, p, 3)[5 * 12 + 5]; // row 5, column 5 of the 12×12 patch
    const grey = inner(1);
    expect(Math.max(...grey.got) - Math.min(...grey.got)).toBeLessThan(Math.max(...grey.want) - Math.min(...grey.want));
    const red = inner(2);
    expect(red.got[0] - red.got[1]).toBeGreaterThan(red.want[0] - red.want[1]);
    // The outline lies on the patch's own border: its corner pixel differs from the one inside.
    expect(pixel(out, 12, 0)).not.toEqual(pixel(out, 13, 1));
  });

  it('lays out one panel per stage that removed patches, with captions', () => {
    const panels = stagePanels(4, [
      { after: 1, hook: 'block', stage: 'S', dropped: [2] },
      { after: 1, hook: 'block', stage: 'I', dropped: [] },
      { after: 2, hook: 'attention', stage: null, dropped: [0, 3] },
    ]);
    expect(panels.map((p) => p.caption)).toEqual(['input: 4 patches', 'after block 1, S-stage: −1', 'block 2, after attention: −2', 'kept: 1 of 4 patches']);
    expect(panels.map((p) => Array.from(p.marks))).toEqual([
      [0, 0, 0, 0],
      [0, 0, 2, 0],
      [2, 0, 1, 2],
      [1, 0, 1, 1],
    ]);
    // EViT folds its inattentive tokens into one: the captions say so.
    const fused = stagePanels(4, [{ after: 4, hook: 'attention', stage: null, dropped: [1, 2] }], 'fused');
    expect(fused.map((p) => p.caption)).toEqual(['input: 4 patches', 'block 4, after attention: −2 fused', 'left: 2 of 4 patch tokens']);
  });

  it('writes the Zero-TPrune figure: input, S-stage, I-stage, kept; --json describes it', async () => {
    const out = path.join(tmp, 'zero-tprune.png');
    const { code, stdout, stderr } = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'zero-tprune',
      '--schedule',
      schedule,
      '--scale',
      '8',
      '--out',
      out,
      '--json',
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(doc).toMatchObject({ image, out, method: 'zero-tprune', schedule: { steps: [{ after: 1, rS: 1, rI: 1 }], ablation: 'full' } });
    expect(doc.gmacs).toBeLessThan(doc.denseGmacs);
    for (const key of ['prediction', 'densePrediction']) {
      expect(Object.keys(doc[key]).sort()).toEqual(['description', 'index', 'label', 'score']);
      expect(doc[key].label).toBe(cfg.labels[doc[key].index]);
      expect(doc[key].description).toBe(cfg.descriptions[doc[key].index]);
    }
    expect(doc.stages.map((s: { after: number; stage: string }) => [s.after, s.stage])).toEqual([
      [1, 'S'],
      [1, 'I'],
    ]);
    const [S, I] = doc.stages.map((s: { dropped: number[] }) => s.dropped);
    expect([S.length, I.length, doc.kept.length]).toEqual([1, 1, 2]);
    expect([...S, ...I, ...doc.kept].sort()).toEqual([0, 1, 2, 3]);

    // No temporary file left beside the output.
    expect(readdirSync(tmp).filter((f) => f.startsWith('zero-tprune'))).toEqual(['zero-tprune.png']);
    const png = readPng(out);
    const layout = figureLayout(4, 64, 4, 2);
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    // Expected marks per panel: input, S (S red), I (S grey, I red), kept (S, I grey).
    const expected = [new Set<number>(), new Set(S), new Set([...S, ...I]), new Set([...S, ...I])];
    expected.forEach((removed, i) => {
      const { x, y } = layout.panelOrigin(i);
      for (let p = 0; p < 4; p++) {
        for (const { got, want } of patchPixels(png, x, y, crop, p, 8)) {
          if (removed.has(p)) expect(got).not.toEqual(want);
          else expect(got).toEqual(want);
        }
      }
    });
    // The patch removed at a stage is tinted differently from the one removed before it.
    const centre = (panel: number, p: number) => {
      const { x, y } = layout.panelOrigin(panel);
      return pixel(png, x + (p % 2) * 32 + 16, y + Math.floor(p / 2) * 32 + 16);
    };
    const [sRed, sGrey] = [centre(1, S[0]), centre(2, S[0])];
    expect(sRed[0] - sRed[1]).toBeGreaterThan(sGrey[0] - sGrey[1]);
  });

  it('prints a summary without --json', async () => {
    const out = path.join(tmp, 'summary.png');
    const { code, stdout } = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'zero-tprune',
      '--schedule',
      schedule,
      '--scale',
      '4',
      '--out',
      out,
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^.*summary\.png: 4 panels, \d+×\d+ px\n {2}zero-tprune: [\d.]+ GMACs of [\d.]+ dense, 2 of 4 patches kept\n {2}dense {3}.+ %\n {2}pruned {2}.+ %\n$/,
    );
  });

  it('warns when no font is found, and still draws the panels', async () => {
    const out = path.join(tmp, 'no-font.png');
    const { code, stderr } = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'zero-tprune',
      '--schedule',
      schedule,
      '--scale',
      '8',
      '--out',
      out,
      '--font',
      schedule,
    );
    expect(code).toBe(0);
    expect(stderr).toBe('warning: no font found (system or --font): the figure has no captions\n');
    const png = readPng(out);
    const { x, y } = figureLayout(4, 64, 4, 2).panelOrigin(0);
    for (let p = 0; p < 4; p++) for (const { got, want } of patchPixels(png, x, y, crop, p, 8)) expect(got).toEqual(want);
  });

  it('traces other methods through the token ids (random drop, ToMe)', async () => {
    const random = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'random',
      '--schedule',
      schedule,
      '--out',
      path.join(tmp, 'random.png'),
      '--json',
    );
    expect(random.code).toBe(0);
    const r = JSON.parse(random.stdout);
    // Pre-MLP by default: the layer "after block 1" runs after its attention.
    expect(r.stages.map((s: { after: number; hook: string; dropped: number[] }) => [s.after, s.hook, s.dropped.length])).toEqual([[1, 'attention', 2]]);
    const paper = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'random',
      '--schedule',
      schedule,
      '--placement',
      'after-block',
      '--out',
      path.join(tmp, 'random-after.png'),
      '--json',
    );
    expect(JSON.parse(paper.stdout).stages.map((s: { hook: string }) => s.hook)).toEqual(['block']);
    expect([...r.stages[0].dropped, ...r.kept].sort()).toEqual([0, 1, 2, 3]);

    const tome = await run(
      'visualize',
      '--model',
      FIXTURE,
      '--backend',
      'reference',
      image,
      '--method',
      'tome',
      '--r',
      '1',
      '--scale',
      '8',
      '--out',
      path.join(tmp, 'tome.png'),
      '--json',
    );
    expect(tome.code).toBe(0);
    const t = JSON.parse(tome.stdout);
    expect(t.removal).toBe('merged');
    expect(t.stages.map((s: { after: number; hook: string; dropped: number[] }) => [s.after, s.hook, s.dropped.length])).toEqual([
      [1, 'attention', 1],
      [2, 'attention', 1],
    ]);
    expect(t.kept).toHaveLength(2);
    expect(readPng(path.join(tmp, 'tome.png')).width).toBe(figureLayout(4, 64, 4, 2).width);
  });

  it('refuses bad command lines with a one-line error and writes nothing', async () => {
    const out = path.join(tmp, 'never.png');
    const cases: [string[], RegExp][] = [
      [[image, '--method', 'zero-tprune', '--keep', '0.5'], /needs --out/],
      [[image, '--keep', '0.5', '--out', out], /needs --method/],
      [[image, image, '--method', 'zero-tprune', '--keep', '0.5', '--out', out], /one image, got 2/],
      [[image, '--method', 'zero-tprune', '--out', out], /exactly one of --keep/],
      [[image, '--method', 'zero-tprune', '--schedule', schedule, '--out', out, '--font', path.join(tmp, 'none.ttf')], /--font: no such file/],
      [[path.join(tmp, 'missing.png'), '--method', 'zero-tprune', '--schedule', schedule, '--out', out], /cannot read image file/],
      [[image, '--method', 'zero-tprune', '--schedule', schedule, '--out', path.join(tmp, 'no-such-dir', 'x.png')], /cannot write .*ENOENT/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await run('visualize', '--model', FIXTURE, '--backend', 'reference', ...args);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toMatch(new RegExp(`^error: .*${message.source}.*\\n$`));
    }
    expect(existsSync(out)).toBe(false);
  });
});

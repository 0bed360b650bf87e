import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '../src/errors.js';
import type { PreprocessConfig } from '../src/model/types.js';
import { decodeImage, DEFAULT_MAX_PIXELS, readImageInfo } from '../src/image/decode.js';
import { readJpegInfo } from '../src/image/jpeg.js';
import { centerCrop, centerCropOffsets, preprocess, resizeShorterSide, resizeTarget, shorterSideSize, toNormalizedTensor } from '../src/image/preprocess.js';
import { loadImageTensor } from '../src/image/file.js';
import { resampleCoefficients, resizePil } from '../src/image/resize.js';
import type { RgbImage } from '../src/image/rgb-image.js';
import { encodeJpeg, encodePng, pngChunk, rgbToYccPlanes, simpleProgression, syntheticJpegs, testPattern } from './image-writers.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-image-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

/** Builds an RGB image from [r, g, b] triples, row-major. */
function rgbImage(width: number, height: number, pixels: number[][]): RgbImage {
  return { width, height, data: Uint8Array.from(pixels.flat()) };
}

/** The same LCG as the Python snippet that produced the PIL digests below: byte = (s >> 16) & 255. */
function lcgImage(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    data[i] = (s >> 16) & 255;
  }
  return { width, height, data };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

function expectImageError(run: () => unknown, pattern: RegExp): ImageError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ImageError);
  expect((caught as Error).message).toMatch(pattern);
  return caught as ImageError;
}

const DEIT: PreprocessConfig = {
  inputSize: 224,
  interpolation: 'bicubic',
  cropPct: 0.875,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

// ---------------------------------------------------------------------------------------------

describe('resizePil (PIL Image.resize, Resample.c)', () => {
  // Hand check with the PIL algorithm, re-implemented in numpy:
  //   4 → 2, bicubic: scale 2, support 2·2 = 4, ksize 9. Output 0: centre 1.0, taps x = 0..3 at
  //   (x − 1 + 0.5)/2 = −0.25, 0.25, 0.75, 1.25 → Keys(a=−0.5) 0.8671875, 0.8671875, 0.2265625,
  //   −0.0703125, sum 1.890625 → ·2^22/sum rounded: 1923834, 1923834, 502623, −155987.
  //   R: (2^21 + 10·1923834 + 50·1923834 + 200·502623 − 255·155987) >> 22 = 178275107 >> 22 = 42.
  //   PIL 9.4 gives [[42,107,128],[214,148,128]].
  it('computes PIL fixed-point coefficients', () => {
    const down = resampleCoefficients(4, 2, 'bicubic');
    expect(down.tapsPerOutput).toBe(9);
    expect(Array.from(down.first)).toEqual([0, 0]);
    expect(Array.from(down.count)).toEqual([4, 4]);
    expect(Array.from(down.weights.subarray(0, 4))).toEqual([1923834, 1923834, 502623, -155987]);
    expect(Array.from(down.weights.subarray(9, 13))).toEqual([-155987, 502623, 1923834, 1923834]);
    // 2 → 5 upscale: support 2 (no stretch); output 0 has centre 0.2, taps at 0.3 and 1.3.
    const up = resampleCoefficients(2, 5, 'bicubic');
    expect(Array.from(up.weights.subarray(0, 2))).toEqual([4609778, -415474]);
    expect(Array.from(up.weights.subarray(2 * up.tapsPerOutput, 2 * up.tapsPerOutput + 2))).toEqual([2097152, 2097152]);
  });

  it('reproduces PIL on tiny images (values from PIL 9.4)', () => {
    const row = rgbImage(4, 1, [
      [10, 0, 128],
      [50, 255, 128],
      [200, 0, 128],
      [255, 255, 128],
    ]);
    expect(Array.from(resizePil(row, 2, 1, 'bicubic').data)).toEqual([42, 107, 128, 214, 148, 128]);
    expect(Array.from(resizePil(row, 2, 1, 'bilinear').data)).toEqual([54, 109, 128, 202, 146, 128]);
    const column = { width: 1, height: 4, data: row.data };
    expect(Array.from(resizePil(column, 1, 2, 'bicubic').data)).toEqual([42, 107, 128, 214, 148, 128]);
    const pair = rgbImage(2, 1, [
      [0, 100, 255],
      [255, 50, 0],
    ]);
    // Upscaling overshoots (negative lobes) and clips to 0..255.
    expect(Array.from(resizePil(pair, 5, 1, 'bicubic').data)).toEqual([0, 105, 255, 17, 97, 238, 128, 75, 128, 238, 53, 17, 255, 45, 0]);
    expect(Array.from(resizePil(pair, 5, 1, 'bilinear').data)).toEqual([0, 100, 255, 25, 95, 230, 128, 75, 128, 230, 55, 25, 255, 50, 0]);
  });

  // sha256 (first 16 hex digits) of PIL 9.4's Image.fromarray(img).resize((w, h), filter) on the
  // same LCG images, computed with Debian's python3-pil.
  it.each([
    ['37×23 → 16×50', 1, 'bicubic', '9f7910349b4c4cd5'],
    ['37×23 → 16×50', 1, 'bilinear', 'fb2c669266d9b30f'],
    ['64×48 → 29×31', 2, 'bicubic', 'a40424873cbcb149'],
    ['64×48 → 29×31', 2, 'bilinear', '03e226eb5a343d57'],
    ['50×40 → 200×13', 3, 'bicubic', '1b648461279241ea'],
    ['50×40 → 200×13', 3, 'bilinear', 'b6bdbd0d15f2c0ec'],
    ['300×7 → 41×7', 4, 'bicubic', '8417d69eb9fbcddd'],
    ['300×7 → 41×7', 4, 'bilinear', '3391a8ddc4a04e5d'],
  ] as const)('matches PIL bit for bit: %s seed %i %s', (sizes, seed, filter, expected) => {
    const [w, h, nw, nh] = sizes.match(/\d+/g)!.map(Number);
    expect(digest(resizePil(lcgImage(w, h, seed), nw, nh, filter).data)).toBe(expected);
  });

  it('returns a copy when the size does not change', () => {
    const image = lcgImage(5, 4, 9);
    const same = resizePil(image, 5, 4, 'bicubic');
    expect(same.data).toEqual(image.data);
    expect(same.data).not.toBe(image.data);
  });
});

describe('preprocess (timm eval transform)', () => {
  it('resizes the shorter side to floor(inputSize / cropPct), truncating the long side', () => {
    expect(resizeTarget(DEIT)).toBe(256);
    expect(resizeTarget({ inputSize: 224, cropPct: 0.9 })).toBe(248);
    expect(shorterSideSize(500, 375, 256)).toEqual({ width: 341, height: 256 }); // 341.33
    expect(shorterSideSize(333, 500, 256)).toEqual({ width: 256, height: 384 }); // 384.38
    expect(shorterSideSize(500, 333, 248)).toEqual({ width: 372, height: 248 }); // 372.37
    expect(shorterSideSize(300, 300, 256)).toEqual({ width: 256, height: 256 });
  });

  it('centres the crop with Python rounding (ties to even)', () => {
    expect(centerCropOffsets(341, 256, 224)).toEqual({ top: 16, left: 58 }); // 58.5 → 58
    expect(centerCropOffsets(343, 256, 224)).toEqual({ top: 16, left: 60 }); // 59.5 → 60
    expect(centerCropOffsets(256, 384, 224)).toEqual({ top: 80, left: 16 });
    // Smaller than the crop: torchvision pads (S − W) // 2 on the left/top.
    expect(centerCropOffsets(203, 203, 224)).toEqual({ top: -10, left: -10 });
  });

  it('crops the right pixels and pads with black', () => {
    const image = lcgImage(7, 5, 3);
    const crop = centerCrop(image, 3); // offsets round(1) = 1, round(2) = 2
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 3; c++) expect(crop.data[(y * 3 + x) * 3 + c]).toBe(image.data[((y + 1) * 7 + x + 2) * 3 + c]);
      }
    }
    const padded = centerCrop(rgbImage(1, 1, [[9, 8, 7]]), 4); // pad 1 left/top, 2 right/bottom
    expect(Array.from(padded.data.subarray((1 * 4 + 1) * 3, (1 * 4 + 1) * 3 + 3))).toEqual([9, 8, 7]);
    expect(padded.data.reduce((a, b) => a + b, 0)).toBe(24);
  });

  it('normalises in float32 like torch: (v / 255 − mean) / std, CHW', () => {
    const image = rgbImage(2, 1, [
      [0, 128, 255],
      [255, 0, 1],
    ]);
    const tensor = toNormalizedTensor(image, DEIT.mean, DEIT.std); // [3, 1, 2]
    const f = Math.fround;
    const expected = (v: number, c: number): number => f(f(f(v / 255) - f(DEIT.mean[c])) / f(DEIT.std[c]));
    expect(Array.from(tensor)).toEqual([expected(0, 0), expected(255, 0), expected(128, 1), expected(0, 1), expected(255, 2), expected(1, 2)]);
    expect(tensor[0]).toBeCloseTo(-2.1179039, 6);
    expect(tensor[1]).toBeCloseTo(2.2489083, 6);
  });

  it('produces [3, S, S] for any aspect ratio', () => {
    const solid = { width: 50, height: 31, data: new Uint8Array(50 * 31 * 3).fill(200) };
    const tensor = preprocess(solid, { ...DEIT, inputSize: 16 });
    expect(tensor.length).toBe(3 * 16 * 16);
    for (let c = 0; c < 3; c++) {
      const value = Math.fround(Math.fround(Math.fround(200 / 255) - Math.fround(DEIT.mean[c])) / Math.fround(DEIT.std[c]));
      expect(tensor.subarray(c * 256, (c + 1) * 256).every((v) => v === value)).toBe(true);
    }
  });

  it('chains resize, crop and normalisation', () => {
    const image = lcgImage(40, 30, 5);
    const cfg: PreprocessConfig = { ...DEIT, inputSize: 20, cropPct: 0.8 }; // resize to 25
    const expected = toNormalizedTensor(centerCrop(resizeShorterSide(image, 25, 'bicubic'), 20), cfg.mean, cfg.std);
    expect(preprocess(image, cfg)).toEqual(expected);
  });

  it('loadImageTensor reads the file and names it in errors', () => {
    const file = path.join(tmp, 'small.png');
    writeFileSync(file, encodePng({ width: 3, height: 2, colorType: 2, bitDepth: 8, samples: Array.from({ length: 18 }, (_, i) => i * 10) }));
    const cfg: PreprocessConfig = { ...DEIT, inputSize: 2, cropPct: 1 };
    const expected = preprocess(decodeImage(readFileSync(file), file), cfg);
    expect(loadImageTensor(file, cfg)).toEqual(expected);
    const missing = path.join(tmp, 'missing.jpg');
    expectImageError(() => loadImageTensor(missing, cfg), /missing\.jpg: cannot read image file/);
    expectImageError(() => loadImageTensor(file, cfg, { maxPixels: 5 }), /small\.png: image is 3×2 = 6 pixels, more than the limit of 5/);
  });
});

describe('decodeImage: PNG', () => {
  // Expected values are what PIL's Image.open(f).convert('RGB') gives (checked with PIL 9.4).
  it('replicates grey, drops alpha, scales low bit depths', () => {
    const grey = decodeImage(encodePng({ width: 2, height: 1, colorType: 0, bitDepth: 8, samples: [7, 250] }), 'g.png');
    expect(Array.from(grey.data)).toEqual([7, 7, 7, 250, 250, 250]);
    const greyAlpha = decodeImage(encodePng({ width: 2, height: 1, colorType: 4, bitDepth: 8, samples: [7, 0, 250, 255] }), 'ga.png');
    expect(Array.from(greyAlpha.data)).toEqual([7, 7, 7, 250, 250, 250]);
    const rgba = decodeImage(encodePng({ width: 2, height: 1, colorType: 6, bitDepth: 8, samples: [1, 2, 3, 0, 4, 5, 6, 128] }), 'a.png');
    expect(Array.from(rgba.data)).toEqual([1, 2, 3, 4, 5, 6]); // colour kept even where alpha = 0
    const twoBit = decodeImage(encodePng({ width: 4, height: 1, colorType: 0, bitDepth: 2, samples: [0, 1, 2, 3] }), 'g2.png');
    expect(Array.from(twoBit.data)).toEqual([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
    const oneBit = decodeImage(encodePng({ width: 3, height: 1, colorType: 0, bitDepth: 1, samples: [1, 0, 1] }), 'g1.png');
    expect(Array.from(oneBit.data)).toEqual([255, 255, 255, 0, 0, 0, 255, 255, 255]);
  });

  it('looks up palettes and ignores their transparency', () => {
    const png = encodePng({
      width: 3,
      height: 1,
      colorType: 3,
      bitDepth: 4,
      samples: [2, 0, 1],
      palette: [
        [10, 20, 30],
        [40, 50, 60],
        [70, 80, 90],
      ],
      transparency: Uint8Array.from([0, 128, 255]),
    });
    expect(Array.from(decodeImage(png, 'p.png').data)).toEqual([70, 80, 90, 10, 20, 30, 40, 50, 60]);
  });

  it('keeps the colour of tRNS colour-keyed pixels', () => {
    const png = encodePng({ width: 2, height: 1, colorType: 2, bitDepth: 8, samples: [9, 8, 7, 1, 2, 3], transparency: Uint8Array.from([0, 9, 0, 8, 0, 7]) });
    expect(Array.from(decodeImage(png, 'k.png').data)).toEqual([9, 8, 7, 1, 2, 3]);
  });

  it('takes the high byte of 16-bit samples', () => {
    const rgb16 = encodePng({ width: 1, height: 1, colorType: 2, bitDepth: 16, samples: [0x80ff, 0x0100, 0xffff] });
    expect(Array.from(decodeImage(rgb16, 'c16.png').data)).toEqual([0x80, 0x01, 0xff]);
    const grey16 = encodePng({ width: 2, height: 1, colorType: 0, bitDepth: 16, samples: [0x1234, 0xfedc] });
    expect(Array.from(decodeImage(grey16, 'g16.png').data)).toEqual([0x12, 0x12, 0x12, 0xfe, 0xfe, 0xfe]);
  });

  it('refuses an oversized header before decoding any pixel data', () => {
    // IHDR declares 100000×100000 and the IDAT is garbage: refusing it proves nothing was inflated.
    const ihdr = new Uint8Array(13);
    new DataView(ihdr.buffer).setUint32(0, 100000);
    new DataView(ihdr.buffer).setUint32(4, 100000);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const bomb = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...pngChunk('IHDR', ihdr), ...pngChunk('IDAT', Uint8Array.from([1, 2, 3]))]);
    expect(readImageInfo(bomb, 'bomb.png')).toEqual({ format: 'png', width: 100000, height: 100000, channels: 3 });
    expectImageError(
      () => decodeImage(bomb, 'bomb.png'),
      new RegExp(`bomb\\.png: image is 100000×100000 = 10000000000 pixels, more than the limit of ${DEFAULT_MAX_PIXELS}`),
    );
  });

  it('reports corrupt PNG data as an ImageError', () => {
    const good = encodePng({ width: 4, height: 4, colorType: 2, bitDepth: 8, samples: Array.from({ length: 48 }, (_, i) => i) });
    // Cut inside the zlib stream's deflate data (the last 20 bytes are IEND, the IDAT CRC and the Adler-32 only: PIL reads that).
    expectImageError(() => decodeImage(good.subarray(0, good.length - 30), 'cut.png'), /cut\.png: truncated PNG: the file ends inside the image data/);
    expect(decodeImage(good.subarray(0, good.length - 20), 'tail.png')).toEqual(decodeImage(good, 'good.png'));
    expectImageError(() => decodeImage(good.subarray(0, 20), 'short.png'), /short\.png: truncated PNG/);
  });
});

describe('decodeImage: JPEG (libjpeg-turbo-exact)', () => {
  // sha256 (first 16 hex digits) of the RGB pixels that libjpeg-turbo 2.1.5 (`djpeg -dct int`,
  // default fancy upsampling) and PIL 9.4 (`Image.open(f).convert('RGB')`) produce for
  // syntheticJpegs(); the encoder is deterministic.
  const LIBJPEG_DIGESTS: Record<string, string> = {
    '4:4:4 37×29': '1b16eb95a00a2ab1',
    '4:2:0 37×29': 'b4579bdde14a8200',
    '4:2:2 37×29': '2cefa15190aa44b0',
    '4:4:0 37×29': '959702b9d8af34e7',
    '4:1:1 37×29': '958da4d6b87a676c',
    '4:2:0 progressive, restart every 2 MCUs, 64×48': '79c028faab0313bd',
    '4:2:0 3×5 (chroma 2 wide: replication)': '43e743a940ef7bc8',
    'Cb sampled 2×2 above 1×1 luma, 18×13': 'f25829a9f2cc5878',
    'grey progressive 19×11': '99dee415a5102d0c',
    'RGB (Adobe transform 0) 4:2:0 29×21': '8064be53b2a5f4d7',
    // PIL: CMYK read with Adobe inversion ("CMYK;I"), then Pillow's cmyk2rgb.
    'CMYK (Adobe transform 0) 21×14': '0152451124f161dc',
    'YCCK (Adobe transform 2) 2x2,1x1,1x1,2x2 21×14': '7dbc59d3d130ba70',
  };
  const synthetic = syntheticJpegs();

  it.each(synthetic.map((s) => [s.name, s.bytes] as const))('matches libjpeg-turbo bit for bit: %s', (name, bytes) => {
    expect(digest(decodeImage(bytes, name).data)).toBe(LIBJPEG_DIGESTS[name]);
  });

  it('decodes close to the source and to jpeg-js at 4:4:4', () => {
    const [w, h] = [64, 48];
    const source = testPattern(w, h);
    const bytes = encodeJpeg({ width: w, height: h, planes: rgbToYccPlanes(source, w * h), quantScale: 0.25 });
    const ours = decodeImage(bytes, 'pattern.jpg');
    expect([ours.width, ours.height]).toEqual([w, h]);
    // Measured: 2.79 from the source (jpeg-js: 2.86), 0.48 from jpeg-js (IDCT rounding).
    expect(meanAbsDiff(ours.data, source)).toBeLessThan(3.5);
    expect(meanAbsDiff(ours.data, jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false }).data)).toBeLessThan(1);
  });

  it('upsamples 4:2:0 chroma with the triangle filter, unlike jpeg-js', () => {
    // On smooth colour ramps the triangle filter reconstructs chroma better than replication.
    // Measured: 0.81 from the source (jpeg-js 2.26), 2.14 between the two.
    const [w, h] = [48, 32];
    const ramps = new Uint8Array(w * h * 3);
    for (let p = 0; p < w * h; p++) ramps.set([(p % w) * 5, Math.floor(p / w) * 7, 255 - (p % w) * 4], p * 3);
    const smooth = encodeJpeg({
      width: w,
      height: h,
      planes: rgbToYccPlanes(ramps, w * h),
      sampling: [
        [2, 2],
        [1, 1],
        [1, 1],
      ],
      quantScale: 0.25,
    });
    const oursSmooth = decodeImage(smooth, 'smooth.jpg').data;
    const jsSmooth = jpeg.decode(smooth, { useTArray: true, formatAsRGBA: false }).data;
    expect(meanAbsDiff(oursSmooth, ramps)).toBeLessThan(1.2);
    expect(meanAbsDiff(jsSmooth, ramps)).toBeGreaterThan(2 * meanAbsDiff(oursSmooth, ramps));
    expect(meanAbsDiff(oursSmooth, jsSmooth)).toBeLessThan(3);
    // …while at hard chroma edges they differ by tens of levels (libjpeg blends across them).
    const edges = syntheticJpegs().find((s) => s.name === '4:2:0 37×29')!.bytes;
    const ours = decodeImage(edges, 'edges.jpg').data;
    const jsEdges = jpeg.decode(edges, { useTArray: true, formatAsRGBA: false }).data;
    expect(Math.max(...ours.map((v, i) => Math.abs(v - jsEdges[i])))).toBeGreaterThan(30);
  });

  it.each([
    [
      '4:4:4',
      [
        [1, 1],
        [1, 1],
        [1, 1],
      ],
    ],
    [
      '4:2:0',
      [
        [2, 2],
        [1, 1],
        [1, 1],
      ],
    ],
    [
      '4:2:2',
      [
        [2, 1],
        [1, 1],
        [1, 1],
      ],
    ],
    [
      '4:4:0',
      [
        [1, 2],
        [1, 1],
        [1, 1],
      ],
    ],
  ] as const)('progressive, restart intervals and separate scans decode like baseline (%s)', (_, sampling) => {
    const [w, h] = [45, 37];
    const planes = rgbToYccPlanes(testPattern(w, h), w * h);
    const options = { width: w, height: h, planes, sampling: sampling.map((s) => [...s] as [number, number]), quantScale: 0.3 };
    const baseline = decodeImage(encodeJpeg(options), 'baseline.jpg').data;
    const variants = {
      progressive: encodeJpeg({ ...options, progressive: simpleProgression(3) }),
      'progressive + restart 3': encodeJpeg({ ...options, progressive: simpleProgression(3), restartInterval: 3 }),
      'restart 1': encodeJpeg({ ...options, restartInterval: 1 }),
      'separate scans': encodeJpeg({ ...options, separateScans: true }),
    };
    expect(readJpegInfo(variants.progressive, 'p.jpg').progressive).toBe(true);
    for (const [name, bytes] of Object.entries(variants)) {
      expect(digest(decodeImage(bytes, name).data), name).toBe(digest(baseline));
    }
  });

  it('follows libjpeg for the colour space: JFIF → YCbCr, else Adobe transform, else component ids', () => {
    const [w, h] = [16, 8];
    const rgb = testPattern(w, h);
    const planes = [0, 1, 2].map((c) => Uint8Array.from({ length: w * h }, (_, i) => rgb[i * 3 + c]));
    const asRgb = [
      encodeJpeg({ width: w, height: h, planes, jfif: false, adobeTransform: 0, quantScale: 0.1 }),
      encodeJpeg({ width: w, height: h, planes, jfif: false, componentIds: [0x52, 0x47, 0x42], quantScale: 0.1 }),
    ];
    for (const bytes of asRgb) expect(meanAbsDiff(decodeImage(bytes, 'rgb.jpg').data, rgb)).toBeLessThan(2);
    // The same samples read as YCbCr (JFIF wins over Adobe, as in libjpeg) come out very differently.
    const asYcc = encodeJpeg({ width: w, height: h, planes, jfif: true, adobeTransform: 0, quantScale: 0.1 });
    expect(meanAbsDiff(decodeImage(asYcc, 'ycc.jpg').data, rgb)).toBeGreaterThan(20);
  });

  it('reads header facts without decoding', () => {
    const bytes = synthetic.find((s) => s.name.startsWith('4:2:2'))!.bytes;
    expect(readJpegInfo(bytes, 'x.jpg')).toEqual({ width: 37, height: 29, components: 3, progressive: false, sampling: '2x1,1x1,1x1' });
    expect(readImageInfo(bytes, 'x.jpg')).toEqual({ format: 'jpeg', width: 37, height: 29, channels: 3 });
  });
});

describe('decodeImage: refusals and corrupt data', () => {
  const good = syntheticJpegs()[1].bytes; // 4:2:0 37×29 baseline
  const sosAt = good.findIndex((b, i) => b === 0xff && good[i + 1] === 0xda);

  it('refuses files that are neither JPEG nor PNG, naming the first bytes', () => {
    expectImageError(
      () => decodeImage(new TextEncoder().encode('GIF89a....'), 'x.gif'),
      /x\.gif: not a JPEG or PNG image .*found first bytes 47 49 46 38 39 61 2E 2E/,
    );
    expectImageError(() => decodeImage(new Uint8Array(0), 'empty.jpg'), /empty\.jpg: not a JPEG or PNG image .*\(empty file\)/);
  });

  it('refuses truncated JPEGs', () => {
    const inScan = good.subarray(0, sosAt + 60);
    expectImageError(
      () => decodeImage(inScan, 'cut.jpg'),
      /cut\.jpg: corrupt JPEG: scan 1: the file ends inside the scan data \(truncated\) at byte \d+: MCUs [1-6]–6 of 6 are incomplete or missing/,
    );
    const loneFf = Uint8Array.from([...inScan, 0xff]); // cut right after an FF (found by the fuzz harness: was a TypeError)
    expectImageError(() => decodeImage(loneFf, 'ff.jpg'), /ff\.jpg: corrupt JPEG: scan 1: the file ends inside the scan data \(truncated\) at byte \d+: MCUs/);
    // Missing only its tail (the last bytes of scan data and EOI): the last MCU is named, not "decoded 6 of 6".
    const eoi = good.length - 2;
    expectImageError(
      () => decodeImage(good.subarray(0, eoi - 1), 'tail.jpg'),
      /tail\.jpg: corrupt JPEG: scan 1: the file ends inside the scan data \(truncated\) at byte \d+: the last MCU \(6 of 6\) is incomplete/,
    );
    expectImageError(() => decodeImage(good.subarray(0, 30), 'head.jpg'), /head\.jpg: corrupt JPEG: .*truncated/);
    expectImageError(() => decodeImage(good.subarray(0, 2), 'soi.jpg'), /soi\.jpg: corrupt JPEG: file ends before the frame header/);
  });

  it('refuses garbage after SOI', () => {
    const garbage = Uint8Array.from([0xff, 0xd8, 0x12, 0x34, ...good.subarray(2)]);
    expectImageError(() => decodeImage(garbage, 'g.jpg'), /g\.jpg: corrupt JPEG: expected a marker \(FF xx\) at byte 2, found 12/);
  });

  it('refuses scan data cut short by a marker, and bad restart markers', () => {
    const early = Uint8Array.from([...good.subarray(0, sosAt + 40), 0xff, 0xd9]);
    expectImageError(() => decodeImage(early, 'e.jpg'), /e\.jpg: corrupt JPEG: scan 1: the scan data stops at the marker FF D9/);
    const restarts = encodeJpeg({ width: 32, height: 8, planes: [new Uint8Array(256).fill(90)], restartInterval: 1 });
    const rst = restarts.findIndex((b, i) => b === 0xff && restarts[i + 1] === 0xd1);
    const wrong = Uint8Array.from(restarts);
    wrong[rst + 1] = 0xd5;
    expectImageError(() => decodeImage(wrong, 'r.jpg'), /r\.jpg: corrupt JPEG: scan 1: expected restart marker RST1 \(FF D1\) at byte \d+, found FF D5/);
  });

  it('refuses unsupported JPEG variants with a clear reason', () => {
    const withMarker = (marker: number): Uint8Array => {
      const copy = Uint8Array.from(good);
      const sof = copy.findIndex((b, i) => b === 0xff && copy[i + 1] === 0xc0);
      copy[sof + 1] = marker;
      return copy;
    };
    expectImageError(() => decodeImage(withMarker(0xc9), 'a.jpg'), /a\.jpg: unsupported JPEG: SOF9 \(arithmetic coding\)/);
    expectImageError(() => decodeImage(withMarker(0xc3), 'l.jpg'), /l\.jpg: unsupported JPEG: SOF3 \(lossless\)/);
    const sof = good.findIndex((b, i) => b === 0xff && good[i + 1] === 0xc0);
    const twelveBit = Uint8Array.from(good);
    twelveBit[sof + 4] = 12;
    expectImageError(() => decodeImage(twelveBit, 't.jpg'), /t\.jpg: unsupported JPEG: 12-bit samples/);
    const twoComponents = encodeJpeg({ width: 8, height: 8, planes: [0, 1].map(() => new Uint8Array(64).fill(100)) });
    expectImageError(() => decodeImage(twoComponents, 'two.jpg'), /two\.jpg: unsupported JPEG: 2 components \(only 1 = grey, 3 = colour, 4 = CMYK\)/);
  });

  it('refuses an oversized JPEG header before allocating anything', () => {
    // JPEG sizes are 16-bit: 65000×65000 = 4.2e9 pixels; the scan data is never looked at.
    const bomb = Uint8Array.from(good);
    const sof = bomb.findIndex((b, i) => b === 0xff && bomb[i + 1] === 0xc0);
    bomb.set([65000 >> 8, 65000 & 0xff, 65000 >> 8, 65000 & 0xff], sof + 5);
    expectImageError(
      () => decodeImage(bomb, 'bomb.jpg'),
      /bomb\.jpg: image is 65000×65000 = 4225000000 pixels, more than the limit of 89478485 \(decompression-bomb guard\)/,
    );
    expectImageError(() => decodeImage(good, 'small.jpg', { maxPixels: 1000 }), /small\.jpg: image is 37×29 = 1073 pixels, more than the limit of 1000/);
  });

  it('never throws anything but ImageError on damaged files (deterministic fuzz)', () => {
    const sources = [good, syntheticJpegs()[5].bytes]; // baseline 4:2:0, progressive with restarts
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    let refused = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bytes = Uint8Array.from(sources[trial % 2]);
      let damaged: Uint8Array = bytes;
      if (trial % 3 === 0) damaged = bytes.subarray(0, random(bytes.length));
      else if (trial % 3 === 1) for (let k = 0; k <= random(4); k++) bytes[random(bytes.length)] = random(256);
      else bytes.set([0xff, random(256)], random(bytes.length - 1));
      try {
        decodeImage(damaged, 'fuzz.jpg');
      } catch (error) {
        expect(error).toBeInstanceOf(ImageError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});

describeWithData('real ImageNet sample (../shared/data)', () => {
  const dir = path.join(SHARED_DATA, 'imagenet-sample');
  let labels: { file: string; width: number; height: number; channels: number }[];
  let files: string[];
  beforeAll(() => {
    labels = readFileSync(path.join(dir, 'labels.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => {
        const fields = line.split(',');
        const [width, height, channels] = fields.slice(-3).map(Number);
        return { file: fields[0], width, height, channels };
      });
    files = readdirSync(path.join(dir, 'images')).sort();
  });

  it('decodes all 500 images with the sizes of labels.csv, close to jpeg-js', () => {
    expect(labels.length).toBe(500);
    let sum = 0;
    let count = 0;
    let worstImageMean = 0;
    for (const label of labels) {
      const file = path.join(dir, 'images', label.file);
      const bytes = readFileSync(file);
      const info = readImageInfo(bytes, file);
      expect(info, label.file).toEqual({ format: 'jpeg', width: label.width, height: label.height, channels: label.channels });
      const ours = decodeImage(bytes, file);
      expect([ours.width, ours.height, ours.data.length]).toEqual([label.width, label.height, label.width * label.height * 3]);
      const reference = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 }).data;
      let imageSum = 0;
      for (let i = 0; i < ours.data.length; i++) imageSum += Math.abs(ours.data[i] - reference[i]);
      sum += imageSum;
      count += ours.data.length;
      worstImageMean = Math.max(worstImageMean, imageSum / ours.data.length);
    }
    // Measured: mean 0.576 / 255 over all samples, worst image 2.41 (chroma edges: jpeg-js
    // upsamples chroma by replication, libjpeg with the triangle filter).
    expect(sum / count).toBeLessThan(1);
    expect(worstImageMean).toBeLessThan(4);
  });

  it("reproduces PIL's timm eval crops bit for bit", () => {
    // sha256 of the 500 uint8 224×224×3 crops, concatenated in sorted file order, from
    //   img = Image.open(f).convert('RGB'); w, h = img.size
    //   (nw, nh) = (256, int(256*h/w)) if w <= h else (int(256*w/h), 256)
    //   img = img.resize((nw, nh), Image.BICUBIC)
    //   top, left = int(round((nh-224)/2.0)), int(round((nw-224)/2.0)); img.crop((left, top, left+224, top+224))
    // with PIL 9.4.0 + libjpeg-turbo 2.1.5 (Debian bookworm python3-pil).
    const hash = createHash('sha256');
    for (const name of files) {
      const file = path.join(dir, 'images', name);
      const resized = resizeShorterSide(decodeImage(readFileSync(file), file), resizeTarget(DEIT), 'bicubic');
      hash.update(centerCrop(resized, 224).data);
    }
    expect(hash.digest('hex')).toBe('b9e4009618157e1587689245907a1e56e74ca0cae933277a076dd4b18b379bc3');
  });
});

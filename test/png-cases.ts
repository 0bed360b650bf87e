import { encodePng, pngChunk, testPattern, type PngEncodeOptions } from './image-writers.js';

/**
 * PNG files covering the standard's colour types, bit depths, filters and interlacing, plus
 * the leniencies of PIL; png.test.ts checks our decoder against PIL 9.4's output on each.
 */
export interface PngCase {
  name: string;
  bytes: Uint8Array;
}

/** Samples for `channels` channels at `bitDepth`, from the RGB test pattern (deterministic). */
function samples(width: number, height: number, channels: number, bitDepth: number): number[] {
  const rgb = testPattern(width, height);
  const max = (1 << bitDepth) - 1;
  const out: number[] = [];
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) {
      const v = rgb[p * 3 + (c % 3)] ^ (c === 3 ? 0x5a : 0);
      out.push(bitDepth === 16 ? v * 257 + ((p * 7 + c) & 0xff) - (v === 255 ? 0xff : 0) : Math.round((v / 255) * max));
    }
  }
  return out;
}

const ALL_FILTERS = [0, 1, 2, 3, 4];
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

function image(
  colorType: PngEncodeOptions['colorType'],
  bitDepth: PngEncodeOptions['bitDepth'],
  width: number,
  height: number,
  rest: Partial<PngEncodeOptions> = {},
): Uint8Array {
  return encodePng({ width, height, colorType, bitDepth, samples: samples(width, height, CHANNELS[colorType], bitDepth), filters: ALL_FILTERS, ...rest });
}

const PALETTE: [number, number, number][] = [
  [200, 10, 30],
  [0, 128, 255],
  [250, 250, 0],
  [20, 20, 20],
  [99, 1, 250],
];

export function pngCases(): PngCase[] {
  const cases: PngCase[] = [];
  for (const interlaced of [false, true]) {
    const tag = interlaced ? 'Adam7' : 'plain';
    for (const [type, depths] of [
      [0, [1, 2, 4, 8, 16]],
      [2, [8, 16]],
      [4, [8, 16]],
      [6, [8, 16]],
    ] as const) {
      for (const depth of depths) cases.push({ name: `${tag} colour type ${type}, ${depth}-bit, 13×11`, bytes: image(type, depth, 13, 11, { interlaced }) });
    }
    for (const depth of [1, 2, 4, 8] as const) {
      // Indices up to 2^depth − 1 but only 5 palette entries: PIL shows (i, i, i) beyond them.
      cases.push({ name: `${tag} palette ${depth}-bit, 5 entries, 9×7`, bytes: image(3, depth, 9, 7, { interlaced, palette: PALETTE }) });
    }
    cases.push({ name: `${tag} 1×1 RGB`, bytes: image(2, 8, 1, 1, { interlaced }) });
    cases.push({ name: `${tag} 3×2 RGBA (passes left empty)`, bytes: image(6, 8, 3, 2, { interlaced }) });
  }
  const rgb = image(2, 8, 17, 5);
  cases.push({ name: 'bytes after IEND', bytes: Uint8Array.from([...rgb, ...new TextEncoder().encode('trailing bytes, as some encoders leave')]) });
  cases.push({ name: 'no IEND', bytes: rgb.subarray(0, rgb.length - 12) });
  cases.push({ name: 'palette without PLTE', bytes: image(3, 4, 9, 7) });
  const iend = rgb.length - 12;
  cases.push({
    name: 'unknown critical chunk before IEND',
    bytes: Uint8Array.from([...rgb.subarray(0, iend), ...pngChunk('ABCD', Uint8Array.of(1, 2)), ...rgb.subarray(iend)]),
  });
  return cases;
}

/**
 * Small, deliberately simple image encoders for tests: a JPEG encoder (baseline or progressive
 * with spectral selection and successive approximation, any sampling factors, restart
 * intervals) and a PNG writer for every colour type and bit depth. Nothing here aims at
 * compression; everything aims at producing valid, deterministic files.
 */
import { deflateSync } from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// JPEG

const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
  15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]; // zig-zag index → natural index

/** T.81 Annex K luminance table, natural order. */
const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103,
  77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/** One scan of a progressive script: components (indices into the frame), band Ss..Se, Ah, Al. */
export interface ProgressiveScan {
  components: number[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

/** libjpeg's jpeg_simple_progression script for 3 components (1 component: the same for it). */
export function simpleProgression(componentCount: number): ProgressiveScan[] {
  const all = Array.from({ length: componentCount }, (_, i) => i);
  if (componentCount === 1) {
    return [
      { components: [0], ss: 0, se: 0, ah: 0, al: 1 },
      { components: [0], ss: 1, se: 5, ah: 0, al: 2 },
      { components: [0], ss: 6, se: 63, ah: 0, al: 2 },
      { components: [0], ss: 1, se: 63, ah: 2, al: 1 },
      { components: [0], ss: 0, se: 0, ah: 1, al: 0 },
      { components: [0], ss: 1, se: 63, ah: 1, al: 0 },
    ];
  }
  return [
    { components: all, ss: 0, se: 0, ah: 0, al: 1 },
    { components: [0], ss: 1, se: 5, ah: 0, al: 2 },
    { components: [2], ss: 1, se: 63, ah: 0, al: 1 },
    { components: [1], ss: 1, se: 63, ah: 0, al: 1 },
    { components: [0], ss: 6, se: 63, ah: 0, al: 2 },
    { components: [0], ss: 1, se: 63, ah: 2, al: 1 },
    { components: all, ss: 0, se: 0, ah: 1, al: 0 },
    { components: [2], ss: 1, se: 63, ah: 1, al: 0 },
    { components: [1], ss: 1, se: 63, ah: 1, al: 0 },
    { components: [0], ss: 1, se: 63, ah: 1, al: 0 },
  ];
}

export interface JpegEncodeOptions {
  width: number;
  height: number;
  /** Full-resolution planes [height, width], one per component (Y, Cb, Cr / grey / R, G, B). */
  planes: Uint8Array[];
  /** [h, v] per component; default 1×1 each. */
  sampling?: [number, number][];
  /** Multiplier applied to the Annex K luminance table (clamped to 1..255); default 1. */
  quantScale?: number;
  /** Progressive scan script; omitted → baseline. */
  progressive?: ProgressiveScan[];
  /** Baseline only: one scan per component instead of one interleaved scan. */
  separateScans?: boolean;
  restartInterval?: number;
  jfif?: boolean; // default true
  adobeTransform?: number; // write an Adobe APP14 segment with this transform flag
  componentIds?: number[]; // default 1, 2, 3
}

class BitWriter {
  private bytes: number[] = [];
  private buffer = 0;
  private count = 0;

  write(value: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.buffer = (this.buffer << 1) | ((value >> i) & 1);
      if (++this.count === 8) this.flushByte();
    }
  }

  private flushByte(): void {
    this.bytes.push(this.buffer);
    if (this.buffer === 0xff) this.bytes.push(0x00);
    this.buffer = 0;
    this.count = 0;
  }

  /** Pads the last byte with 1-bits and returns the stuffed bytes so far. */
  finish(): number[] {
    if (this.count > 0) this.write(0x7f, 8 - this.count);
    const out = this.bytes;
    this.bytes = [];
    return out;
  }
}

/** Fixed, generous Huffman tables: DC sizes 0..11 as 4-bit codes, all 176 AC symbols (run 0..15, size 0..10) as 8-bit codes. */
const DC_SYMBOLS = Array.from({ length: 12 }, (_, i) => i);
const AC_SYMBOLS = Array.from({ length: 176 }, (_, i) => (Math.floor(i / 11) << 4) | (i % 11));
const DC_CODE = new Map(DC_SYMBOLS.map((s, i) => [s, { code: i, length: 4 }]));
const AC_CODE = new Map(AC_SYMBOLS.map((s, i) => [s, { code: i, length: 8 }]));

function bitSize(value: number): number {
  let magnitude = Math.abs(value);
  let size = 0;
  while (magnitude > 0) {
    size++;
    magnitude >>= 1;
  }
  return size;
}

/** Writes a signed value as (size, magnitude bits), T.81 F.1.2.1. */
function writeValue(w: BitWriter, value: number, size: number): void {
  if (size > 0) w.write(value < 0 ? value + (1 << size) - 1 : value, size);
}

function writeSymbol(w: BitWriter, table: Map<number, { code: number; length: number }>, symbol: number): void {
  const entry = table.get(symbol);
  if (!entry) throw new Error(`test encoder: no Huffman code for symbol 0x${symbol.toString(16)}`);
  w.write(entry.code, entry.length);
}

interface EncComponent {
  h: number;
  v: number;
  blocksPerLine: number;
  blocksPerColumn: number;
  width: number; // ceil(W·h/maxH)
  height: number;
  blocks: Int32Array; // [blocksPerColumn · blocksPerLine · 64] quantised, natural order
}

/** Forward DCT (floating point, orthonormal ×8 scaling as in T.81 A.3.3) and quantisation. */
function quantisedBlock(samples: Float64Array /* [64] */, quant: number[], out: Int32Array, offset: number): void {
  for (let v = 0; v < 8; v++) {
    for (let u = 0; u < 8; u++) {
      let sum = 0;
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          sum += (samples[y * 8 + x] - 128) * COS[x * 8 + u] * COS[y * 8 + v];
        }
      }
      const cu = u === 0 ? Math.SQRT1_2 : 1;
      const cv = v === 0 ? Math.SQRT1_2 : 1;
      const value = Math.round((0.25 * cu * cv * sum) / quant[v * 8 + u]);
      out[offset + v * 8 + u] = Math.max(-1023, Math.min(1023, value)); // sizes ≤ 10 fit the AC table
    }
  }
}
const COS = new Float64Array(64).map((_, i) => Math.cos(((2 * Math.floor(i / 8) + 1) * (i % 8) * Math.PI) / 16));

function buildComponents(opts: JpegEncodeOptions, quant: number[]): { components: EncComponent[]; maxH: number; maxV: number } {
  const sampling = opts.sampling ?? opts.planes.map(() => [1, 1] as [number, number]);
  const maxH = Math.max(...sampling.map((s) => s[0]));
  const maxV = Math.max(...sampling.map((s) => s[1]));
  const mcusPerLine = Math.ceil(opts.width / (8 * maxH));
  const mcusPerColumn = Math.ceil(opts.height / (8 * maxV));
  const components = opts.planes.map((plane, ci) => {
    const [h, v] = sampling[ci];
    const fx = maxH / h;
    const fy = maxV / v;
    const width = Math.ceil((opts.width * h) / maxH);
    const height = Math.ceil((opts.height * v) / maxV);
    // Box-filter downsampling with edge replication.
    const sample = (x: number, y: number): number => {
      const cx = Math.min(x, width - 1);
      const cy = Math.min(y, height - 1);
      let sum = 0;
      for (let dy = 0; dy < fy; dy++) {
        for (let dx = 0; dx < fx; dx++) {
          const sx = Math.min(cx * fx + dx, opts.width - 1);
          const sy = Math.min(cy * fy + dy, opts.height - 1);
          sum += plane[sy * opts.width + sx];
        }
      }
      return sum / (fx * fy);
    };
    const blocksPerLine = mcusPerLine * h;
    const blocksPerColumn = mcusPerColumn * v;
    const blocks = new Int32Array(blocksPerLine * blocksPerColumn * 64);
    const samples = new Float64Array(64);
    for (let by = 0; by < blocksPerColumn; by++) {
      for (let bx = 0; bx < blocksPerLine; bx++) {
        for (let i = 0; i < 64; i++) samples[i] = Math.round(sample(bx * 8 + (i % 8), by * 8 + (i >> 3)));
        quantisedBlock(samples, quant, blocks, (by * blocksPerLine + bx) * 64);
      }
    }
    return { h, v, blocksPerLine, blocksPerColumn, width, height, blocks };
  });
  return { components, maxH, maxV };
}

/** Encodes a JPEG file. Deterministic: the same options give the same bytes. */
export function encodeJpeg(opts: JpegEncodeOptions): Uint8Array {
  const quant = LUMA_QUANT.map((q) => Math.min(255, Math.max(1, Math.round(q * (opts.quantScale ?? 1)))));
  const { components, maxH, maxV } = buildComponents(opts, quant);
  const ids = opts.componentIds ?? components.map((_, i) => i + 1);
  const out: number[] = [0xff, 0xd8];
  const segment = (marker: number, payload: number[]): void => {
    out.push(0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload);
  };
  if (opts.jfif ?? true) segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  if (opts.adobeTransform !== undefined) segment(0xee, [0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, opts.adobeTransform]);
  segment(0xdb, [0, ...ZIGZAG.map((n) => quant[n])]);
  segment(opts.progressive ? 0xc2 : 0xc0, [
    8,
    opts.height >> 8,
    opts.height & 0xff,
    opts.width >> 8,
    opts.width & 0xff,
    components.length,
    ...components.flatMap((c, i) => [ids[i], (c.h << 4) | c.v, 0]),
  ]);
  const dht = (tableClass: number, symbols: number[], length: number): number[] => {
    const counts = new Array(16).fill(0);
    counts[length - 1] = symbols.length;
    return [tableClass << 4, ...counts, ...symbols];
  };
  segment(0xc4, [...dht(0, DC_SYMBOLS, 4), ...dht(1, AC_SYMBOLS, 8)]);
  if (opts.restartInterval) segment(0xdd, [opts.restartInterval >> 8, opts.restartInterval & 0xff]);

  const scans: ProgressiveScan[] =
    opts.progressive ??
    (opts.separateScans
      ? components.map((_, i) => ({ components: [i], ss: 0, se: 63, ah: 0, al: 0 }))
      : [{ components: components.map((_, i) => i), ss: 0, se: 63, ah: 0, al: 0 }]);
  for (const scan of scans) {
    segment(0xda, [scan.components.length, ...scan.components.flatMap((i) => [ids[i], 0x00]), scan.ss, scan.se, (scan.ah << 4) | scan.al]);
    out.push(...encodeScan(scan, components, maxH, maxV, opts, !!opts.progressive));
  }
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

function encodeScan(
  scan: ProgressiveScan,
  frameComponents: EncComponent[],
  maxH: number,
  maxV: number,
  opts: JpegEncodeOptions,
  progressive: boolean,
): number[] {
  const w = new BitWriter();
  const out: number[] = [];
  const comps = scan.components.map((i) => frameComponents[i]);
  const predictors = comps.map(() => 0);
  const blockEncoder = new ProgressiveBlockEncoder(w, scan);
  const encodeBlock = (ci: number, offset: number): void => {
    const block = comps[ci].blocks;
    if (!progressive) {
      encodeSequentialBlock(w, block, offset, predictors, ci);
    } else if (scan.ss === 0) {
      if (scan.ah === 0) {
        const value = block[offset] >> scan.al;
        const diff = value - predictors[ci];
        predictors[ci] = value;
        const size = bitSize(diff);
        writeSymbol(w, DC_CODE, size);
        writeValue(w, diff, size);
      } else {
        w.write((block[offset] >> scan.al) & 1, 1);
      }
    } else if (scan.ah === 0) {
      blockEncoder.acFirst(block, offset);
    } else {
      blockEncoder.acRefine(block, offset);
    }
  };

  const single = comps.length === 1 ? comps[0] : null;
  const mcusPerLine = single ? Math.ceil(single.width / 8) : Math.ceil(opts.width / (8 * maxH));
  const mcusPerColumn = single ? Math.ceil(single.height / 8) : Math.ceil(opts.height / (8 * maxV));
  let mcu = 0;
  let restarts = 0;
  for (let my = 0; my < mcusPerColumn; my++) {
    for (let mx = 0; mx < mcusPerLine; mx++, mcu++) {
      if (opts.restartInterval && mcu > 0 && mcu % opts.restartInterval === 0) {
        blockEncoder.flushEobRun();
        out.push(...w.finish(), 0xff, 0xd0 + (restarts++ & 7));
        predictors.fill(0);
      }
      if (single) {
        encodeBlock(0, (my * single.blocksPerLine + mx) * 64);
        continue;
      }
      comps.forEach((c, ci) => {
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) encodeBlock(ci, ((my * c.v + v) * c.blocksPerLine + mx * c.h + h) * 64);
        }
      });
    }
  }
  blockEncoder.flushEobRun();
  out.push(...w.finish());
  return out;
}

function encodeSequentialBlock(w: BitWriter, block: Int32Array, offset: number, predictors: number[], ci: number): void {
  const diff = block[offset] - predictors[ci];
  predictors[ci] = block[offset];
  const dcSize = bitSize(diff);
  writeSymbol(w, DC_CODE, dcSize);
  writeValue(w, diff, dcSize);
  let run = 0;
  for (let k = 1; k < 64; k++) {
    const value = block[offset + ZIGZAG[k]];
    if (value === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      writeSymbol(w, AC_CODE, 0xf0);
      run -= 16;
    }
    const size = bitSize(value);
    writeSymbol(w, AC_CODE, (run << 4) | size);
    writeValue(w, value, size);
    run = 0;
  }
  if (run > 0) writeSymbol(w, AC_CODE, 0x00);
}

/** AC scans of progressive JPEG (T.81 G.1.2.2 and G.1.2.3), with end-of-band runs. */
class ProgressiveBlockEncoder {
  private eobRun = 0;
  private eobCorrectionBits: number[] = []; // refinement bits of the blocks inside the EOB run

  constructor(
    private readonly w: BitWriter,
    private readonly scan: ProgressiveScan,
  ) {}

  flushEobRun(): void {
    if (this.eobRun === 0) return;
    const r = bitSize(this.eobRun) - 1;
    writeSymbol(this.w, AC_CODE, r << 4);
    if (r > 0) this.w.write(this.eobRun - (1 << r), r);
    for (const bit of this.eobCorrectionBits) this.w.write(bit, 1);
    this.eobRun = 0;
    this.eobCorrectionBits = [];
  }

  /** Point transform of AC values: magnitude shifted right by Al, sign kept. */
  private shifted(value: number, al: number): number {
    return value < 0 ? -(-value >> al) : value >> al;
  }

  acFirst(block: Int32Array, offset: number): void {
    const { ss, se, al } = this.scan;
    let run = 0;
    for (let k = ss; k <= se; k++) {
      const value = this.shifted(block[offset + ZIGZAG[k]], al);
      if (value === 0) {
        run++;
        continue;
      }
      this.flushEobRun();
      while (run > 15) {
        writeSymbol(this.w, AC_CODE, 0xf0);
        run -= 16;
      }
      const size = bitSize(value);
      writeSymbol(this.w, AC_CODE, (run << 4) | size);
      writeValue(this.w, value, size);
      run = 0;
    }
    if (run > 0) {
      this.eobRun++;
      if (this.eobRun === 0x7fff) this.flushEobRun();
    }
  }

  acRefine(block: Int32Array, offset: number): void {
    const { ss, se, al } = this.scan;
    const magnitudes: number[] = [];
    let lastNew = -1; // last k whose coefficient becomes non-zero in this pass
    for (let k = ss; k <= se; k++) {
      const m = Math.abs(block[offset + ZIGZAG[k]]) >> al;
      magnitudes[k] = m;
      if (m === 1) lastNew = k;
    }
    let run = 0;
    let pendingBits: number[] = []; // correction bits since the last symbol
    for (let k = ss; k <= se; k++) {
      const m = magnitudes[k];
      if (m === 0) {
        run++;
        continue;
      }
      while (run > 15 && k <= lastNew) {
        this.flushEobRun();
        writeSymbol(this.w, AC_CODE, 0xf0);
        run -= 16;
        for (const bit of pendingBits) this.w.write(bit, 1);
        pendingBits = [];
      }
      if (m > 1) {
        pendingBits.push(m & 1); // previously non-zero: one correction bit
        continue;
      }
      this.flushEobRun();
      writeSymbol(this.w, AC_CODE, (run << 4) | 1);
      this.w.write(block[offset + ZIGZAG[k]] < 0 ? 0 : 1, 1);
      for (const bit of pendingBits) this.w.write(bit, 1);
      pendingBits = [];
      run = 0;
    }
    if (run > 0 || pendingBits.length > 0) {
      this.eobRun++;
      this.eobCorrectionBits.push(...pendingBits);
      if (this.eobRun === 0x7fff || this.eobCorrectionBits.length > 900) this.flushEobRun();
    }
  }
}

/** JFIF RGB → YCbCr planes (rounded), for feeding `encodeJpeg`. */
export function rgbToYccPlanes(rgb: Uint8Array, pixels: number): Uint8Array[] {
  const planes = [new Uint8Array(pixels), new Uint8Array(pixels), new Uint8Array(pixels)];
  for (let i = 0; i < pixels; i++) {
    const r = rgb[i * 3];
    const g = rgb[i * 3 + 1];
    const b = rgb[i * 3 + 2];
    const clamp = (v: number): number => Math.min(255, Math.max(0, Math.round(v)));
    planes[0][i] = clamp(0.299 * r + 0.587 * g + 0.114 * b);
    planes[1][i] = clamp(-0.168736 * r - 0.331264 * g + 0.5 * b + 128);
    planes[2][i] = clamp(0.5 * r - 0.418688 * g - 0.081312 * b + 128);
  }
  return planes;
}

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) chunk[4 + i] = type.charCodeAt(i);
  chunk.set(data, 8);
  view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  return chunk;
}

export interface PngEncodeOptions {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Sample values row-major, channels interleaved (palette indices for colour type 3). */
  samples: ArrayLike<number>;
  palette?: [number, number, number][];
  /** Raw tRNS payload (palette alphas, or the 16-bit colour key). */
  transparency?: Uint8Array;
  /** Adam7 interlacing (default none). */
  interlaced?: boolean;
  /** Filter types (0–4) used row after row, cycling (default [0]). */
  filters?: number[];
}

const PNG_CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;
const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Packs one row of samples (channels interleaved) at the PNG bit depth. */
function packRow(samples: number[], bitDepth: number): Uint8Array {
  const row = new Uint8Array(Math.ceil((samples.length * bitDepth) / 8));
  samples.forEach((value, i) => {
    if (bitDepth === 16) {
      row[2 * i] = value >> 8;
      row[2 * i + 1] = value & 0xff;
    } else if (bitDepth === 8) {
      row[i] = value;
    } else {
      const bit = i * bitDepth;
      row[bit >> 3] |= value << (8 - bitDepth - (bit & 7));
    }
  });
  return row;
}

/** A filter type byte followed by the row filtered with it against the row above (PNG §9.2). */
function filterRow(type: number, row: Uint8Array, above: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp] : 0;
    const b = above[i];
    const c = i >= bpp ? above[i - bpp] : 0;
    const p = a + b - c;
    const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
    const predictor = [0, a, b, (a + b) >> 1, paeth][type];
    out[i + 1] = (row[i] - predictor) & 0xff;
  }
  return out;
}

/** Writes a PNG, interlaced or not, with the given row filters (filter type 0 by default). */
export function encodePng(opts: PngEncodeOptions): Uint8Array {
  const channels = PNG_CHANNELS[opts.colorType];
  const filters = opts.filters ?? [0];
  const bpp = Math.max(1, (channels * opts.bitDepth) >> 3);
  const passes = opts.interlaced ? ADAM7_PASSES : [[0, 0, 1, 1]];
  const rows: Uint8Array[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    let above: Uint8Array | null = null;
    for (let y = y0; y < opts.height; y += dy) {
      const samples: number[] = [];
      for (let x = x0; x < opts.width; x += dx) {
        for (let c = 0; c < channels; c++) samples.push(opts.samples[(y * opts.width + x) * channels + c]);
      }
      if (samples.length === 0) continue;
      const row = packRow(samples, opts.bitDepth);
      rows.push(filterRow(filters[rows.length % filters.length], row, above ?? new Uint8Array(row.length), bpp));
      above = row;
    }
  }
  const raw = new Uint8Array(rows.reduce((n, r) => n + r.length, 0));
  rows.reduce((at, r) => (raw.set(r, at), at + r.length), 0);
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, opts.width);
  view.setUint32(4, opts.height);
  ihdr[8] = opts.bitDepth;
  ihdr[9] = opts.colorType;
  ihdr[12] = opts.interlaced ? 1 : 0;
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr)];
  if (opts.palette) parts.push(pngChunk('PLTE', Uint8Array.from(opts.palette.flat())));
  if (opts.transparency) parts.push(pngChunk('tRNS', opts.transparency));
  parts.push(pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', new Uint8Array(0)));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const file = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    file.set(p, pos);
    pos += p.length;
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// Synthetic test content

/**
 * A deterministic RGB test pattern [height, width, 3] with smooth ramps, a hard-edged
 * checkerboard in blue and a saturated red disc: strong chroma edges, where decoders differ.
 */
export function testPattern(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / Math.max(1, width - 1);
      rgb[i + 1] = (y * 255) / Math.max(1, height - 1);
      rgb[i + 2] = ((x >> 2) + (y >> 2)) % 2 ? 230 : 20;
      if ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (width * height) / 10) {
        rgb[i] = 250;
        rgb[i + 1] = 30;
        rgb[i + 2] = 40;
      }
    }
  }
  return rgb;
}

/** A named JPEG made by `encodeJpeg` from `testPattern`. */
export interface SyntheticJpeg {
  name: string;
  bytes: Uint8Array;
}

const S444: [number, number][] = [
  [1, 1],
  [1, 1],
  [1, 1],
];
const S420: [number, number][] = [
  [2, 2],
  [1, 1],
  [1, 1],
];

/** JPEGs covering the decoder's paths; their libjpeg-turbo decodes are pinned by digest in image.test.ts. */
export function syntheticJpegs(): SyntheticJpeg[] {
  const ycc = (w: number, h: number): Uint8Array[] => rgbToYccPlanes(testPattern(w, h), w * h);
  const make = (name: string, w: number, h: number, extra: Partial<JpegEncodeOptions> = {}): SyntheticJpeg => ({
    name,
    bytes: encodeJpeg({ width: w, height: h, planes: ycc(w, h), quantScale: 0.5, ...extra }),
  });
  const rgb = testPattern(29, 21);
  const rgbPlanes = [0, 1, 2].map((c) => Uint8Array.from({ length: 29 * 21 }, (_, i) => rgb[i * 3 + c]));
  const small = testPattern(21, 14);
  const black = Uint8Array.from({ length: 21 * 14 }, (_, i) => (i * 7) % 256);
  const cmyk = [0, 1, 2].map((c) => Uint8Array.from({ length: 21 * 14 }, (_, i) => 255 - small[i * 3 + c]));
  return [
    make('4:4:4 37×29', 37, 29, { sampling: S444 }),
    make('4:2:0 37×29', 37, 29, { sampling: S420 }),
    make('4:2:2 37×29', 37, 29, {
      sampling: [
        [2, 1],
        [1, 1],
        [1, 1],
      ],
    }),
    make('4:4:0 37×29', 37, 29, {
      sampling: [
        [1, 2],
        [1, 1],
        [1, 1],
      ],
    }),
    make('4:1:1 37×29', 37, 29, {
      sampling: [
        [4, 1],
        [1, 1],
        [1, 1],
      ],
    }),
    make('4:2:0 progressive, restart every 2 MCUs, 64×48', 64, 48, { sampling: S420, progressive: simpleProgression(3), restartInterval: 2 }),
    make('4:2:0 3×5 (chroma 2 wide: replication)', 3, 5, { sampling: S420 }),
    make('Cb sampled 2×2 above 1×1 luma, 18×13', 18, 13, {
      sampling: [
        [1, 1],
        [2, 2],
        [1, 1],
      ],
    }),
    { name: 'grey progressive 19×11', bytes: encodeJpeg({ width: 19, height: 11, planes: [ycc(19, 11)[0]], progressive: simpleProgression(1) }) },
    {
      name: 'RGB (Adobe transform 0) 4:2:0 29×21',
      bytes: encodeJpeg({ width: 29, height: 21, planes: rgbPlanes, sampling: S420, jfif: false, adobeTransform: 0 }),
    },
    {
      name: 'CMYK (Adobe transform 0) 21×14',
      bytes: encodeJpeg({ width: 21, height: 14, planes: [...cmyk, black], jfif: false, adobeTransform: 0 }),
    },
    {
      name: 'YCCK (Adobe transform 2) 2x2,1x1,1x1,2x2 21×14',
      bytes: encodeJpeg({
        width: 21,
        height: 14,
        planes: [...rgbToYccPlanes(small, 21 * 14), black],
        sampling: [
          [2, 2],
          [1, 1],
          [1, 1],
          [2, 2],
        ],
        jfif: false,
        adobeTransform: 2,
      }),
    },
  ];
}

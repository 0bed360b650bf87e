/**
 * PNG decoder giving what PIL's `Image.open(f).convert('RGB')` gives, and as lenient as PIL
 * (checked against Pillow 9.4):
 *
 * - chunks: IHDR first (CRC checked, as PIL does); PLTE (CRC checked); IDAT chunks concatenated
 *   wherever they are; every other chunk skipped, unknown critical ones included. Decoding stops
 *   at IEND: bytes after it are ignored, and a missing IEND is no error. IDAT CRCs and the zlib
 *   Adler-32 are not checked (PIL skips the former, browsers the latter): damaged deflate data
 *   or row filters are refused, other damage shows in the pixels.
 * - all colour types and bit depths of the standard, Adam7 interlacing, filters 0–4.
 * - PIL's conversions to RGB: grey replicated to 3 channels, 1/2/4-bit grey scaled by
 *   255 / (2^depth − 1); palettes looked up, with PIL's grey ramp (i, i, i) for an index
 *   beyond PLTE or without one; alpha and tRNS ignored (convert('RGB') drops alpha, it does not
 *   composite); 16-bit samples keep their high byte. One known difference: PIL opens 16-bit
 *   grey as mode "I" and clips values above 255 in I → RGB (most of such an image turns white);
 *   we take the high byte like every other 16-bit type.
 * - a zlib stream that ends cleanly before the last row leaves the missing rows black, as PIL
 *   does; a file that ends inside the stream is refused (truncated).
 *
 * Inflating is done by fflate's streaming Inflate, fed in slices and stopped as soon as every
 * row is there: the work is bounded by the image size even when the data would inflate to far
 * more. No Buffer, zlib or streams: this runs in a browser too.
 */
import { Inflate } from 'fflate';
import { ImageError } from '../errors.js';
import { createRgbImage, type RgbImage } from './rgb-image.js';

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number; // 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
  interlaced: boolean;
  channels: number; // samples per pixel stored in the file
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };
const VALID_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const COLOUR_TYPE_NAMES: Record<number, string> = { 0: 'grey', 2: 'RGB', 3: 'palette', 4: 'grey+alpha', 6: 'RGBA' };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;
/** Compressed bytes handed to the inflater at a time (at most ~1032× that comes out of it). */
const INFLATE_SLICE = 65_536;
const MAX_DEFLATE_RATIO = 1032;

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** The CRC-32 of PNG chunks (and zip, gzip): polynomial 0xEDB88320, reflected. */
export function crc32(bytes: Uint8Array): number {
  let c = -1;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

interface Chunk {
  type: string;
  start: number; // byte offset of the chunk's length field
  data: Uint8Array; // may be shorter than declared when the file ends inside it
  complete: boolean; // data and CRC all present
}

/** Walks the chunks after the signature up to IEND (or the end of the file). */
class ChunkReader {
  private readonly view: DataView;
  private pos = SIGNATURE.length;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The next chunk, or null at the end of the file or after a chunk type that is not 4 letters. */
  next(): Chunk | null {
    const { bytes, pos } = this;
    if (pos + 8 > bytes.length) return null;
    const length = this.view.getUint32(pos);
    const typeBytes = bytes.subarray(pos + 4, pos + 8);
    if (!typeBytes.every((b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a))) return null;
    const type = String.fromCharCode(...typeBytes);
    const end = pos + 12 + length;
    this.pos = end;
    return { type, start: pos, data: bytes.subarray(pos + 8, Math.min(end - 4, bytes.length)), complete: end <= bytes.length };
  }

  /** Refuses a chunk whose content we use unless it is complete with a matching CRC. */
  checkCrc(chunk: Chunk): void {
    if (!chunk.complete) {
      throw new ImageError(
        `${this.file}: truncated PNG: the file ends inside the ${chunk.type} chunk at byte ${chunk.start} (${this.bytes.length} bytes in the file)`,
      );
    }
    const stored = this.view.getUint32(chunk.start + 8 + chunk.data.length);
    const computed = crc32(this.bytes.subarray(chunk.start + 4, chunk.start + 8 + chunk.data.length));
    if (stored !== computed) {
      throw new ImageError(`${this.file}: corrupt PNG: the ${chunk.type} chunk at byte ${chunk.start} has CRC ${hex(stored)}, its data gives ${hex(computed)}`);
    }
  }
}

/** Reads IHDR (always the first chunk, at byte 8): size, bit depth, colour type, interlacing. */
export function readPngInfo(bytes: Uint8Array, file: string): PngInfo {
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b)) {
    throw new ImageError(`${file}: not a PNG image (expected the signature 89 50 4E 47 0D 0A 1A 0A)`);
  }
  const reader = new ChunkReader(bytes, file);
  const ihdr = reader.next();
  if (!ihdr || ihdr.type !== 'IHDR' || ihdr.data.length < 13) {
    if (bytes.length < 33) throw new ImageError(`${file}: truncated PNG: ${bytes.length} bytes, expected at least 33 for the signature and IHDR`);
    const found = ihdr ? `${JSON.stringify(ihdr.type)} of ${ihdr.data.length} bytes` : 'no chunk';
    throw new ImageError(`${file}: corrupt PNG: expected a 13-byte IHDR chunk after the signature, found ${found}`);
  }
  reader.checkCrc(ihdr);
  const view = new DataView(ihdr.data.buffer, ihdr.data.byteOffset, 13);
  const [width, height, bitDepth, colorType] = [view.getUint32(0), view.getUint32(4), ihdr.data[8], ihdr.data[9]];
  const [filterMethod, interlace] = [ihdr.data[11], ihdr.data[12]];
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new ImageError(`${file}: corrupt PNG: IHDR gives the size ${width}×${height}; expected sides from 1 to 2^31 − 1`);
  }
  if (!VALID_DEPTHS[colorType]?.includes(bitDepth)) {
    const expected = Object.entries(VALID_DEPTHS)
      .map(([t, d]) => `${t} (${COLOUR_TYPE_NAMES[Number(t)]}): ${d.join('/')}`)
      .join('; ');
    throw new ImageError(`${file}: corrupt PNG: colour type ${colorType} with bit depth ${bitDepth} is not a valid combination; expected ${expected}`);
  }
  if (filterMethod !== 0) throw new ImageError(`${file}: corrupt PNG: IHDR gives filter method ${filterMethod}; expected 0 (the only one defined)`);
  if (interlace > 1) throw new ImageError(`${file}: corrupt PNG: IHDR gives interlace method ${interlace}; expected 0 (none) or 1 (Adam7)`);
  return { width, height, bitDepth, colorType, interlaced: interlace === 1, channels: CHANNELS[colorType] };
}

/** Decodes a PNG file to 8-bit RGB. `maxPixels` is checked on the header, before any inflating. */
export function decodePng(bytes: Uint8Array, file: string, maxPixels: number): RgbImage {
  const info = readPngInfo(bytes, file);
  const { width, height } = info;
  if (width * height > maxPixels) {
    throw new ImageError(`${file}: image is ${width}×${height} = ${width * height} pixels, more than the limit of ${maxPixels} (decompression-bomb guard)`);
  }
  const reader = new ChunkReader(bytes, file);
  reader.next(); // IHDR
  let palette: Uint8Array | null = null;
  const idat: Chunk[] = [];
  for (let chunk = reader.next(); chunk && chunk.type !== 'IEND'; chunk = reader.next()) {
    if (chunk.type === 'IDAT') idat.push(chunk);
    else if (chunk.type === 'PLTE' && idat.length === 0) {
      reader.checkCrc(chunk);
      palette = chunk.data;
    }
  }
  if (idat.length === 0) throw new ImageError(`${file}: corrupt PNG: expected image data (IDAT chunks), found none`);

  const passes = passSizes(info);
  const rowBytes = (w: number) => Math.ceil((w * SAMPLES_PER_PIXEL[info.colorType] * info.bitDepth) / 8);
  const expected = passes.reduce((sum, p) => sum + (p.width > 0 ? p.height * (1 + rowBytes(p.width)) : 0), 0);
  const progress = (produced: number) =>
    info.interlaced ? `${produced} of ${expected} bytes of Adam7 rows` : `${Math.floor(produced / (1 + rowBytes(width)))} of ${height} rows`;
  const raw = inflateImageData(idat, expected, file, progress);

  const image = createRgbImage(width, height);
  const toRgb = pixelConverter(info, palette);
  const bytesPerPixel = Math.max(1, (SAMPLES_PER_PIXEL[info.colorType] * info.bitDepth) >> 3);
  let offset = 0; // of the current row's filter byte in raw
  for (const [p, pass] of passes.entries()) {
    if (pass.width === 0) continue;
    const length = rowBytes(pass.width);
    const zeros = new Uint8Array(length); // the row above a pass's first row
    const [x0, y0, dx, dy] = info.interlaced ? ADAM7[p] : [0, 0, 1, 1];
    for (let y = 0; y < pass.height; y++) {
      // A stream that ended early leaves the remaining rows black (as PIL does).
      if (offset + 1 + length > raw.length) return image;
      const filter = raw[offset];
      if (filter > 4)
        throw new ImageError(
          `${file}: corrupt PNG: ${info.interlaced ? `row ${y} of Adam7 pass ${p + 1}` : `row ${y}`} has filter type ${filter}; expected 0–4`,
        );
      if (y === 0) unfilterRow(filter, raw, offset + 1, zeros, 0, length, bytesPerPixel);
      else unfilterRow(filter, raw, offset + 1, raw, offset - length, length, bytesPerPixel);
      toRgb(raw, offset + 1, pass.width, image.data, ((y0 + y * dy) * width + x0) * 3, dx * 3);
      offset += 1 + length;
    }
  }
  return image;
}

/** Pixel columns and rows of each pass (one pass when not interlaced). */
function passSizes(info: PngInfo): { width: number; height: number }[] {
  if (!info.interlaced) return [{ width: info.width, height: info.height }];
  return ADAM7.map(([x0, y0, dx, dy]) => {
    const width = Math.ceil((info.width - x0) / dx);
    const height = Math.ceil((info.height - y0) / dy);
    return width > 0 && height > 0 ? { width, height } : { width: 0, height: 0 };
  });
}

/**
 * The zlib stream of the concatenated IDAT data, inflated until `expected` bytes are out (the
 * rest is never inflated). Shorter when the stream ends cleanly before that. `progress` says
 * how much of the image a number of bytes is, for messages.
 */
function inflateImageData(idat: Chunk[], expected: number, file: string, progress: (bytes: number) => string): Uint8Array {
  const total = idat.reduce((n, c) => n + c.data.length, 0);
  const stream = new Uint8Array(total);
  let at = 0;
  for (const chunk of idat) {
    stream.set(chunk.data, at);
    at += chunk.data.length;
  }
  const truncated = !idat[idat.length - 1].complete;
  if (stream.length < 2) throw new ImageError(`${file}: truncated PNG: ${stream.length} byte(s) of image data, expected a zlib stream`);
  const [cmf, flg] = [stream[0], stream[1]];
  if ((cmf & 0x0f) !== 8 || ((cmf << 8) | flg) % 31 !== 0 || flg & 0x20) {
    throw new ImageError(
      `${file}: corrupt PNG: the image data does not start with a zlib header for deflate without a preset dictionary (found ${cmf.toString(16).padStart(2, '0')} ${flg.toString(16).padStart(2, '0')})`,
    );
  }
  // Deflate expands at most 1032:1, so a short stream never needs the whole image's buffer.
  const out = new Uint8Array(Math.min(expected, MAX_DEFLATE_RATIO * stream.length + 1024));
  const capacity = out.length;
  let produced = 0;
  const inflater = new Inflate((data) => {
    const room = capacity - produced;
    out.set(room < data.length ? data.subarray(0, room) : data, produced);
    produced += Math.min(room, data.length);
  });
  try {
    for (let from = 2; from < stream.length && produced < capacity; from += INFLATE_SLICE) {
      const to = Math.min(stream.length, from + INFLATE_SLICE);
      inflater.push(stream.subarray(from, to), to === stream.length);
    }
  } catch (error) {
    if (produced >= capacity) return out;
    const reason = (error as Error).message;
    if (reason === 'unexpected EOF') {
      const cause = truncated ? 'the file ends inside the image data' : 'the image data (IDAT) ends before its zlib stream does';
      throw new ImageError(`${file}: truncated PNG: ${cause}; ${progress(produced)} were decoded`, { cause: error });
    }
    throw new ImageError(`${file}: corrupt PNG: the compressed image data is damaged (deflate: ${reason}) after ${progress(produced)}`, { cause: error });
  }
  return produced < capacity ? out.subarray(0, produced) : out;
}

/**
 * Undoes filter 0–4 (PNG standard) in place on the n bytes of r from s, with the row above
 * at u[t…t + n − 1] (offsets, not views: no allocation per row).
 */
function unfilterRow(filter: number, r: Uint8Array, s: number, u: Uint8Array, t: number, n: number, bpp: number): void {
  switch (filter) {
    case 0:
      return;
    case 1: // Sub
      for (let i = bpp; i < n; i++) r[s + i] += r[s + i - bpp];
      return;
    case 2: // Up
      for (let i = 0; i < n; i++) r[s + i] += u[t + i];
      return;
    case 3: // Average
      for (let i = 0; i < bpp; i++) r[s + i] += u[t + i] >> 1;
      for (let i = bpp; i < n; i++) r[s + i] += (r[s + i - bpp] + u[t + i]) >> 1;
      return;
    case 4: // Paeth
      for (let i = 0; i < bpp; i++) r[s + i] += u[t + i];
      for (let i = bpp; i < n; i++) {
        const a = r[s + i - bpp];
        const b = u[t + i];
        const c = u[t + i - bpp];
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        r[s + i] += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
  }
}

/**
 * Writes the row of `count` pixels that starts at bytes[start] as RGB at out[at],
 * out[at + step], … (step 3, or more for an interlaced pass).
 */
type RowConverter = (bytes: Uint8Array, start: number, count: number, out: Uint8Array, at: number, step: number) => void;

function pixelConverter(info: PngInfo, palette: Uint8Array | null): RowConverter {
  const { colorType, bitDepth } = info;
  const samples = SAMPLES_PER_PIXEL[colorType];
  if (colorType === 3) {
    const lookup = paletteLookup(palette);
    return (row, start, count, out, at, step) => {
      for (let x = 0; x < count; x++, at += step) {
        const index = subByteSample(row, start, x, bitDepth) * 3;
        out[at] = lookup[index];
        out[at + 1] = lookup[index + 1];
        out[at + 2] = lookup[index + 2];
      }
    };
  }
  const colour = colorType === 2 || colorType === 6;
  if (bitDepth >= 8) {
    const bytes = bitDepth >> 3; // the high byte of a 16-bit sample comes first
    const stride = samples * bytes;
    const green = colour ? bytes : 0;
    const blue = colour ? 2 * bytes : 0;
    return (row, start, count, out, at, step) => {
      for (let x = 0, s = start; x < count; x++, at += step, s += stride) {
        out[at] = row[s];
        out[at + 1] = row[s + green];
        out[at + 2] = row[s + blue];
      }
    };
  }
  const scale = 255 / ((1 << bitDepth) - 1); // an exact integer for depths 1, 2, 4
  return (row, start, count, out, at, step) => {
    for (let x = 0; x < count; x++, at += step) {
      const v = subByteSample(row, start, x, bitDepth) * scale;
      out[at] = v;
      out[at + 1] = v;
      out[at + 2] = v;
    }
  };
}

/** Sample x of the row at bytes[start] of one-sample pixels at 1, 2, 4 or 8 bits (most significant bits first). */
function subByteSample(bytes: Uint8Array, start: number, x: number, bitDepth: number): number {
  if (bitDepth === 8) return bytes[start + x];
  const bit = x * bitDepth;
  return (bytes[start + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
}

/** 256 RGB entries: PLTE's, then PIL's grey ramp (i, i, i) where PLTE has none. */
function paletteLookup(palette: Uint8Array | null): Uint8Array {
  const lookup = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lookup.fill(i, i * 3, i * 3 + 3);
  if (palette) lookup.set(palette.subarray(0, Math.min(256, Math.floor(palette.length / 3)) * 3));
  return lookup;
}

/**
 * Image file → 8-bit RGB, as PIL's `Image.open(f).convert('RGB')` gives it to timm.
 *
 * - JPEG: our libjpeg-turbo-exact decoder (jpeg.ts).
 * - PNG: pngjs for the bitstream, then PIL's conversions: grey replicated to 3 channels; palette
 *   looked up; alpha (RGBA, grey+alpha, palette transparency, tRNS colour keys) dropped, not
 *   composited, as `convert('RGB')` drops it; 16-bit samples keep their high byte (PIL's
 *   "RGB;16B" unpacking). One known difference: PIL opens 16-bit greyscale as mode "I" and its
 *   I → RGB conversion clips values above 255 (most of the image turns white); we take the high
 *   byte like every other 16-bit type instead.
 *
 * A decompression-bomb guard refuses images with more than `maxPixels` pixels (default
 * 89,478,485, PIL's MAX_IMAGE_PIXELS) from the header, before any pixel data is decoded.
 */
import { PNG } from 'pngjs';
import { ImageError } from '../errors.js';
import { decodeJpeg, readJpegInfo } from './jpeg.js';
import { createRgbImage, type RgbImage } from './rgb-image.js';

export type { RgbImage } from './rgb-image.js';

/** PIL's Image.MAX_IMAGE_PIXELS: int(1024 · 1024 · 1024 // 4 // 3). */
export const DEFAULT_MAX_PIXELS = 89_478_485;

export interface DecodeOptions {
  /** Refuse images with more pixels than this. Default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
}

export type ImageFormat = 'jpeg' | 'png';

/** What the file header says, without decoding pixel data. */
export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  channels: number; // channels stored in the file: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Recognises the format from the magic bytes. */
export function detectFormat(bytes: Uint8Array, file: string): ImageFormat {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
  throw new ImageError(
    `${file}: not a JPEG or PNG image (expected FF D8 or 89 50 4E 47 0D 0A 1A 0A, found first bytes ${head || '(empty file)'})`,
  );
}

/** Reads format, size and channel count from the header. */
export function readImageInfo(bytes: Uint8Array, file: string): ImageInfo {
  const format = detectFormat(bytes, file);
  if (format === 'jpeg') {
    const info = readJpegInfo(bytes, file);
    return { format, width: info.width, height: info.height, channels: info.components };
  }
  const header = readPngHeader(bytes, file);
  return { format, width: header.width, height: header.height, channels: PNG_CHANNELS[header.colorType] };
}

/** Decodes a JPEG or PNG file to RGB. `file` is only used in error messages. */
export function decodeImage(bytes: Uint8Array, file: string, options: DecodeOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = detectFormat(bytes, file);
  try {
    return format === 'jpeg' ? decodeJpeg(bytes, file, { maxPixels }) : decodePng(bytes, file, maxPixels);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImageError(`${file}: cannot decode ${format.toUpperCase()}: ${reason}`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// PNG

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };
const PNG_VALID_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number; // 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
}

/** Parses IHDR (always the first chunk, at byte 8). */
function readPngHeader(bytes: Uint8Array, file: string): PngHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33) throw new ImageError(`${file}: truncated PNG: ${bytes.length} bytes, expected at least 33 for the signature and IHDR`);
  const type = String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]);
  if (type !== 'IHDR' || view.getUint32(8) !== 13) {
    throw new ImageError(`${file}: corrupt PNG: expected a 13-byte IHDR chunk after the signature, found ${JSON.stringify(type)} of ${view.getUint32(8)} bytes`);
  }
  const header = { width: view.getUint32(16), height: view.getUint32(20), bitDepth: bytes[24], colorType: bytes[25] };
  if (header.width === 0 || header.height === 0) throw new ImageError(`${file}: corrupt PNG: size ${header.width}×${header.height}`);
  if (!PNG_VALID_DEPTHS[header.colorType]?.includes(header.bitDepth)) {
    throw new ImageError(`${file}: corrupt PNG: colour type ${header.colorType} with bit depth ${header.bitDepth} is not a valid combination`);
  }
  return header;
}

/**
 * pngjs turns pixels matching a grey/RGB tRNS colour key into transparent black; PIL keeps their
 * colour in convert('RGB'). Removing that chunk (only for colour types 0 and 2) keeps the colour.
 */
function withoutColourKey(bytes: Uint8Array, header: PngHeader): Uint8Array {
  if (header.colorType !== 0 && header.colorType !== 2) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    const next = pos + 12 + length;
    if (type === 'tRNS' && next <= bytes.length) {
      const stripped = new Uint8Array(bytes.length - (next - pos));
      stripped.set(bytes.subarray(0, pos), 0);
      stripped.set(bytes.subarray(next), pos);
      return stripped;
    }
    if (type === 'IDAT' || type === 'IEND') break; // tRNS must precede IDAT
    pos = next;
  }
  return bytes;
}

function decodePng(bytes: Uint8Array, file: string, maxPixels: number): RgbImage {
  const header = readPngHeader(bytes, file);
  const { width, height, bitDepth, colorType } = header;
  if (width * height > maxPixels) {
    throw new ImageError(`${file}: image is ${width}×${height} = ${width * height} pixels, more than the limit of ${maxPixels} (decompression-bomb guard)`);
  }
  const input = withoutColourKey(bytes, header);
  const buffer = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  // skipRescale keeps the stored sample values (pngjs would otherwise round 16 → 8 bits and
  // stretch 1/2/4-bit grey); palettes are expanded to RGBA either way.
  const png = PNG.sync.read(buffer, { skipRescale: true });
  const rgba = png.data as unknown as ArrayLike<number>; // [height, width, 4]: Uint16Array when 16-bit
  const image = createRgbImage(width, height);
  const out = image.data;
  const pixels = width * height;
  if (rgba.length < pixels * 4) throw new ImageError(`${file}: corrupt PNG: decoded ${rgba.length} samples, expected ${pixels * 4}`);
  if (colorType === 3 || bitDepth === 8) {
    for (let i = 0; i < pixels; i++) {
      out[i * 3] = rgba[i * 4];
      out[i * 3 + 1] = rgba[i * 4 + 1];
      out[i * 3 + 2] = rgba[i * 4 + 2];
    }
  } else if (bitDepth === 16) {
    for (let i = 0; i < pixels; i++) {
      out[i * 3] = rgba[i * 4] >> 8;
      out[i * 3 + 1] = rgba[i * 4 + 1] >> 8;
      out[i * 3 + 2] = rgba[i * 4 + 2] >> 8;
    }
  } else {
    // 1-, 2-, 4-bit grey: PIL scales to 8 bits by 255 / (2^depth − 1), an exact integer.
    const scale = 255 / ((1 << bitDepth) - 1);
    for (let i = 0; i < pixels; i++) {
      const v = rgba[i * 4] * scale;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  }
  return image;
}

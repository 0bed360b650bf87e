/**
 * Image file → 8-bit RGB, as PIL's `Image.open(f).convert('RGB')` gives it to timm.
 *
 * - JPEG: our libjpeg-turbo-exact decoder (jpeg.ts).
 * - PNG: our decoder (png.ts), with PIL's conversions to RGB.
 *
 * A decompression-bomb guard refuses images with more than `maxPixels` pixels (default
 * 89,478,485, PIL's MAX_IMAGE_PIXELS) from the header, before any pixel data is decoded.
 */
import { ImageError } from '../errors.js';
import { decodeJpeg, readJpegInfo } from './jpeg.js';
import { decodePng, readPngInfo } from './png.js';
import type { RgbImage } from './rgb-image.js';

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
  throw new ImageError(`${file}: not a JPEG or PNG image (expected FF D8 or 89 50 4E 47 0D 0A 1A 0A, found first bytes ${head || '(empty file)'})`);
}

/** Reads format, size and channel count from the header. */
export function readImageInfo(bytes: Uint8Array, file: string): ImageInfo {
  const format = detectFormat(bytes, file);
  if (format === 'jpeg') {
    const info = readJpegInfo(bytes, file);
    return { format, width: info.width, height: info.height, channels: info.components };
  }
  const info = readPngInfo(bytes, file);
  return { format, width: info.width, height: info.height, channels: info.channels };
}

/** Decodes a JPEG or PNG file to RGB. `file` is only used in error messages. */
export function decodeImage(bytes: Uint8Array, file: string, options: DecodeOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  return detectFormat(bytes, file) === 'jpeg' ? decodeJpeg(bytes, file, { maxPixels }) : decodePng(bytes, file, maxPixels);
}

import { readFileSync } from 'node:fs';
import { ImageError } from '../errors.js';
import type { PreprocessConfig } from '../model/types.js';
import { decodeImage, type DecodeOptions } from './decode.js';
import { preprocess } from './preprocess.js';
import type { RgbImage } from './rgb-image.js';

/** Image files (Node only): read, then decoded (decode.ts) and preprocessed (preprocess.ts) as bytes are anywhere. */

/** Reads and decodes an image file. */
export function loadImage(file: string, options?: DecodeOptions): RgbImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImageError(`${file}: cannot read image file: ${reason}`, { cause: error });
  }
  return decodeImage(bytes, file, options);
}

/** Reads, decodes and preprocesses an image file. */
export function loadImageTensor(file: string, cfg: PreprocessConfig, options?: DecodeOptions): Float32Array /* [3, S, S] */ {
  return preprocess(loadImage(file, options), cfg);
}

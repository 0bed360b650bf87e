import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { ImageError } from '../errors.js';
import type { PreprocessConfig } from '../model/types.js';
import { decodeImage, detectFormat, type DecodeOptions } from './decode.js';
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

/** Bytes of a file's head that tell a JPEG (2) or a PNG (8) apart from anything else. */
const SIGNATURE_BYTES = 8;

/**
 * Checks, without decoding, that `file` is a readable file that starts like a JPEG or PNG, so a
 * command can refuse bad inputs before it loads (or downloads) a model. ImageError otherwise,
 * saying what was expected and what was found; decoding may still refuse the file later.
 */
export function checkImageFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new ImageError(`${file}: cannot read image file: expected a readable file, found ${describeOpenError(error)}`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new ImageError(`${file}: cannot read image file: expected a file, found ${stat.isDirectory() ? 'a folder' : 'a device, pipe or socket'}`);
    const head = new Uint8Array(SIGNATURE_BYTES);
    const length = readSync(fd, head, 0, SIGNATURE_BYTES, 0);
    detectFormat(head.subarray(0, length), file);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw new ImageError(`${file}: cannot read image file: expected a readable file, found ${describeOpenError(error)}`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function describeOpenError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file (ENOENT)';
  if (code === 'EACCES' || code === 'EPERM') return `no permission to read it (${code})`;
  if (code === 'EISDIR') return 'a folder (EISDIR)';
  return code ?? (error instanceof Error ? error.message : String(error));
}

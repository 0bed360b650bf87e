import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TraceFormatError } from '../errors.js';
import { writeFolderAtomic } from '../util/atomic-file.js';
import { decodeBundle, encodeBundle, type TraceBundle } from './bundle-bytes.js';
import { MANIFEST_FILE, TENSORS_FILE } from './format.js';

export { dtypeOf, type BundleTensor, type TraceBundle } from './bundle-bytes.js';

/**
 * Trace bundles as folders on disk (Node only): manifest.json + tensors.safetensors, encoded and
 * decoded by bundle-bytes.ts.
 */

/**
 * Write `bundle` as the folder `dir` (manifest.json + tensors.safetensors), atomically: both files
 * are written beside it and renamed into place, the tensors first (writeFolderAtomic).
 * Returns the bytes written.
 */
export function writeBundle(dir: string, bundle: TraceBundle): number {
  const { manifest, tensors } = encodeBundle(bundle);
  writeFolderAtomic(dir, { [TENSORS_FILE]: tensors, [MANIFEST_FILE]: manifest });
  return manifest.length + tensors.length;
}

/**
 * Read and validate the bundle in `dir` (decodeBundle). Throws TraceFormatError naming the file
 * and the tensor, also when the folder or one of its files is missing.
 */
export function readBundle(dir: string): TraceBundle {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TraceFormatError(`${dir}: expected a trace bundle folder (${MANIFEST_FILE} + ${TENSORS_FILE}), not found`);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  if (!existsSync(manifestFile)) throw new TraceFormatError(`${manifestFile}: expected the bundle's manifest, not found`);
  const tensorsFile = path.join(dir, TENSORS_FILE);
  if (!existsSync(tensorsFile)) throw new TraceFormatError(`${tensorsFile}: expected the bundle's tensors, not found`);
  return decodeBundle({ manifest: readFileSync(manifestFile), tensors: readFileSync(tensorsFile) }, dir);
}

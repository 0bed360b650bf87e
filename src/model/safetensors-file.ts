import { readFileSync } from 'node:fs';
import { SafetensorsError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile, type TensorsToWrite } from './safetensors.js';

/** Safetensors files on disk (Node only); the format itself is safetensors.ts's. */

/** Read and validate a safetensors file. Throws SafetensorsError naming the file and the tensor. */
export function readSafetensors(file: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new SafetensorsError(`cannot read safetensors file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseSafetensors(bytes, file);
}

/** Write a safetensors file (F32, F64 or I32 tensors after their array types) atomically (util/atomic-file.ts). */
export function writeSafetensors(file: string, tensors: TensorsToWrite, metadata?: Record<string, string>): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

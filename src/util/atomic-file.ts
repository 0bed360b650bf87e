import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

/**
 * Files written so that readers see either the old file or the complete new one (Node only).
 * The one place files are written: models, their configs, hub refs, command outputs.
 */

/**
 * Write `bytes` to `file` atomically: write `file.tmp-<pid>-<random>` in the same directory,
 * fsync it, rename it over `file`.
 */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileDurable(temp, bytes);
    renameSync(temp, file);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // the temp file was never created, or is already gone
    }
    throw err;
  }
}

/** Create `file` (it must not exist), write all of `bytes`, fsync, close. */
export function writeFileDurable(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'wx');
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

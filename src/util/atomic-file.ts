import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Files written so that readers see either the old file or the complete new one (Node only).
 * The one place files are written: models, their configs, trace bundles, hub refs, command outputs.
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

/**
 * Write the folder `dir` holding `files` (name → bytes): into `<dir>.tmp-<pid>-<random>` beside
 * it, renamed to `dir`. When `dir` already exists (it may hold other files) the files are moved
 * into it one by one, in the order given; each replacement is atomic, the set is not.
 */
export function writeFolderAtomic(dir: string, files: Record<string, Uint8Array>): void {
  mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  const temp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(temp);
  try {
    for (const [name, bytes] of Object.entries(files)) writeFileDurable(path.join(temp, name), bytes);
    if (existsSync(dir)) {
      for (const name of Object.keys(files)) renameSync(path.join(temp, name), path.join(dir, name));
      rmdirSync(temp);
    } else {
      renameSync(temp, dir);
    }
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
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

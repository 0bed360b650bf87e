import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

/**
 * The real test data (weights, golden references, ImageNet sample) lives in `../shared/data`
 * beside the project checkout and is never committed. Suites that need it use
 * `describeWithData`, which skips them (with one line on stderr) when the folder is absent.
 */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SHARED_DATA = path.resolve(PROJECT_ROOT, '../shared/data');

export const hasSharedData = existsSync(SHARED_DATA);

export const describeWithData = hasSharedData ? describe : describe.skip;

const WARNED = Symbol.for('vitprune.sharedDataWarned');
const processState = process as unknown as Record<symbol, boolean>;
if (!hasSharedData && !processState[WARNED]) {
  processState[WARNED] = true;
  process.stderr.write('skipping tests that need ../shared/data: folder not found\n');
}

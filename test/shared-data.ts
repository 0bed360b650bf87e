import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

/**
 * The real test data (weights, golden references, ImageNet sample) lives in `../shared/data`
 * beside the project checkout and is never committed. `VITPRUNE_SHARED_DATA` points the data
 * root elsewhere (`.ci/run` sets it to a missing folder for its run without data).
 *
 * Suites that need the data use `describeWithData`, which skips them when the folder is absent
 * and says so in one line on stderr per suite. `describe.skip` still runs the suite's body, so
 * a body must not read data itself: read it inside `beforeAll` or `it`.
 */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SHARED_DATA = path.resolve(PROJECT_ROOT, process.env.VITPRUNE_SHARED_DATA ?? '../shared/data');

export const hasSharedData = existsSync(SHARED_DATA);

export const describeWithData = (name: string, body: () => void): void => {
  if (hasSharedData) {
    describe(name, body);
    return;
  }
  process.stderr.write(`skipped (no shared data at ${SHARED_DATA}): ${name}\n`);
  describe.skip(name, body);
};

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ImageError, VitpruneError } from '../src/errors.js';
import { ImageWorkerPool, type ImageWorkers } from '../src/eval/image-workers.js';
import { createProgress } from '../src/util/progress.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const setups = new URL('./image-worker-setups.ts', import.meta.url).href;
const photos = ['camera.png', 'chelsea.png', 'coffee.png', 'rocket.jpg'].map((f) => ({ file: path.join(ROOT, 'fixtures/images', f), label: null }));
const quiet = () => createProgress({ label: 'test', total: 0, enabled: false });

/** One run on a pool started for it, closed afterwards. */
async function runImagesInWorkers(images: typeof photos, variants: number, workers: ImageWorkers, bar = quiet()) {
  const pool = await ImageWorkerPool.start(workers);
  try {
    return await pool.run(images, variants, bar);
  } finally {
    pool.close();
  }
}

describe('evaluation threads (whole images per thread)', () => {
  it('a setup that fails in the threads is an error naming the cause, not a hang', { timeout: 60_000 }, async () => {
    const run = runImagesInWorkers(photos, 1, { threads: 2, module: setups, name: 'failingSetup', arg: null });
    await expect(run).rejects.toThrow(VitpruneError);
    await expect(run).rejects.toThrow(/could not set up the model and methods: this setup always fails/);
  });

  it('a thread that dies mid-image is an error, not a hang', { timeout: 60_000 }, async () => {
    const arg = { model: path.join(ROOT, 'fixtures/tiny-timm') };
    await expect(runImagesInWorkers(photos, 2, { threads: 2, module: setups, name: 'dyingSetup', arg })).rejects.toThrow(
      /evaluation thread \d ended before the evaluation did/,
    );
  });

  it('an unreadable image comes back as its ImageError in its place; the others run', { timeout: 60_000 }, async () => {
    const arg = { model: path.join(ROOT, 'fixtures/tiny-timm') };
    const images = [...photos.slice(0, 2), { file: path.join(ROOT, 'fixtures/README.md'), label: null }, ...photos.slice(2)];
    const outcomes = await runImagesInWorkers(images, 1, { threads: 3, module: setups, name: 'denseSetup', arg });
    expect(outcomes.map((o) => (o instanceof ImageError ? 'error' : o.length))).toEqual([1, 1, 'error', 1, 1]);
    expect((outcomes[2] as ImageError).message).toContain('README.md');
  });
});

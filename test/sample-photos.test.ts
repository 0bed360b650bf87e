import { readdirSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from './run-cli.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const IMAGES = path.resolve(import.meta.dirname, '../fixtures/images');

/** What a person sees in each sample photo, as ImageNet class descriptions that fit it. */
const SENSIBLE: Record<string, { top1?: RegExp; top5?: RegExp }> = {
  'chelsea.png': { top1: /\bcat\b/ }, // a tabby cat
  'coffee.png': { top1: /espresso|\bcup\b|coffee/ }, // a cup of coffee
  'camera.png': { top1: /tripod|camera/ }, // a photographer behind a camera on a tripod (greyscale)
  'rocket.jpg': { top5: /space shuttle|missile|projectile/ }, // a launch; the tower dominates the frame
};

interface Classified {
  file: string;
  predictions: { index: number; label: string; description: string; score: number }[];
}

describeWithData('the sample photos (fixtures/images) classified by DeiT-Tiny', () => {
  it('vitprune classify --model DIR gives each photo a sensible class', async () => {
    const files = readdirSync(IMAGES)
      .sort()
      .map((name) => path.join(IMAGES, name));
    expect(files.map((f) => path.basename(f)).sort()).toEqual(Object.keys(SENSIBLE).sort());
    const run = await runCli('classify', '--model', path.join(SHARED_DATA, 'deit-tiny'), '--top', '5', '--json', ...files);
    expect(run.code, run.stderr).toBe(0);
    const results = JSON.parse(run.stdout) as Classified[];
    for (const { file, predictions } of results) {
      const name = path.basename(file);
      const shown = predictions.map((p) => `${p.description} ${(p.score * 100).toFixed(1)} %`);
      process.stderr.write(`${name}: ${shown.join('; ')}\n`);
      const { top1, top5 } = SENSIBLE[name];
      if (top1) expect(predictions[0].description, name).toMatch(top1);
      if (top5) expect(predictions.map((p) => p.description).join('; '), name).toMatch(top5);
    }
  });
});

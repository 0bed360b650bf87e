import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { ViTRunner } from '../src/model/vit.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { TokenMethod } from '../src/prune/method.js';
import { encodePng, testPattern } from './image-writers.js';

// The README's code examples, run as written; only the model, the image and the import paths
// are replaced by local ones.

const ROOT = path.resolve(import.meta.dirname, '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-readme-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** The first ```ts block after the line `heading`, or the one whose first line is `firstLine`. */
function codeBlock(after: string, firstLine?: string): string {
  const section = README.slice(README.indexOf(after));
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  const block = firstLine ? blocks.find((b) => b.startsWith(firstLine)) : blocks[0];
  if (!block) throw new Error(`README.md: no TypeScript example after '${after}'`);
  return block;
}

/** Writes `code` as a module and imports it. */
async function run(name: string, code: string): Promise<Record<string, unknown>> {
  const file = path.join(tmp, name);
  writeFileSync(file, code);
  return import(pathToFileURL(file).href);
}

const source = (file: string) => pathToFileURL(path.join(ROOT, 'src', file)).href;

// A 12-block model (64×64 input, 64 patches) that every method can prune, and an image.
const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 64, cropPct: 1 };
const model = randomModel(cfg, 9);

describe('README examples', () => {
  it('"Use as a library" classifies, dense and pruned', async () => {
    const folder = path.join(tmp, 'model');
    saveModelFolder(folder, model);
    const image = path.join(tmp, 'photo.png');
    writeFileSync(image, encodePng({ width: 80, height: 64, colorType: 2, bitDepth: 8, samples: testPattern(80, 64) }));
    const code = codeBlock('## Use as a library')
      .replace("from 'vitprune'", `from '${source('index.ts')}'`)
      .replace("'timm/deit_tiny_patch16_224.fb_in1k'", JSON.stringify(folder))
      .replace("'photo.jpg'", JSON.stringify(image));
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    await run('library.ts', code);
    expect(lines).toHaveLength(6);
    expect(lines.slice(0, 5).every((l) => /^\d \d {2}0\.\d{3}$/.test(l))).toBe(true); // index, label, no description, score
    expect(lines[5]).toMatch(/^pruned: \d 0\.\d{3}$/);
  });

  it('"Adding a token-pruning method": the example method plans budgets and keep ratios and runs as counted', async () => {
    const code = codeBlock('## Adding a token-pruning method', '// src/prune/centre.ts')
      .replace(/from '\.\.\/(model\/[\w-]+\.js)'/g, (_, file: string) => `from '${source(file.replace(/\.js$/, '.ts'))}'`)
      .replace("from './method.js'", `from '${source('prune/method.ts')}'`);
    const { centre } = (await run('centre.ts', code)) as { centre: TokenMethod };
    expect(centre.name).toBe('centre');
    const runner = new ViTRunner(model, createReferenceKernels());
    const input = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.1));
    const plan = await centre.plan(cfg, { budget: 0.7 });
    expect(Math.abs(plan.gmacs! / runner.forward(input).gmacs / 0.7 - 1)).toBeLessThanOrEqual(0.01);
    const { gmacs, tokens } = runner.forward(input, plan.hooks(0));
    expect(gmacs).toBe(plan.gmacs);
    expect(tokens[4].attention).toBe(1 + (plan.settings as { patches: number }).patches);
    expect((await centre.plan(cfg, { keep: 0.5 })).settings).toEqual({ patches: 32 });
  });
});

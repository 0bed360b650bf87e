/**
 * Generates fixtures/: a tiny random ViT in both checkpoint layouts (timm and transformers)
 * and its golden outputs computed by the reference path. Run `npm run fixtures` after a
 * deliberate change of the reference forward pass; test/golden.test.ts checks both paths
 * against these files.
 *
 *   fixtures/tiny-timm/          config.json + model.safetensors (timm names)
 *   fixtures/tiny-transformers/  config.json + preprocessor_config.json + model.safetensors (ViTForImageClassification)
 *   fixtures/tiny-golden.safetensors
 *       input          [3, S, S]        a deterministic input image tensor
 *       hidden_states  [depth, n, D]    residual stream after each block
 *       attention      [depth, H, n, n] attention probabilities of each block
 *       logits         [numClasses]
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { writeSafetensors } from '../src/model/safetensors-file.js';
import { ViTRunner } from '../src/model/vit.js';
import { DEIT_PREPROCESSOR, timmConfig, timmTensors, tinyModel, transformersConfig, transformersTensors, writeFolder } from '../test/model-writers.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

/** A smooth deterministic image tensor in roughly the range of normalised pixels. */
function fixtureInput(channels: number, size: number): Float32Array {
  return Float32Array.from({ length: channels * size * size }, (_, i) => Math.sin(i * 0.37) + 0.5 * Math.cos(i * 0.011));
}

function main(): void {
  const model = tinyModel(false, 42);
  const { config: cfg } = model;
  for (const name of ['tiny-timm', 'tiny-transformers']) {
    rmSync(path.join(FIXTURES, name), { recursive: true, force: true });
    mkdirSync(path.join(FIXTURES, name), { recursive: true });
  }
  writeFolder(path.join(FIXTURES, 'tiny-timm'), timmConfig(model), timmTensors(model));
  writeFolder(
    path.join(FIXTURES, 'tiny-transformers'),
    transformersConfig(model, 'ViTForImageClassification'),
    transformersTensors(model, 'ViTForImageClassification'),
    DEIT_PREPROCESSOR,
  );

  const input = fixtureInput(cfg.inChannels, cfg.imageSize);
  const runner = new ViTRunner(model, createReferenceKernels());
  const hidden: Float32Array[] = [];
  const attention: Float32Array[] = [];
  const { logits } = runner.forward(input, {
    afterBlock: (s) => {
      hidden.push(s.x.slice());
      attention.push(s.probs.slice());
    },
  });
  const n = runner.maxTokens;
  const concat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
    return out;
  };
  writeSafetensors(
    path.join(FIXTURES, 'tiny-golden.safetensors'),
    {
      input: { shape: [cfg.inChannels, cfg.imageSize, cfg.imageSize], data: input },
      hidden_states: { shape: [cfg.depth, n, cfg.dim], data: concat(hidden) },
      attention: { shape: [cfg.depth, cfg.heads, n, n], data: concat(attention) },
      logits: { shape: [cfg.numClasses], data: logits },
    },
    { generator: 'scripts/make-fixtures.ts (reference path)' },
  );
  process.stdout.write(`wrote fixtures to ${FIXTURES}\n`);
}

main();

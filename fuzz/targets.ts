/**
 * Fuzz targets: for each parser or loader, its seed files (the project's fixtures and inputs
 * generated in memory; never ../shared), the mutations that suit its format, and how an input
 * is fed to it. `run` throws whatever the code under test throws.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VitpruneError } from '../src/errors.js';
import { decodeImage } from '../src/image/decode.js';
import { preprocess } from '../src/image/preprocess.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { parseSafetensors, serializeSafetensors } from '../src/model/safetensors.js';
import { ViTRunner } from '../src/model/vit.js';
import { keepRatioSchedule, parseSchedule, scheduleGmacs, scheduleToJson, validateSchedule } from '../src/prune/schedule.js';
import { zeroTPruneHooks } from '../src/prune/zero-tprune.js';
import { syntheticJpegs, testPattern } from '../test/image-writers.js';
import { pngCases } from '../test/png-cases.js';
import { GENERIC_MUTATORS, jpegHeaderEdit, jsonEdit, pngHeaderEdit, safetensorsHeaderEdit, type Mutator } from './mutate.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

export interface FuzzTarget {
  name: string;
  seeds: Uint8Array[];
  mutators: Mutator[];
  run(input: Uint8Array): void;
  /** Removes what the target created (temporary folders). */
  close(): void;
}

export const TARGET_NAMES = ['jpeg', 'png', 'safetensors', 'config', 'schedule'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

const fixtureImages = (extension: string) =>
  readdirSync(path.join(FIXTURES, 'images'))
    .filter((name) => name.endsWith(extension))
    .map((name) => new Uint8Array(readFileSync(path.join(FIXTURES, 'images', name))));

/** A small photo-like image, for preprocessing with a loaded config. */
const SAMPLE_IMAGE = { width: 23, height: 17, data: testPattern(23, 17) };

/** Image files of one format, decoded by decodeImage. */
function imageTarget(name: 'jpeg' | 'png', seeds: Uint8Array[], headerEdit: Mutator): FuzzTarget {
  return {
    name,
    seeds,
    mutators: [...GENERIC_MUTATORS, headerEdit, headerEdit],
    run: (input) => void decodeImage(input, `fuzz.${name}`),
    close() {},
  };
}

/** F16 / BF16 variants of a small F32 file: same shapes, half the bytes per value. */
function halfPrecisionSafetensors(dtype: 'F16' | 'BF16'): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ __metadata__: { format: 'pt' }, a: { dtype, shape: [2, 3], data_offsets: [0, 12] }, b: { dtype, shape: [1], data_offsets: [12, 14] } }),
  );
  const bytes = new Uint8Array(8 + header.length + 14);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  for (let i = 0; i < 14; i++) bytes[8 + header.length + i] = (i * 37) & 0x7f;
  return bytes;
}

function safetensorsTarget(): FuzzTarget {
  const generated = serializeSafetensors({ w: { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) }, s: { shape: [], data: Float32Array.of(2) } }, { note: 'x' });
  return {
    name: 'safetensors',
    seeds: [
      new Uint8Array(readFileSync(path.join(FIXTURES, 'tiny-golden.safetensors'))),
      new Uint8Array(readFileSync(path.join(FIXTURES, 'tiny-timm/model.safetensors'))),
      new Uint8Array(readFileSync(path.join(FIXTURES, 'tiny-transformers/model.safetensors'))),
      generated,
      halfPrecisionSafetensors('F16'),
      halfPrecisionSafetensors('BF16'),
    ],
    mutators: [...GENERIC_MUTATORS, safetensorsHeaderEdit, safetensorsHeaderEdit, safetensorsHeaderEdit],
    run: (input) => void parseSafetensors(input, 'fuzz.safetensors'),
    close() {},
  };
}

/**
 * config.json (timm or transformers) and preprocessor_config.json: each input is written as
 * the timm folder's config.json, the transformers folder's config.json and its
 * preprocessor_config.json (three model folders beside the fixture weights) and each folder
 * loaded; a folder that loads must then preprocess an image and run the model.
 */
function configTarget(): FuzzTarget {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vitprune-fuzz-config-'));
  const folder = (name: string, from: string, files: string[]) => {
    const dir = path.join(root, name);
    mkdirSync(dir);
    for (const file of files) copyFileSync(path.join(FIXTURES, from, file), path.join(dir, file));
    return dir;
  };
  const timm = folder('timm', 'tiny-timm', ['config.json', 'model.safetensors']);
  const transformers = folder('transformers', 'tiny-transformers', ['config.json', 'model.safetensors', 'preprocessor_config.json']);
  const preprocessor = folder('preprocessor', 'tiny-transformers', ['config.json', 'model.safetensors', 'preprocessor_config.json']);
  const kernels = createReferenceKernels();
  const read = (dir: string, file: string) => new Uint8Array(readFileSync(path.join(dir, file)));
  const seeds = [read(timm, 'config.json'), read(transformers, 'config.json'), read(transformers, 'preprocessor_config.json')];
  const loadAndRun = (dir: string) => {
    const model = loadModelFolder(dir);
    new ViTRunner(model, kernels).forward(preprocess(SAMPLE_IMAGE, model.config.preprocess));
  };
  return {
    name: 'config',
    seeds,
    mutators: [...GENERIC_MUTATORS, jsonEdit, jsonEdit, jsonEdit, jsonEdit],
    run(input) {
      writeFileSync(path.join(timm, 'config.json'), input);
      writeFileSync(path.join(transformers, 'config.json'), input);
      writeFileSync(path.join(preprocessor, 'preprocessor_config.json'), input);
      // Every folder is tried; the first failure is rethrown (an internal one first).
      const failures: unknown[] = [];
      for (const dir of [timm, transformers, preprocessor]) {
        try {
          loadAndRun(dir);
        } catch (error) {
          failures.push(error);
        }
      }
      if (failures.length === 3 || failures.some((e) => !isOurs(e))) throw failures.find((e) => !isOurs(e)) ?? failures[0];
    },
    close: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * Schedule files (`--schedule`): parsed, checked against DeiT-Tiny's dimensions (GMACs computed
 * when valid) and against a small random model, which runs Zero-TPrune with it when valid.
 */
function scheduleTarget(): FuzzTarget {
  const deitTiny = configFromDims({ dim: 192, depth: 12, heads: 3 });
  const small = randomModel(configFromDims({ dim: 16, depth: 6, heads: 2, imageSize: 32, patchSize: 8, numClasses: 5 }), 3);
  const runner = new ViTRunner(small, createReferenceKernels());
  const input = preprocess(SAMPLE_IMAGE, { inputSize: 32, interpolation: 'bicubic', cropPct: 0.875, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  const text = (s: ReturnType<typeof keepRatioSchedule>) => new TextEncoder().encode(scheduleToJson(s));
  const seeds = [
    ...[0.5, 0.735, 0.9].map((rho) => text(keepRatioSchedule(deitTiny, rho))),
    ...[0.4, 0.8].map((rho) => text(keepRatioSchedule(small.config, rho, { after: [1, 3, 5] }))),
    new TextEncoder().encode('{"steps":[]}'),
  ];
  return {
    name: 'schedule',
    seeds,
    mutators: [...GENERIC_MUTATORS, jsonEdit, jsonEdit, jsonEdit, jsonEdit],
    run(bytes) {
      const schedule = parseSchedule(new TextDecoder().decode(bytes), 'fuzz.json');
      const failures: unknown[] = [];
      try {
        validateSchedule(deitTiny, schedule);
        scheduleGmacs(deitTiny, schedule);
      } catch (error) {
        failures.push(error);
      }
      try {
        validateSchedule(small.config, schedule);
        runner.forward(input, zeroTPruneHooks(schedule));
      } catch (error) {
        failures.push(error);
      }
      if (failures.length === 2 || failures.some((e) => !isOurs(e))) throw failures.find((e) => !isOurs(e)) ?? failures[0];
    },
    close() {},
  };
}

/** Our error classes (src/errors.ts and their subclasses). */
export function isOurs(error: unknown): boolean {
  return error instanceof VitpruneError;
}

export function createTarget(name: TargetName): FuzzTarget {
  switch (name) {
    case 'jpeg':
      return imageTarget('jpeg', [...fixtureImages('.jpg'), ...syntheticJpegs().map((j) => j.bytes)], jpegHeaderEdit);
    case 'png':
      return imageTarget('png', [...fixtureImages('.png'), ...pngCases().map((c) => c.bytes)], pngHeaderEdit);
    case 'safetensors':
      return safetensorsTarget();
    case 'config':
      return configTarget();
    case 'schedule':
      return scheduleTarget();
  }
}

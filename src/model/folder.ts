import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';
import { writeFileDurable } from '../util/atomic-file.js';
import { declareModel, type ConfigDocument, type DeclaredModel } from './config.js';
import { assembleModel, modelFolderFiles } from './load.js';
import { readSafetensors } from './safetensors-file.js';
import type { ViTModel } from './types.js';

/** Model folders on disk (Node only): what load.ts and config.ts make of their files, read and written. */

/** A JSON file of a model folder, read when needed; `missing` says what was expected when it is absent. */
function configFile(file: string, missing: string): ConfigDocument {
  return {
    where: file,
    text: () => {
      if (!existsSync(file)) throw new ModelFormatError(`${missing}, not found`);
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        throw new ModelFormatError(`${file}: expected JSON, ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

/** What `dir/config.json` (and `dir/preprocessor_config.json` for transformers) declare. */
export function readModelConfig(dir: string): DeclaredModel {
  return declareModel(
    configFile(path.join(dir, 'config.json'), `model folder ${dir}: expected config.json (timm or transformers format)`),
    configFile(path.join(dir, 'preprocessor_config.json'), `model folder ${dir}: expected preprocessor_config.json next to a transformers config.json`),
  );
}

/** Load a model folder: `config.json` + `model.safetensors` in timm or transformers layout (load.ts). */
export function loadModelFolder(dir: string): ViTModel {
  if (!existsSync(dir)) throw new ModelFormatError(`model folder ${dir} not found`);
  const declared = readModelConfig(dir);
  const weightsFile = path.join(dir, 'model.safetensors');
  if (!existsSync(weightsFile)) throw new ModelFormatError(`model folder ${dir}: expected model.safetensors, not found`);
  return assembleModel(declared, readSafetensors(weightsFile), dir);
}

/**
 * Write a model folder in timm layout (modelFolderFiles); loadModelFolder gives back the same
 * config and bit-identical weights.
 *
 * Atomic: both files are written into `<dir>.tmp-<pid>-<random>` beside the target, which is
 * then renamed to `dir`. When `dir` already exists (it may hold other files) the two files
 * are moved into it one by one instead; each replacement is atomic, the pair is not.
 */
export function saveModelFolder(dir: string, model: ViTModel): void {
  const files = modelFolderFiles(model);
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

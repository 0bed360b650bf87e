import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';
import { writeFolderAtomic } from '../util/atomic-file.js';
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
 * config and bit-identical weights. Atomic as writeFolderAtomic: both files are written beside
 * the target and renamed into place.
 */
export function saveModelFolder(dir: string, model: ViTModel): void {
  writeFolderAtomic(dir, modelFolderFiles(model));
}

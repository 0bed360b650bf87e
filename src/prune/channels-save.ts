import { readFileSync } from 'node:fs';
import path from 'node:path';
import { saveModelFolder } from '../model/folder.js';
import type { ViTModel } from '../model/types.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/** Writing channel-pruned models (Node only). */

/**
 * Save a pruned model like any model (saveModelFolder: timm layout, config.json recording the
 * widths), then add the `pruned` description to its config.json (replaced atomically): the
 * calibration-only PrunedDescription (channels.ts) or the learned one (cli/prune-channels-learn.ts).
 */
export function savePrunedModel(dir: string, model: ViTModel, description: { method: string; [extra: string]: unknown }): void {
  saveModelFolder(dir, model);
  const configFile = path.join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  config.pruned = description;
  writeFileAtomic(configFile, new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'));
}

import { loadImageTensor } from '../image/file.js';
import type { PreprocessConfig } from '../model/types.js';
import { createProgress } from '../util/progress.js';

/** Decodes and preprocesses calibration images once, with a progress bar on stderr (unless `quiet`). */
export function loadCalibrationImages(files: readonly string[], preprocess: PreprocessConfig, quiet: boolean): Float32Array[] {
  const loading = createProgress({ label: 'calibration images', total: files.length, unit: 'items', enabled: !quiet });
  const inputs = files.map((file) => {
    const input = loadImageTensor(file, preprocess);
    loading.tick();
    return input;
  });
  loading.done();
  return inputs;
}

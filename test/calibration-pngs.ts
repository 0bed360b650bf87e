import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePng } from './image-writers.js';

/**
 * Writes `count` small RGB PNGs img0.png, img1.png, … (40×36, a different ramp each) into a new
 * folder `dir`: unlabelled calibration images for the CLI tests of prune-channels.
 */
export function writeCalibrationPngs(dir: string, count: number): void {
  mkdirSync(dir);
  for (let i = 0; i < count; i++) {
    const samples = Uint8Array.from({ length: 40 * 36 * 3 }, (_, j) => (j * (7 + i) + i * 31) % 256);
    writeFileSync(path.join(dir, `img${i}.png`), encodePng({ width: 40, height: 36, colorType: 2, bitDepth: 8, samples }));
  }
}

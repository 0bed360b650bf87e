/**
 * Preprocessing cost against the shape of the image: decode (PNG) + resize of the shorter side +
 * centre crop (DeiT's transform: 256 → 224, bicubic) for a 500×375 photo-sized image and for
 * images of other aspects, thin ones included. Time: median of interleaved runs (every round
 * runs every case once). Memory: peak RSS growth of one decode + crop, each case in a fresh
 * process.
 *   npx tsx bench/preprocess-aspect.ts [--runs 15]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeImage } from '../src/image/decode.js';
import { modelCrop } from '../src/image/preprocess.js';
import { median } from '../src/eval/metrics.js';
import type { PreprocessConfig } from '../src/model/types.js';
import { encodeRgbPng } from '../src/image/png-encode.js';

const DEIT: PreprocessConfig = { inputSize: 224, interpolation: 'bicubic', cropPct: 0.875, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const CASES: [number, number][] = [
  [500, 375],
  [375, 500],
  [2000, 94],
  [94, 2000],
  [187500, 1],
  [1, 187500],
  [2000, 1],
  [1, 4000],
  [65535, 1],
];

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, 'memory-of': { type: 'string' } } });

/** A noisy image as PNG bytes (noise: every filter tap matters, and deflate cannot shrink it to nothing). */
function noisePng(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return encodeRgbPng({ width, height, data });
}

const decodeAndCrop = (png: Uint8Array) => modelCrop(decodeImage(png, 'bench.png'), DEIT);

if (values['memory-of']) {
  // Child: one case, peak RSS growth in MB on stdout.
  const [width, height] = values['memory-of'].split('x').map(Number);
  const png = noisePng(width, height);
  const before = process.memoryUsage().rss;
  decodeAndCrop(png);
  process.stdout.write(String((process.resourceUsage().maxRSS * 1024 - before) / 2 ** 20));
} else {
  const runs = Number(values.runs);
  const pngs = CASES.map(([w, h]) => noisePng(w, h));
  const decoded = pngs.map((png) => decodeImage(png, 'bench.png'));
  const times = CASES.map(() => [] as number[]);
  const cropTimes = CASES.map(() => [] as number[]);
  for (let round = 0; round < runs + 2; round++) {
    pngs.forEach((png, i) => {
      const start = performance.now();
      decodeAndCrop(png);
      const middle = performance.now();
      modelCrop(decoded[i], DEIT);
      if (round < 2) return; // warm-up
      times[i].push(middle - start);
      cropTimes[i].push(performance.now() - middle);
    });
  }
  const script = fileURLToPath(import.meta.url);
  const memory = CASES.map(([w, h]) => {
    const child = spawnSync(process.execPath, [...process.execArgv, script, '--memory-of', `${w}x${h}`], { encoding: 'utf8' });
    return Number(child.stdout);
  });
  const base = median(times[0]);
  console.log(`decode + resize + crop to 224×224 (DeiT), median of ${runs} interleaved runs; peak RSS growth of one run in a fresh process`);
  const cropBase = median(cropTimes[0]);
  console.log('| image | PNG bytes | decode + crop ms | × 500×375 | resize + crop alone ms | × 500×375 | peak RSS growth (MB) | × 500×375 |');
  console.log('|---|---|---|---|---|---|---|---|');
  CASES.forEach(([w, h], i) => {
    const ms = median(times[i]);
    const cropMs = median(cropTimes[i]);
    console.log(
      `| ${w}×${h} | ${pngs[i].length} | ${ms.toFixed(2)} | ${(ms / base).toFixed(2)} | ${cropMs.toFixed(2)} | ${(cropMs / cropBase).toFixed(2)} | ${memory[i].toFixed(1)} | ${(memory[i] / memory[0]).toFixed(2)} |`,
    );
  });
}

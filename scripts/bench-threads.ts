/**
 * The worker-thread targets of issue 12, measured in one command (each comparison interleaved
 * inside one run; medians):
 *
 *   1. dense DeiT-S (random weights): `vitprune bench --threads 1,T`
 *   2. dense DeiT-Tiny and Zero-TPrune at 0.65× GMACs: `vitprune bench --threads 1,T --method zero-tprune --budget 0.65`
 *   3. eval of the dev images on DeiT-Tiny, images/s (decoding included) at 1 and T threads,
 *      the two alternated `--eval-rounds` times (separate processes: a pool cannot be switched off)
 *   4. onnxruntime-node's own 1-vs-T speed-up and vitprune's ratios to it (bench/peers, when installed:
 *      `npm run bench:peers` once installs it)
 *
 *   npm run bench:threads -- [--data ../shared/data] [--threads 2] [--runs 30] [--images 500] [--eval-rounds 2] [--json]
 *
 * The machine may be shared: the speed-up of onnxruntime-node beside vitprune's says whether
 * the cores scaled at all during the run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    data: { type: 'string', default: path.resolve(ROOT, '../shared/data') },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '30' },
    images: { type: 'string', default: '500' },
    'eval-rounds': { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const data = path.resolve(values.data!);
const log = (line: string): void => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

interface Timing {
  median: number;
}

interface BenchReport {
  msPerImage: Timing;
  dense?: { msPerImage: Timing };
  compare: { threads: number; msPerImage: Timing; pruned?: { msPerImage: Timing } }[];
}

/** Runs the CLI from the sources; returns its parsed --json output. */
function vitprune(args: string[]): unknown {
  log(`$ vitprune ${args.join(' ')}`);
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args, '--json', '--quiet'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out);
}

/** Speed-up of T threads over 1: time on 1 / time on T. */
const speedup = (one: Timing, many: Timing): number => one.median / many.median;

const results: Record<string, unknown> = { threads };

// 1. dense DeiT-S
const deitS = vitprune(['bench', '--model', 'random:deit_small_patch16_224', '--threads', `1,${threads}`, '--runs', values.runs!]) as BenchReport;
results.deitSmallDense = {
  msPerImage: { 1: deitS.msPerImage.median, [threads]: deitS.compare[0].msPerImage.median },
  speedup: speedup(deitS.msPerImage, deitS.compare[0].msPerImage),
};

// 2. DeiT-Tiny dense and Zero-TPrune at 0.65
const deitTiny = path.join(data, 'deit-tiny');
if (existsSync(deitTiny)) {
  const r = vitprune([
    'bench',
    '--model',
    deitTiny,
    '--threads',
    `1,${threads}`,
    '--runs',
    values.runs!,
    '--method',
    'zero-tprune',
    '--budget',
    '0.65',
  ]) as BenchReport;
  const other = r.compare[0];
  results.deitTinyDense = {
    msPerImage: { 1: r.dense!.msPerImage.median, [threads]: other.msPerImage.median },
    speedup: speedup(r.dense!.msPerImage, other.msPerImage),
  };
  results.deitTinyZeroTPrune065 = {
    msPerImage: { 1: r.msPerImage.median, [threads]: other.pruned!.msPerImage.median },
    speedup: speedup(r.msPerImage, other.pruned!.msPerImage),
  };

  // 3. eval throughput, alternating 1 and T threads
  const images = path.join(data, 'imagenet-sample/images');
  const labels = path.join(data, 'imagenet-sample/labels.csv');
  const rates: Record<number, number[]> = { 1: [], [threads]: [] };
  for (let round = 0; round < Number(values['eval-rounds']); round++) {
    for (const t of [1, threads]) {
      const e = vitprune(['eval', '--model', deitTiny, '--images', images, '--labels', labels, '--limit', values.images!, '--threads', String(t)]) as {
        imagesPerSecond: number;
      };
      rates[t].push(e.imagesPerSecond);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  results.evalDeitTiny = {
    imagesPerSecond: { 1: median(rates[1]), [threads]: median(rates[threads]) },
    speedup: median(rates[threads]) / median(rates[1]),
  };
} else {
  log(`${deitTiny} not found: DeiT-Tiny and eval skipped`);
}

// 4. onnxruntime-node's scaling beside vitprune's
if (existsSync(path.join(ROOT, 'bench/peers/node_modules'))) {
  log(`$ bench/peers/peers.ts --model random:deit_small_patch16_224 --threads 1,${threads}`);
  const out = execFileSync(
    path.join(ROOT, 'bench/peers/node_modules/.bin/tsx'),
    ['peers.ts', '--model', 'random:deit_small_patch16_224', '--threads', `1,${threads}`, '--runs', values.runs!, '--json'],
    {
      cwd: path.join(ROOT, 'bench/peers'),
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    },
  );
  const peers = JSON.parse(out) as { ratios: unknown; scaling: Record<number, { vitprune: number; onnxruntimeNode: number }>; msPerImage: unknown };
  results.peersDeitSmall = { msPerImage: peers.msPerImage, ratios: peers.ratios, speedup: peers.scaling[threads] };
} else {
  log('bench/peers is not installed (run `npm run bench:peers` once): onnxruntime comparison skipped');
}

if (values.json) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const row = (name: string, r: unknown): void => {
    const { speedup: s } = r as { speedup: number | { vitprune: number; onnxruntimeNode: number } };
    const text = typeof s === 'number' ? `${s.toFixed(2)}×` : `vitprune ${s.vitprune.toFixed(2)}×, onnxruntime-node ${s.onnxruntimeNode.toFixed(2)}×`;
    process.stdout.write(`${name.padEnd(32)} ${threads} threads vs 1: ${text}\n`);
  };
  for (const [name, r] of Object.entries(results)) if (name !== 'threads') row(name, r);
}

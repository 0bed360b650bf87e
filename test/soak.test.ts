import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { TOKEN_METHODS } from '../src/prune/registry.js';
import { soakVerdict, type MemorySample } from '../scripts/soak.js';

/** scripts/soak.ts (`npm run soak`): its verdict, and a short run of the script itself. */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MB = 2 ** 20;
const sample = (run: number, rssMb: number, wasmMb: number): MemorySample => ({ run, rss: rssMb * MB, heapUsed: 0, wasmMemory: wasmMb * MB, wasmAllocated: 0 });

it('the verdict measures growth from the first report (the warm-up mark) to the last', () => {
  const steady = [sample(1000, 200, 24), sample(2000, 230, 24), sample(3000, 204, 24)]; // a bump between reports does not count
  expect(soakVerdict(steady, 5 * MB)).toMatchObject({ rssGrowth: 4 * MB, wasmGrowth: 0, passed: true });
  expect(soakVerdict([sample(1000, 200, 24), sample(2000, 206, 24)], 5 * MB).passed).toBe(false);
  expect(soakVerdict([sample(1000, 200, 24), sample(2000, 200, 30)], 5 * MB)).toMatchObject({ wasmGrowth: 6 * MB, passed: false });
  expect(() => soakVerdict([sample(1000, 200, 24)], 5 * MB)).toThrow(/two reports or more/);
});

it('npm run soak: every method on the sample photos, runners recreated, wasm memory unchanged between reports', async () => {
  // One report per full cycle (4 photos × dense and 6 methods = 28 runs), so that every path has run before the first mark.
  const args = [
    '--model',
    'random:vit_tiny_patch16_128',
    '--runs',
    '56',
    '--every',
    '28',
    '--recreate-every',
    '5',
    '--threads',
    '2',
    '--limit-mb',
    '1000',
    '--json',
  ];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/soak.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout);
  expect(report.methods).toEqual(['dense', ...TOKEN_METHODS.map((m) => m.name)]);
  expect(report.samples.map((s: MemorySample) => s.run)).toEqual([28, 56]);
  const [first, last] = report.samples as MemorySample[];
  expect(first.wasmMemory).toBeGreaterThan(0);
  expect(last.wasmMemory).toBe(first.wasmMemory);
  expect(last.wasmAllocated).toBe(first.wasmAllocated); // 11 runners made and disposed in between
  expect(report).toMatchObject({ passed: true, wasmGrowth: 0, threads: 2 });
}, 180_000);

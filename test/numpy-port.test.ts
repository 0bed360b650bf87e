import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/oracle/bundle.js';
import { checkBundles, type CheckReport } from '../src/oracle/check.js';
import { readSuite } from '../src/oracle/suite.js';
import { runCli } from './run-cli.js';

// The proof that a port in another language can use the oracle: examples/numpy-port, written
// from docs/trace-format.md, passes the conformance suite's dense and top-k cases in float64 and
// float32; two deliberately broken variants are caught, and the checker names where.

const ROOT = path.resolve(import.meta.dirname, '..');
const SUITE = path.join(ROOT, 'fixtures/conformance');
const PORT = path.join(ROOT, 'examples/numpy-port/port.py');
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
if (!hasNumpy) process.stderr.write('skipping the numpy port tests: python3 with numpy not found (Debian: apt-get install python3-numpy)\n');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-numpy-port-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Run the port on every dense and top-k case; the check report of each case, by name. */
function portReports(options: string[]): Map<string, CheckReport> {
  const cases = readSuite(SUITE).cases.filter((c) => c.method === 'dense' || c.method === 'topk');
  const out = mkdtempSync(path.join(tmp, 'run-'));
  const run = spawnSync('python3', [PORT, ...cases.map((c) => path.join(SUITE, c.dir)), '--out', out, ...options], { encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.stdout).toContain(`wrote ${cases.length} bundles`);
  return new Map(cases.map((c) => [c.name, checkBundles(readBundle(path.join(SUITE, c.dir)), readBundle(path.join(out, path.basename(c.dir))))]));
}

(hasNumpy ? describe : describe.skip)('numpy port', () => {
  for (const dtype of ['float64', 'float32']) {
    it(`in ${dtype} passes every dense and top-k case of the suite (tie cases included)`, () => {
      const reports = portReports(['--dtype', dtype]);
      expect(reports.size).toBe(5 * 2 * 3 + 1);
      for (const [name, report] of reports) {
        expect.soft(report.ok, `${name}: ${report.firstDivergence?.name}`).toBe(true);
        expect.soft(report.missing, name).toEqual([]);
      }
    });
  }

  it('passes through the command line: vitprune check exits 0', async () => {
    const out = path.join(tmp, 'cli');
    const dir = path.join(SUITE, 'cases/deit-distilled-d10-h2.noise.topk-2');
    expect(spawnSync('python3', [PORT, dir, '--out', out]).status).toBe(0);
    const check = await runCli('check', dir, path.join(out, 'deit-distilled-d10-h2.noise.topk-2'));
    expect(check.stdout).toMatch(/PASS: 32 tensors compared/);
    expect(check.code).toBe(0);
  });

  it('softmax in float16 without the max subtraction: caught at the first attention of every case', () => {
    for (const [name, report] of portReports(['--break', 'softmax-f16'])) {
      expect(report.ok, name).toBe(false);
      expect(report.firstDivergence, name).toMatchObject({ name: 'block.0.attn.probs', block: 0, kind: 'probs', status: 'differs' });
    }
  });

  it('top-k with the wrong tie-break (higher position first): only the tie case fails, at the ids its reduction keeps', () => {
    const reports = portReports(['--break', 'topk-tiebreak']);
    const failed = [...reports].filter(([, r]) => !r.ok);
    expect(failed.map(([name]) => name)).toEqual(['timm-d9-h3.twins.topk-ties']);
    const [, report] = failed[0];
    expect(report.firstDivergence).toMatchObject({ name: 'block.0.after_attention.ids', kind: 'ids', status: 'differs' });
    // the scores that decided agree: the tie itself is right, its resolution is not
    expect(report.tensors.find((t) => t.name === 'block.0.after_attention.attentiveness')!.status).toBe('ok');
  });
});

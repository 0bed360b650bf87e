import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { saveModelFolder } from '../src/model/folder.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { TOKEN_METHODS } from '../src/prune/registry.js';
import { encodePng, testPattern } from './image-writers.js';
import { runCli as run } from './run-cli.js';

// The command line reads --method and its settings through the method registry.

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-cli-pruning-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

// A 12-block model small enough to run every method: 64×64 input, patch 8 → 64 patches.
const cfg = configFromDims({ dim: 24, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 64, cropPct: 1 };
const model = path.join(tmp, 'model');
saveModelFolder(model, randomModel(cfg, 9));
const images = path.join(tmp, 'images');
mkdirSync(images);
for (let i = 0; i < 4; i++) {
  writeFileSync(
    path.join(images, `img${i}.png`),
    encodePng({ width: 64 + 8 * i, height: 64, colorType: 2, bitDepth: 8, samples: testPattern(64 + 8 * i, 64) }),
  );
}
const labels = path.join(tmp, 'labels.csv');
writeFileSync(labels, `file,class_index\n${[0, 1, 2, 3].map((i) => `img${i}.png,${i}\n`).join('')}`);
const evalArgs = ['eval', '--model', model, '--backend', 'reference', '--images', images, '--labels', labels, '--quiet', '--json'];

describe('--method through the registry', () => {
  it('eval runs a per-image method at a budget with --calib, and its reported settings run again from a file', async () => {
    const solved = await run(...evalArgs, '--method', 'ltp', '--budget', '0.8', '--calib', images);
    expect(solved.code, solved.stderr).toBe(0);
    const report = JSON.parse(solved.stdout);
    expect(report.method).toBe('ltp');
    expect(report.schedule).toMatchObject({ c: expect.any(Number), unit: 'mean' });
    const file = path.join(tmp, 'ltp.json');
    writeFileSync(file, JSON.stringify(report.schedule));
    const again = await run(...evalArgs, '--method', 'ltp', '--schedule', file);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      schedule: report.schedule,
      gmacs: report.gmacs,
      top1: report.top1,
      agreement: report.agreement,
      kl: report.kl,
    });
  });

  it("a method's own options are flags, and apply to that method only", async () => {
    const seeded = await run(...evalArgs, '--method', 'random', '--keep', '0.5', '--seed', '3');
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(JSON.parse(seeded.stdout).schedule).toMatchObject({ seed: 3 });
    const help = await run('classify', '--help');
    for (const m of TOKEN_METHODS) expect(help.stdout).toContain(m.name);
    expect(help.stdout).toMatch(/--ablation ABLATION +zero-tprune: .*wpr \| wpr\+eir/);
    expect(help.stdout).toMatch(/--seed SEED +random: /);
    expect(help.stdout).toMatch(/--no-one-step-ahead +mctf: no fuse at the start/);
    expect(help.stdout).toMatch(/--threshold THRESHOLD +ppt: .*a number \(default 0\.00007\)/);
  });

  it("switches and numbers: --no-one-step-ahead turns MCTF's on-by-default switch off, --threshold sets PPT's", async () => {
    const plain = await run(...evalArgs, '--method', 'mctf', '--budget', '0.8');
    const after = await run(...evalArgs, '--method', 'mctf', '--budget', '0.8', '--no-one-step-ahead');
    const pooled = await run(...evalArgs, '--method', 'ppt', '--budget', '0.8', '--threshold', '1e9');
    for (const r of [plain, after, pooled]) expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).schedule).toMatchObject({ 'one-step-ahead': true, bidirectional: true });
    expect(JSON.parse(after.stdout).schedule).toMatchObject({ 'one-step-ahead': false, bidirectional: true });
    expect(JSON.parse(after.stdout).schedule.r).not.toBe(JSON.parse(plain.stdout).schedule.r); // the same budget costs another r
    expect(JSON.parse(pooled.stdout).schedule).toMatchObject({ threshold: 1e9 });
    const bad = await run(...evalArgs, '--method', 'ppt', '--budget', '0.8', '--threshold', 'high');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--threshold expects a number, got 'high'/);
  });

  it('--budget alone runs auto: the method measured best at that budget, and its reported settings run again from a file', async () => {
    for (const [budget, method] of [
      ['0.9', 'ppt'],
      ['0.7', 'mctf'],
    ]) {
      const alone = await run(...evalArgs, '--budget', budget);
      expect(alone.code, alone.stderr).toBe(0);
      const report = JSON.parse(alone.stdout);
      expect(report.method).toBe('auto');
      expect(report.schedule).toMatchObject({ method });
      const file = path.join(tmp, `auto-${budget}.json`);
      writeFileSync(file, JSON.stringify(report.schedule));
      const again = await run(...evalArgs, '--method', 'auto', '--schedule', file);
      expect(JSON.parse(again.stdout)).toMatchObject({ gmacs: report.gmacs, agreement: report.agreement, kl: report.kl, schedule: report.schedule });
    }
  });

  it('wrong combinations are refused in terms of flags', async () => {
    const cases: [string[], RegExp][] = [
      [['--method', 'zero-tprune', '--keep', '0.5', '--seed', '1'], /--seed is not an option of --method zero-tprune \(it applies to random\)/],
      [['--method', 'evit', '--r', '2'], /--method evit takes --keep, --budget, --gmacs, not --r/],
      [['--method', 'tome', '--budget', '0.8', '--r', '2'], /--method tome needs exactly one of --budget, --gmacs, --schedule, --r; found --budget, --r/],
      [['--method', 'ltp', '--budget', '0.8'], /--method ltp reaches --budget\/--gmacs by calibrating on unlabelled images: give --calib DIR/],
      [
        ['--method', 'fastest', '--budget', '0.8'],
        /--method expects one of zero-tprune, tome, mctf, ppt, pitome, evit, topk, ltp, random, auto, got 'fastest'/,
      ],
      [['--keep', '0.5'], /--keep needs --method/],
    ];
    for (const [flags, message] of cases) {
      const r = await run(...evalArgs, ...flags);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('tune searches the methods whose settings are a post-block schedule', async () => {
    const r = await run('tune', '--model', model, '--method', 'tome', '--budget', '0.8', '--calib', images);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tune searches post-block schedules: --method zero-tprune, got 'tome'/);
  });
});

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildBrowser } from '../scripts/build-browser.js';
import { launchChromium } from '../scripts/chromium.js';
import { demoServerOptions, SAMPLE_PHOTOS_DIR } from '../scripts/demo.js';
import { startStaticServer, type StaticServer } from '../scripts/static-server.js';
import { loadClassifier, type Classifier } from '../src/index.js';
import { modelFolderFiles } from '../src/model/load.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { chromium, describeWithBrowser } from './with-chromium.js';

/**
 * Loading from anywhere in real Chromium (Debian's, through playwright-core; skipped with one line
 * without it), on a page's main thread with the library bundle imported directly: a model folder
 * URL, a hub id fetched from a fake hub endpoint (the test server) and kept in Cache Storage, the
 * errors of both, images given as <img>, ImageData, ImageBitmap and <canvas>, and one thread with
 * a console note on a page that is not cross-origin isolated. The model is a small random ViT
 * written to a temporary folder, so no shared data is needed; the browser's results are compared
 * with Node's on the sample photos.
 */

const TIMEOUT = 120_000;
const LOGIT_TOLERANCE = 1e-4;
const HUB_REPO = 'tiny-org/tiny-vit';

const cfg = configFromDims({ dim: 48, depth: 4, heads: 3, imageSize: 64, patchSize: 8, numClasses: 20 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 64 };
const files = modelFolderFiles(randomModel(cfg, 11));
const PHOTOS = readdirSync(SAMPLE_PHOTOS_DIR)
  .filter((f) => /\.(png|jpe?g)$/i.test(f))
  .sort();
/** PNG is lossless: drawn by the browser, a PNG keeps its pixels (chelsea.png's sRGB ICC profile too); a JPEG is the browser's own decode. */
const isPng = (photo: string): boolean => photo.endsWith('.png');

/** What the page keeps between evaluations (window.sources). */
interface SourcesWindow {
  sources: { lib: typeof import('../src/index.js'); model?: Classifier };
}

async function openPage(browser: Browser, server: StaticServer, notes: string[] = []): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (message) => notes.push(message.text()));
  await page.goto(`${server.url}/images/`); // any same-origin document will do
  // A string: vitest would rewrite an import() written in a function.
  await page.evaluate("import('/browser/vitprune.js').then((lib) => { window.sources = { lib }; })");
  return page;
}

describeWithBrowser('loading from anywhere in Chromium', () => {
  let dir: string;
  let outdir: string;
  let browser: Browser;
  let isolated: StaticServer;
  let open: StaticServer;
  let page: Page;
  let node: Classifier;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vitprune-sources-model-'));
    const modelDir = path.join(dir, 'tiny-vit');
    outdir = path.join(dir, 'build');
    mkdirSync(modelDir);
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(modelDir, name), content);
    const build = await buildBrowser({ outdir });
    const setup = {
      models: [modelDir], // /models/tiny-vit/
      libraryDir: build.libraryDir,
      demoDir: build.demoDir,
      extraMounts: [{ prefix: `/hub/${HUB_REPO}/resolve/main/`, dir: modelDir }], // a hub endpoint at /hub
    };
    isolated = await startStaticServer(demoServerOptions(setup));
    open = await startStaticServer(demoServerOptions({ ...setup, isolated: false }));
    browser = await launchChromium(chromium!);
    page = await openPage(browser, isolated);
    node = await loadClassifier({ config: files['config.json'], weights: files['model.safetensors'] }, { backend: 'wasm', threads: 1 });
  }, TIMEOUT);

  afterAll(async () => {
    await node?.dispose();
    await browser?.close();
    await isolated?.close();
    await open?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, TIMEOUT);

  it(
    "loads a model folder URL with progress, and classifies the photos' bytes as Node does",
    async () => {
      const progress = await page.evaluate(async (url) => {
        const sources = (window as unknown as SourcesWindow).sources;
        const seen: { file: string; loaded: number; total: number | undefined }[] = [];
        sources.model = await sources.lib.loadClassifier(url, { threads: 1, onProgress: ({ file, loaded, total }) => seen.push({ file, loaded, total }) });
        return seen;
      }, `${isolated.url}/models/tiny-vit`); // no trailing '/': still the folder
      const weights = progress.filter((p) => p.file === 'model.safetensors');
      expect(weights.at(-1)).toEqual({ file: 'model.safetensors', loaded: files['model.safetensors'].length, total: files['model.safetensors'].length });
      expect(progress.some((p) => p.file === 'config.json')).toBe(true);

      for (const photo of PHOTOS) {
        const bytes = readFileSync(path.join(SAMPLE_PHOTOS_DIR, photo));
        const got = await page.evaluate(async (data) => {
          const model = (window as unknown as SourcesWindow).sources.model!;
          const image = new Uint8Array(data);
          return { top5: (await model.classify(image, { topK: 5 })).map((p) => p.index), logits: Array.from((await model.trace(image)).logits) };
        }, Array.from(bytes));
        const expected = (await node.trace(new Uint8Array(bytes))).logits;
        expect(got.top5, photo).toEqual((await node.classify(new Uint8Array(bytes), { topK: 5 })).map((p) => p.index));
        expect(Math.max(...got.logits.map((v, i) => Math.abs(v - expected[i]))), photo).toBeLessThanOrEqual(LOGIT_TOLERANCE);
      }
    },
    TIMEOUT,
  );

  it(
    'loads a hub id from the endpoint given, keeps it in Cache Storage, and loads it again with the network gone',
    async () => {
      const result = await page.evaluate(
        async ([endpoint, repo]) => {
          const { lib } = (window as unknown as SourcesWindow).sources;
          await caches.delete(lib.HUB_CACHE_NAME);
          const first = await lib.loadClassifier(repo, { hubEndpoint: endpoint, threads: 1 });
          const kept = (await (await caches.open(lib.HUB_CACHE_NAME)).keys()).map((r) => r.url).sort();
          const offline = await lib.loadClassifier(repo, {
            hubEndpoint: endpoint,
            threads: 1,
            fetch: () => Promise.reject(new TypeError('no network in this test')),
          });
          const photo = new Uint8Array(await (await fetch('/images/coffee.png')).arrayBuffer());
          const logits = [Array.from((await first.trace(photo)).logits), Array.from((await offline.trace(photo)).logits)];
          await first.dispose();
          await offline.dispose();
          return { kept, logits };
        },
        [`${isolated.url}/hub`, HUB_REPO] as const,
      );
      const resolve = `${isolated.url}/hub/${HUB_REPO}/resolve/main`;
      expect(result.kept).toEqual([`${resolve}/config.json`, `${resolve}/model.safetensors`]);
      const expected = Array.from((await node.trace(new Uint8Array(readFileSync(path.join(SAMPLE_PHOTOS_DIR, 'coffee.png'))))).logits);
      for (const logits of result.logits) expect(Math.max(...logits.map((v, i) => Math.abs(v - expected[i])))).toBeLessThanOrEqual(LOGIT_TOLERANCE);
    },
    TIMEOUT,
  );

  it(
    'says which URL failed, its HTTP status and the file expected',
    async () => {
      const errors = await page.evaluate(async (endpoint) => {
        const { lib } = (window as unknown as SourcesWindow).sources;
        const failure = (p: Promise<unknown>) =>
          p.then(
            () => 'loaded',
            (e: Error) => `${e.name}: ${e.message}`,
          );
        return [
          await failure(lib.loadClassifier('/models/no-such-model/', { threads: 1 })),
          await failure(lib.loadClassifier('tiny-org/no-such-repo', { hubEndpoint: endpoint, threads: 1, browserCache: false })),
          await failure(lib.loadClassifier('no-such-model', { threads: 1 })),
        ];
      }, `${isolated.url}/hub`);
      expect(errors[0]).toBe(
        `HubError: HTTP 404 from ${isolated.url}/models/no-such-model/config.json: expected config.json of the model folder ${isolated.url}/models/no-such-model/; there is no such file there`,
      );
      expect(errors[1]).toBe(
        `HubError: HTTP 404 from ${isolated.url}/hub/tiny-org/no-such-repo/resolve/main/config.json: expected config.json of hub model tiny-org/no-such-repo@main at ${isolated.url}/hub; there is no such file there`,
      );
      expect(errors[2]).toMatch(/^UsageError: loadClassifier\('no-such-model'\): expected a model folder URL/);
    },
    TIMEOUT,
  );

  it(
    "classifies <img>, ImageData, ImageBitmap and <canvas>: as the file's bytes for PNGs, within a few levels for a JPEG",
    async () => {
      const report: string[] = [];
      for (const photo of PHOTOS) {
        const got = await page.evaluate(async (url) => {
          const model = (window as unknown as SourcesWindow).sources.model!;
          const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
          const img = new Image();
          img.src = url;
          await img.decode();
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth;
          canvas.height = img.naturalHeight;
          const context = canvas.getContext('2d')!;
          context.drawImage(img, 0, 0);
          const inputs = { img, canvas, imageData: context.getImageData(0, 0, canvas.width, canvas.height), bitmap: await createImageBitmap(img) };
          const reference = await model.trace(bytes);
          const results: Record<string, { top1: number; worstLogit: number; meanPixel: number }> = {};
          for (const [kind, input] of Object.entries(inputs)) {
            const traced = await model.trace(input);
            const pixelDifference = traced.crop.data.reduce((sum, v, i) => sum + Math.abs(v - reference.crop.data[i]), 0);
            results[kind] = {
              top1: traced.logits.indexOf(Math.max(...traced.logits)),
              worstLogit: Math.max(...Array.from(traced.logits, (v, i) => Math.abs(v - reference.logits[i]))),
              meanPixel: pixelDifference / traced.crop.data.length,
            };
          }
          return { results, top1: reference.logits.indexOf(Math.max(...reference.logits)) };
        }, `/images/${photo}`);
        for (const [kind, r] of Object.entries(got.results)) {
          const where = `${photo} as ${kind}`;
          report.push(`${where}: mean pixel difference ${r.meanPixel.toFixed(3)}, logits ${r.worstLogit.toExponential(1)}`);
          if (isPng(photo)) {
            expect(r.meanPixel, where).toBe(0);
            expect(r.worstLogit, where).toBeLessThanOrEqual(LOGIT_TOLERANCE);
          } else {
            expect(r.meanPixel, where).toBeLessThan(8); // the browser's JPEG decode, ICC profile applied (rocket.jpg: about 5 levels)
          }
        }
      }
      process.stderr.write(`browser image inputs vs bytes:\n  ${report.join('\n  ')}\n`);
    },
    TIMEOUT,
  );

  it(
    'runs on one thread with a console note when the page is not cross-origin isolated, asked for two',
    async () => {
      const notes: string[] = [];
      const plain = await openPage(browser, open, notes);
      try {
        const state = await plain.evaluate(async () => {
          const { lib } = (window as unknown as SourcesWindow).sources;
          const model = await lib.loadClassifier('/models/tiny-vit/', { threads: 2 });
          const threads = model.threads;
          await model.dispose();
          return { isolated: crossOriginIsolated, threads };
        });
        expect(state).toEqual({ isolated: false, threads: 1 });
        expect(
          notes.some((n) => /running on 1 thread instead of the 2 asked for: this page is not cross-origin isolated/.test(n)),
          notes.join('\n'),
        ).toBe(true);
      } finally {
        await plain.close();
      }
    },
    TIMEOUT,
  );
});

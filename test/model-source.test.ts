import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { currentRuntime, locateSource } from '../src/api/model-source.js';
import { HubError, ImageError, loadClassifier, UsageError } from '../src/index.js';
import { decodeImage } from '../src/image/decode.js';
import { rgbOfInput } from '../src/image/input.js';
import { threadsAllowedHere } from '../src/kernels/platform.js';
import { fetchHubModel } from '../src/model/hub-web.js';
import { modelFolderFiles } from '../src/model/load.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import { fetchModelFiles, fetchModelFolder, folderBaseUrl, type DownloadProgress, type FileStore } from '../src/model/remote.js';
import { startStaticServer, type StaticServer } from '../scripts/static-server.js';
import { encodePng, testPattern } from './image-writers.js';

/**
 * Loading from anywhere, the parts that run in Node: what a source string names, model folders
 * and hub ids over HTTP (a fake fetch, and the static server for a real one), image inputs other
 * than bytes, and the one-thread fallback of pages that are not cross-origin isolated. The same
 * in Chromium: test/browser-sources.test.ts.
 */

const cfg = configFromDims({ dim: 24, depth: 2, heads: 2, imageSize: 32, patchSize: 8, numClasses: 10 });
cfg.preprocess = { ...cfg.preprocess, inputSize: 32, cropPct: 1 };
const model = randomModel(cfg, 5);
const files = modelFolderFiles(model);
const png = encodePng({ width: 40, height: 32, colorType: 2, bitDepth: 8, samples: testPattern(40, 32) });

const BROWSER = { node: false, pageUrl: 'https://example.org/app/page.html' };
const NODE = { node: true };

describe('locateSource', () => {
  it('takes http(s) URLs everywhere, relative URLs and hub ids in browsers, anything else as a path in Node', () => {
    expect(locateSource('https://host/models/deit-tiny/', BROWSER)).toEqual({ kind: 'url', url: 'https://host/models/deit-tiny/' });
    expect(locateSource('HTTP://host/m', NODE)).toEqual({ kind: 'url', url: 'HTTP://host/m' });
    expect(locateSource(new URL('http://127.0.0.1:8080/m/'), NODE)).toEqual({ kind: 'url', url: 'http://127.0.0.1:8080/m/' });
    expect(locateSource('/models/deit-tiny/', BROWSER)).toEqual({ kind: 'url', url: 'https://example.org/models/deit-tiny/' });
    expect(locateSource('./m/', BROWSER)).toEqual({ kind: 'url', url: 'https://example.org/app/m/' });
    expect(locateSource('../m', BROWSER)).toEqual({ kind: 'url', url: 'https://example.org/m' });
    expect(locateSource('timm/deit_tiny_patch16_224.fb_in1k', BROWSER)).toEqual({ kind: 'hub', id: 'timm/deit_tiny_patch16_224.fb_in1k' });
    expect(locateSource('facebook/deit-tiny-patch16-224@main', BROWSER)).toEqual({ kind: 'hub', id: 'facebook/deit-tiny-patch16-224@main' });
    for (const spec of ['/models/deit-tiny/', 'timm/deit_tiny_patch16_224.fb_in1k', '../shared/data/deit-tiny', 'C:/models/x']) {
      expect(locateSource(spec, NODE), spec).toEqual({ kind: 'node', spec });
    }
    expect(currentRuntime().node).toBe(true);
  });

  it('refuses what names no model, saying what it expected', () => {
    expect(() => locateSource('deit-tiny', BROWSER)).toThrow(/expected a model folder URL .* a hub id owner\/name\[@revision\], or the bytes/);
    expect(() => locateSource('a/b/c', BROWSER)).toThrow(UsageError);
    expect(() => locateSource('file:///models/x/', NODE)).toThrow(
      /expected an http\(s\) URL of a model folder, found a file: URL \(in Node, give the folder path\)/,
    );
    expect(() => locateSource('ftp://host/m/', BROWSER)).toThrow(/found a ftp: URL/);
    expect(() => locateSource('/m/', { node: false })).toThrow(/a relative model URL needs a page/);
  });
});

/** A fetch that serves `served` (URL → bytes) and answers 404 for anything else, recording the URLs asked for. */
function fakeFetch(served: Map<string, Uint8Array>, asked: string[] = []): typeof fetch {
  return (async (input: string | URL) => {
    const url = String(input);
    asked.push(url);
    const body = served.get(url);
    if (!body) return new Response('not found', { status: 404 });
    return new Response(body as Uint8Array<ArrayBuffer>, { headers: { 'Content-Length': String(body.length) } });
  }) as typeof fetch;
}

const folder = (base: string) =>
  new Map<string, Uint8Array>([
    [`${base}config.json`, files['config.json']],
    [`${base}model.safetensors`, files['model.safetensors']],
  ]);

describe('model folders and hub ids over HTTP', () => {
  it('fetches config.json and model.safetensors from a folder URL, reporting progress', async () => {
    const asked: string[] = [];
    const progress: DownloadProgress[] = [];
    const bytes = await fetchModelFolder('https://host/models/tiny', {
      fetch: fakeFetch(folder('https://host/models/tiny/'), asked),
      onProgress: (p) => progress.push(p),
    });
    expect(asked).toEqual(['https://host/models/tiny/config.json', 'https://host/models/tiny/model.safetensors']);
    expect(bytes.config).toEqual(files['config.json']);
    expect(bytes.weights).toEqual(files['model.safetensors']);
    const last = progress.filter((p) => p.file === 'model.safetensors').at(-1)!;
    expect(last).toEqual({ file: 'model.safetensors', url: asked[1], loaded: files['model.safetensors'].length, total: files['model.safetensors'].length });
    expect(folderBaseUrl('http://h/a/b?x=1#y')).toBe('http://h/a/b/');
  });

  it('fetches preprocessor_config.json for a transformers config.json', async () => {
    const base = 'https://host/hf/';
    const served = folder(base);
    served.set(`${base}config.json`, new TextEncoder().encode('{"architectures": ["ViTForImageClassification"]}'));
    served.set(`${base}preprocessor_config.json`, new TextEncoder().encode('{}'));
    const asked: string[] = [];
    const bytes = await fetchModelFolder(base, { fetch: fakeFetch(served, asked) });
    expect(asked.map((u) => u.slice(base.length))).toEqual(['config.json', 'preprocessor_config.json', 'model.safetensors']);
    expect(new TextDecoder().decode(bytes.preprocessorConfig as Uint8Array)).toBe('{}');
  });

  it('says which URL failed, with its HTTP status and the file it expected', async () => {
    const served = folder('https://host/m/');
    served.delete('https://host/m/model.safetensors');
    const failure = fetchModelFolder('https://host/m/', { fetch: fakeFetch(served) });
    await expect(failure).rejects.toThrow(HubError);
    await expect(failure).rejects.toThrow(
      'HTTP 404 from https://host/m/model.safetensors: expected model.safetensors of the model folder https://host/m/; there is no such file there',
    );
    const unreachable = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    await expect(fetchModelFolder('https://host/m/', { fetch: unreachable })).rejects.toThrow(
      /cannot fetch https:\/\/host\/m\/config.json, config.json of the model folder https:\/\/host\/m\/: fetch failed/,
    );
    const short = (async () => new Response(new Uint8Array(3), { headers: { 'Content-Length': '10' } })) as typeof fetch;
    await expect(fetchModelFolder('https://host/m/', { fetch: short })).rejects.toThrow(/expected 10 bytes of config.json .*, received 3/);
  });

  it('fetches a hub id from the endpoint given, and leaves files found in a store unfetched', async () => {
    const resolve = 'https://mirror.example/hub/tiny-org/tiny/resolve/v1/';
    const asked: string[] = [];
    const bytes = await fetchHubModel('tiny-org/tiny@v1', { hubEndpoint: 'https://mirror.example/hub/', fetch: fakeFetch(folder(resolve), asked) });
    expect(asked).toEqual([`${resolve}config.json`, `${resolve}model.safetensors`]);
    expect(bytes.weights).toEqual(files['model.safetensors']);
    await expect(fetchHubModel('tiny-org/tiny', { hubEndpoint: 'https://mirror.example/hub', fetch: fakeFetch(folder(resolve)) })).rejects.toThrow(
      'HTTP 404 from https://mirror.example/hub/tiny-org/tiny/resolve/main/config.json: expected config.json of hub model tiny-org/tiny@main at https://mirror.example/hub',
    );
    await expect(fetchHubModel('tiny-org/tiny', { hubEndpoint: 'mirror.example' })).rejects.toThrow(
      /expected the hub endpoint to be an absolute http\(s\) URL/,
    );
    await expect(fetchHubModel('not a hub id')).rejects.toThrow(UsageError);

    const kept = new Map<string, Uint8Array>();
    const store: FileStore = { get: async (url) => kept.get(url), put: async (url, b) => void kept.set(url, b) };
    const once: string[] = [];
    await fetchModelFiles((f) => `${resolve}${f}`, 'test', { fetch: fakeFetch(folder(resolve), once) }, store);
    const again: string[] = [];
    const fromStore = await fetchModelFiles((f) => `${resolve}${f}`, 'test', { fetch: fakeFetch(folder(resolve), again) }, store);
    expect([once.length, again.length]).toEqual([2, 0]);
    expect(fromStore.weights).toEqual(files['model.safetensors']);
  });

  describe('loadClassifier from a folder URL in Node (a real server)', () => {
    let dir: string;
    let server: StaticServer;
    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'vitprune-model-source-'));
      for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
      server = await startStaticServer({ mounts: [{ prefix: '/models/tiny/', dir }] });
    });
    afterAll(async () => {
      await server?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('classifies as the same model given as bytes', async () => {
      const progress: DownloadProgress[] = [];
      const remote = await loadClassifier(`${server.url}/models/tiny`, { backend: 'reference', onProgress: (p) => progress.push(p) });
      const local = await loadClassifier({ config: files['config.json'], weights: files['model.safetensors'] }, { backend: 'reference' });
      expect(await remote.classify(png)).toEqual(await local.classify(png));
      expect(progress.at(-1)).toMatchObject({ file: 'model.safetensors', loaded: files['model.safetensors'].length });
      await expect(loadClassifier(`${server.url}/models/none/`, { backend: 'reference' })).rejects.toThrow(
        `HTTP 404 from ${server.url}/models/none/config.json: expected config.json of the model folder ${server.url}/models/none/`,
      );
    });
  });
});

describe('image inputs', () => {
  it('reads ImageData (RGBA) as RGB, dropping alpha, and file bytes as an ArrayBuffer too', () => {
    const decoded = decodeImage(png, 'png');
    const rgba = new Uint8ClampedArray(decoded.width * decoded.height * 4);
    for (let p = 0; p < decoded.width * decoded.height; p++) {
      rgba.set(decoded.data.subarray(3 * p, 3 * p + 3), 4 * p);
      rgba[4 * p + 3] = p % 256; // alpha: ignored
    }
    expect(rgbOfInput({ width: decoded.width, height: decoded.height, data: rgba, colorSpace: 'srgb' })).toEqual(decoded);
    expect(rgbOfInput(png.slice().buffer)).toEqual(decoded);
    expect(rgbOfInput(decoded)).toBe(decoded);
  });

  it('refuses what it cannot read, saying what it expected', () => {
    expect(() => rgbOfInput({ width: 2, height: 2, data: new Uint8ClampedArray(15) })).toThrow(
      'image: expected ImageData of 2×2 to hold 16 RGBA bytes, found 15',
    );
    expect(() => rgbOfInput({ width: 1, height: 1, data: new Uint8ClampedArray(4), colorSpace: 'display-p3' })).toThrow(
      /srgb colour space .* found display-p3/,
    );
    expect(() => rgbOfInput(42 as never)).toThrow(
      /expected a JPEG\/PNG file's bytes, an RgbImage, ImageData, ImageBitmap, <img>, <canvas> or OffscreenCanvas, found number/,
    );
    expect(() => rgbOfInput({ width: 4, height: 4 })).toThrow(ImageError);
    expect(() => rgbOfInput({ width: 4, height: 4 })).toThrow(/needs OffscreenCanvas or a document, this runtime has neither/);
    expect(() => rgbOfInput({ width: 4, height: 4, naturalWidth: 0, naturalHeight: 0, complete: false })).toThrow(/expected a loaded <img>/);
  });
});

describe('threads on pages without cross-origin isolation', () => {
  afterEach(() => {
    delete (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
    vi.restoreAllMocks();
  });

  it('runs on one thread with a console note where crossOriginIsolated is false, as asked elsewhere', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(threadsAllowedHere(3)).toBe(3); // Node: no such flag
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated = true;
    expect(threadsAllowedHere(3)).toBe(3);
    expect(warn).not.toHaveBeenCalled();
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated = false;
    expect(threadsAllowedHere(1)).toBe(1);
    expect(warn).not.toHaveBeenCalled();
    expect(threadsAllowedHere(3)).toBe(1);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/running on 1 thread instead of the 3 asked for: this page is not cross-origin isolated/));
  });
});

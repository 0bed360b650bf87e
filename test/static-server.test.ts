import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoServerOptions } from '../scripts/demo.js';
import { ISOLATION_HEADERS, mimeType, startStaticServer, type StaticServer } from '../scripts/static-server.js';

/** A raw GET (fetch would normalise '..' in the path before sending it). */
function get(
  server: StaticServer,
  rawPath: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static server', () => {
  let root: string;
  let isolated: StaticServer;
  let open: StaticServer;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'vitprune-static-'));
    mkdirSync(path.join(root, 'site/sub'), { recursive: true });
    writeFileSync(path.join(root, 'site/index.html'), '<p>home</p>');
    writeFileSync(path.join(root, 'site/k.wasm'), new Uint8Array([0, 97, 115, 109]));
    writeFileSync(path.join(root, 'site/m.mjs'), 'export {};');
    writeFileSync(path.join(root, 'site/sub/w.safetensors'), 'bytes');
    writeFileSync(path.join(root, 'secret.txt'), 'not served');
    const options = {
      mounts: [{ prefix: '/app/', dir: path.join(root, 'site') }],
      redirects: { '/': '/app/' },
      json: { '/list/': ['a', 'b'] },
      files: { '/k.wasm': path.join(root, 'site/k.wasm') },
    };
    isolated = await startStaticServer(options);
    open = await startStaticServer({ ...options, isolated: false });
  });
  afterAll(async () => {
    await isolated.close();
    await open.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('listens on a free loopback port and serves files with their MIME type and length', async () => {
    expect(isolated.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const wasm = await get(isolated, '/app/k.wasm');
    expect([wasm.status, wasm.headers['content-type'], wasm.headers['content-length']]).toEqual([200, 'application/wasm', '4']);
    expect((await get(isolated, '/app/m.mjs')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get(isolated, '/app/sub/w.safetensors')).headers['content-type']).toBe('application/octet-stream');
    expect(mimeType('x.JS')).toBe('text/javascript; charset=utf-8');
  });

  it('serves a folder by its index.html, redirects, fixed JSON documents and single files', async () => {
    expect((await get(isolated, '/k.wasm')).headers['content-type']).toBe('application/wasm');
    expect((await get(isolated, '/app/')).body).toBe('<p>home</p>');
    const redirect = await get(isolated, '/');
    expect([redirect.status, redirect.headers.location]).toEqual([302, '/app/']);
    const list = await get(isolated, '/list/');
    expect([list.headers['content-type'], JSON.parse(list.body)]).toEqual(['application/json; charset=utf-8', ['a', 'b']]);
    const head = await get(isolated, '/app/k.wasm', 'HEAD');
    expect([head.status, head.headers['content-length'], head.body]).toEqual([200, '4', '']);
  });

  it('sends COOP/COEP/CORP when isolated, none otherwise', async () => {
    const withHeaders = await get(isolated, '/app/');
    for (const [name, value] of Object.entries(ISOLATION_HEADERS)) expect(withHeaders.headers[name.toLowerCase()]).toBe(value);
    const without = await get(open, '/app/');
    for (const name of Object.keys(ISOLATION_HEADERS)) expect(without.headers[name.toLowerCase()]).toBeUndefined();
  });

  it('refuses paths out of a mounted folder, unknown paths and other methods', async () => {
    for (const p of ['/app/../secret.txt', '/app/%2e%2e/secret.txt', '/app/..%2fsecret.txt', '/app/%00', '/app/%E0%A4%A', '/secret.txt', '/app/nope']) {
      expect((await get(isolated, p)).status, p).toBe(404);
    }
    expect((await get(isolated, '/app/', 'POST')).status).toBe(405);
  });
});

describe('demo server options', () => {
  it('mounts the page, the library, the photos and each model folder, and lists photos and models', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vitprune-model-'));
    const model = path.join(dir, 'tiny');
    mkdirSync(model);
    expect(() => demoServerOptions({ models: [model] })).toThrow(/expected a model folder holding config.json/);
    writeFileSync(path.join(model, 'config.json'), '{}');
    writeFileSync(path.join(model, 'model.safetensors'), '');
    const options = demoServerOptions({ models: [model], isolated: false });
    expect(options.isolated).toBe(false);
    expect(options.mounts.map((m) => m.prefix)).toEqual(['/web/', '/web/', '/browser/', '/images/', '/models/tiny/']);
    expect(options.json!['/models/']).toEqual([{ name: 'tiny', url: '/models/tiny/' }]);
    expect(options.json!['/images/']).toContain('/images/chelsea.png');
    rmSync(dir, { recursive: true, force: true });
  });
});

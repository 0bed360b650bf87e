import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HubError, UsageError } from '../src/errors.js';
import { isHubId, parseHubId, resolveModel } from '../src/model/hub.js';

/**
 * A fake hub on 127.0.0.1 that behaves like huggingface.co for `resolve` URLs: small files
 * answered directly with ETag + X-Repo-Commit, model.safetensors redirected (302, with
 * X-Linked-Etag = sha256) to a second server playing the CDN.
 */

const OWNER = 'tiny-org';
const NAME = 'vit-tiny-random';
const REPO = `${OWNER}/${NAME}`;
const COMMIT = 'a'.repeat(40);
const MODEL_BYTES = 10_000;

type Mode = 'ok' | 'error500' | 'interrupt' | 'stallHub' | 'stallCdn' | 'private';

interface FakeHub {
  endpoint: string;
  files: Map<string, Buffer>;
  mode: Mode;
  hubRequests: string[];
  cdnRequests: string[];
  authorizations: Array<{ server: 'hub' | 'cdn'; value: string | undefined }>;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

async function listen(handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const origin = (server: http.Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function startFakeHub(files: Map<string, Buffer>): Promise<FakeHub> {
  const hub: Partial<FakeHub> & { hubRequests: string[]; cdnRequests: string[] } = {
    files,
    mode: 'ok',
    hubRequests: [],
    cdnRequests: [],
    authorizations: [],
  };

  const cdn = await listen((req, res) => {
    hub.cdnRequests.push(req.url!);
    hub.authorizations!.push({ server: 'cdn', value: req.headers.authorization });
    const sha = req.url!.replace('/blobs/', '');
    const body = [...files.values()].find((b) => sha256(b) === sha);
    if (!body) return void res.writeHead(404).end();
    if (hub.mode === 'interrupt') {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, body.length / 2), () => res.socket?.destroy());
      return;
    }
    if (hub.mode === 'stallCdn') {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, 100)); // then nothing, connection left open
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length), etag: '"s3-etag-not-a-sha"' });
    res.end(body);
  });

  const server = await listen((req, res) => {
    hub.hubRequests.push(req.url!);
    hub.authorizations!.push({ server: 'hub', value: req.headers.authorization });
    if (hub.mode === 'stallHub') return; // never answers
    if (hub.mode === 'error500') return void res.writeHead(500).end('internal error');
    if (hub.mode === 'private' && req.headers.authorization !== 'Bearer secret-token') {
      return void res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
    }
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!);
    if (!m || `${m[1]}/${m[2]}` !== REPO) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end();
    const revision = decodeURIComponent(m[3]!);
    if (revision !== 'main' && revision !== COMMIT) {
      return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
    }
    const body = files.get(m[4]!);
    if (!body) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': COMMIT }).end();
    if (m[4] === 'model.safetensors') {
      res.writeHead(302, {
        location: `${origin(cdn)}/blobs/${sha256(body)}`,
        'x-repo-commit': COMMIT,
        'x-linked-etag': `"${sha256(body)}"`,
        'x-linked-size': String(body.length),
        etag: 'W/"redirect-etag"',
      });
      return void res.end();
    }
    res.writeHead(200, { 'content-length': String(body.length), etag: `W/"${sha1(body)}"`, 'x-repo-commit': COMMIT });
    res.end(body);
  });

  hub.endpoint = origin(server);
  hub.close = async () => {
    for (const s of [server, cdn]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  };
  return hub as FakeHub;
}

function fixtureFiles(withPreprocessor: boolean): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  files.set('config.json', Buffer.from(JSON.stringify({ architecture: 'vit_tiny_patch16_224', num_classes: 10 })));
  if (withPreprocessor) files.set('preprocessor_config.json', Buffer.from(JSON.stringify({ size: 224 })));
  files.set('model.safetensors', randomBytes(MODEL_BYTES));
  return files;
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = await listen(() => {});
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every file below `dir`, relative, sorted. */
function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => !lstatSync(path.join(dir, f)).isDirectory()).sort();
}

let home: string;
let hub: FakeHub;
let closeHub: (() => Promise<void>) | undefined;
const repoDir = () => path.join(home, 'hub', `models--${OWNER}--${NAME}`);

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'vitprune-hub-'));
  vi.stubEnv('HF_HOME', home);
  vi.stubEnv('HF_HUB_CACHE', '');
  vi.stubEnv('HF_HUB_OFFLINE', '');
  vi.stubEnv('HF_TOKEN', '');
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await closeHub?.();
  closeHub = undefined;
  await fs.rm(home, { recursive: true, force: true });
});

async function withHub(withPreprocessor = true): Promise<FakeHub> {
  hub = await startFakeHub(fixtureFiles(withPreprocessor));
  closeHub = hub.close;
  vi.stubEnv('HF_ENDPOINT', hub.endpoint);
  return hub;
}

describe('isHubId / parseHubId', () => {
  it('accepts owner/name and owner/name@revision', () => {
    expect(isHubId('facebook/deit-tiny-patch16-224')).toBe(true);
    expect(isHubId('timm/deit_tiny_patch16_224.fb_in1k')).toBe(true);
    expect(parseHubId('timm/vit_base@refs/pr/3')).toEqual({ owner: 'timm', name: 'vit_base', revision: 'refs/pr/3' });
  });

  it('rejects paths and malformed ids', () => {
    for (const s of ['deit', './a/b', '/abs/path', 'a/b/c', 'a--b/c', 'a/..', 'a/b@', 'a/b@../x', '../a']) {
      expect(isHubId(s), s).toBe(false);
    }
  });

  it('is false for an existing local path of the same shape', async () => {
    const cwd = process.cwd();
    await fs.mkdir(path.join(home, 'owner', 'name'), { recursive: true });
    process.chdir(home);
    try {
      expect(isHubId('owner/name')).toBe(false);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('resolveModel', () => {
  it('returns an existing local folder as is, without network', async () => {
    const fetchImpl = vi.fn();
    expect(await resolveModel(home, { fetchImpl: fetchImpl as unknown as typeof fetch })).toBe(home);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('refuses a spec that is neither a folder nor a hub id', async () => {
    await expect(resolveModel('no-such-folder', { progress: false })).rejects.toThrow(UsageError);
  });

  it('downloads into the hub cache layout and returns the snapshot folder', async () => {
    const { files } = await withHub();
    const snapshot = await resolveModel(REPO, { progress: false });

    expect(snapshot).toBe(path.join(repoDir(), 'snapshots', COMMIT));
    expect(readFileSync(path.join(repoDir(), 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const model = files.get('model.safetensors')!;
    const config = files.get('config.json')!;
    expect(listTree(path.join(repoDir(), 'blobs'))).toEqual([sha256(model), sha1(config), sha1(files.get('preprocessor_config.json')!)].sort());
    for (const [name, body] of files) {
      const link = path.join(snapshot, name);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(path.join('..', '..', 'blobs', name === 'model.safetensors' ? sha256(body) : sha1(body)));
      expect(readFileSync(link).equals(body)).toBe(true);
    }
    // the big file came from the CDN after the redirect, the rest straight from the hub
    expect(hub.cdnRequests).toEqual([`/blobs/${sha256(model)}`]);
    // files after the first are pinned to the commit the first one reported
    expect(hub.hubRequests).toEqual([
      `/${REPO}/resolve/main/config.json`,
      `/${REPO}/resolve/${COMMIT}/preprocessor_config.json`,
      `/${REPO}/resolve/${COMMIT}/model.safetensors`,
    ]);
  });

  it('uses the cache on the second call without any request', async () => {
    await withHub();
    const first = await resolveModel(REPO, { progress: false });
    const before = hub.hubRequests.length + hub.cdnRequests.length;
    expect(await resolveModel(REPO, { progress: false })).toBe(first);
    expect(hub.hubRequests.length + hub.cdnRequests.length).toBe(before);
  });

  it('accepts a commit as the revision', async () => {
    await withHub();
    const snapshot = await resolveModel(`${REPO}@${COMMIT}`, { progress: false });
    expect(snapshot).toBe(path.join(repoDir(), 'snapshots', COMMIT));
    expect(existsSync(path.join(repoDir(), 'refs'))).toBe(false);
  });

  it('HF_HUB_OFFLINE: serves from the cache, refuses to download otherwise', async () => {
    await withHub();
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    await expect(resolveModel(REPO, { progress: false })).rejects.toThrow(HubError);
    await expect(resolveModel(REPO, { progress: false })).rejects.toThrow(/not in the cache.*HF_HUB_OFFLINE/);
    expect(hub.hubRequests).toEqual([]);

    vi.stubEnv('HF_HUB_OFFLINE', '');
    const snapshot = await resolveModel(REPO, { progress: false });
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    const requests = hub.hubRequests.length;
    expect(await resolveModel(REPO, { progress: false })).toBe(snapshot);
    expect(hub.hubRequests.length).toBe(requests);
  });

  it('is fine without the optional preprocessor_config.json', async () => {
    await withHub(false);
    const snapshot = await resolveModel(REPO, { progress: false });
    expect(readdirSync(snapshot).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(existsSync(path.join(repoDir(), '.no_exist', COMMIT, 'preprocessor_config.json'))).toBe(true);
  });

  it('404 for the repository → HubError naming the URL', async () => {
    await withHub();
    const err = await resolveModel('tiny-org/no-such-model', { progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toBe(
      `HTTP 404 from ${hub.endpoint}/tiny-org/no-such-model/resolve/main/config.json: repository tiny-org/no-such-model not found`,
    );
  });

  it('404 for the revision → HubError', async () => {
    await withHub();
    await expect(resolveModel(`${REPO}@v9`, { progress: false })).rejects.toThrow(/HTTP 404 .*revision not found/);
  });

  it('500 → HubError', async () => {
    (await withHub()).mode = 'error500';
    const err = await resolveModel(REPO, { progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(/^HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/.*config\.json: server error/);
    expect(listTree(path.join(repoDir(), 'snapshots'))).toEqual([]);
  });

  it('401 for a private repo → HubError suggesting HF_TOKEN; the token is sent to the hub only', async () => {
    (await withHub()).mode = 'private';
    await expect(resolveModel(REPO, { progress: false })).rejects.toThrow(/HTTP 401 .*set HF_TOKEN/);

    vi.stubEnv('HF_TOKEN', 'wrong');
    await expect(resolveModel(REPO, { progress: false })).rejects.toThrow(/does not grant access/);

    vi.stubEnv('HF_TOKEN', 'secret-token');
    hub.authorizations.length = 0;
    await resolveModel(REPO, { progress: false });
    expect(hub.authorizations.filter((a) => a.server === 'hub').every((a) => a.value === 'Bearer secret-token')).toBe(true);
    expect(hub.authorizations.filter((a) => a.server === 'cdn')).toEqual([{ server: 'cdn', value: undefined }]);
  });

  it('unreachable endpoint → HubError telling how to fix it', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const err = await resolveModel(REPO, { progress: false, endpoint }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^cannot reach the model hub at ${endpoint} \\(ECONNREFUSED\\) while fetching ${endpoint}/.*config\\.json; .* is not in the hub cache at .*; ` +
          'without network, pass a model folder \\(config.json \\+ model.safetensors\\) instead: --model DIR; or set HF_ENDPOINT to a hub you can reach$',
      ),
    );
  });

  it('interrupted download → HubError, nothing partial left, and a retry succeeds', async () => {
    const { files } = await withHub();
    hub.mode = 'interrupt';
    const err = await resolveModel(REPO, { progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toMatch(
      new RegExp(`^download of ${hub.endpoint}/${REPO}/resolve/${COMMIT}/model\\.safetensors interrupted after \\d+ of ${MODEL_BYTES} bytes$`),
    );
    // no snapshot, no ref, no partial blob: only the complete small files remain as blobs
    expect(listTree(path.join(repoDir(), 'snapshots'))).toEqual([]);
    expect(existsSync(path.join(repoDir(), 'refs'))).toBe(false);
    const blobs = listTree(path.join(repoDir(), 'blobs'));
    expect(blobs.some((b) => b.includes('incomplete') || b === sha256(files.get('model.safetensors')!))).toBe(false);
    for (const b of blobs) expect([...files.values()].some((body) => sha1(body) === b)).toBe(true);

    hub.mode = 'ok';
    const snapshot = await resolveModel(REPO, { progress: false });
    expect(readFileSync(path.join(snapshot, 'model.safetensors')).equals(files.get('model.safetensors')!)).toBe(true);
  });

  it('a leftover .incomplete file is never used', async () => {
    const { files } = await withHub();
    const blobs = path.join(repoDir(), 'blobs');
    await fs.mkdir(blobs, { recursive: true });
    const model = files.get('model.safetensors')!;
    await fs.writeFile(path.join(blobs, `${sha256(model)}.incomplete-deadbeef`), model.subarray(0, 10));
    const snapshot = await resolveModel(REPO, { progress: false });
    expect(readFileSync(path.join(snapshot, 'model.safetensors')).equals(model)).toBe(true);
  });

  it('no response within timeoutMs → HubError', async () => {
    (await withHub()).mode = 'stallHub';
    await expect(resolveModel(REPO, { progress: false, timeoutMs: 200 })).rejects.toThrow(
      /^no response from http:\/\/127\.0\.0\.1:\d+\/.*config\.json within 0\.2 s; .* is not in the hub cache at .*: --model DIR; or set HF_ENDPOINT/,
    );
  });

  it('body stalls for timeoutMs → HubError, no partial file', async () => {
    (await withHub()).mode = 'stallCdn';
    await expect(resolveModel(REPO, { progress: false, timeoutMs: 300 })).rejects.toThrow(
      /^download of http:.*\/resolve\/a{40}\/model\.safetensors timed out: no data for 0\.3 s after 100 of 10000 bytes$/,
    );
    expect(listTree(path.join(repoDir(), 'blobs')).some((b) => b.includes('incomplete'))).toBe(false);
    expect(listTree(path.join(repoDir(), 'snapshots'))).toEqual([]);
  });

  it('redirect target without Content-Length and a server without ETag/X-Repo-Commit: sha256 blob, revision as commit', async () => {
    const body = randomBytes(3000);
    const config = Buffer.from('{}');
    const server = await listen((req, res) => {
      if (req.url!.endsWith('/config.json')) return void res.end(config);
      if (req.url!.endsWith('/model.safetensors')) {
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        res.write(body.subarray(0, 1000));
        return void res.end(body.subarray(1000));
      }
      res.writeHead(404).end();
    });
    try {
      const snapshot = await resolveModel(REPO, { progress: false, endpoint: origin(server) });
      expect(snapshot).toBe(path.join(repoDir(), 'snapshots', 'main'));
      expect(readFileSync(path.join(repoDir(), 'refs', 'main'), 'utf8')).toBe('main');
      expect(listTree(path.join(repoDir(), 'blobs'))).toEqual([sha256(body), sha256(config)].sort());
      expect(readFileSync(path.join(snapshot, 'model.safetensors')).equals(body)).toBe(true);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('shows byte progress for model.safetensors on the given stream', async () => {
    await withHub();
    let output = '';
    const stream = { isTTY: false, write: (s: string) => ((output += s), true), on: () => stream };
    await resolveModel(REPO, { progressStream: stream as unknown as NodeJS.WriteStream });
    expect(output).toMatch(/^model\.safetensors \[#{20}\] 100% 10\.0 kB\/10\.0 kB .* in /m);
    expect(output).not.toMatch(/config\.json/);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { createProgress } from '../util/progress.js';
import { DEFAULT_HUB_ENDPOINT, DEFAULT_HUB_REVISION, hubFileUrl, isSafeRevision, parseHubId } from './hub-id.js';

export { parseHubId, type HubId } from './hub-id.js';

/**
 * Hugging Face hub downloads (Node only) into the cache layout the Python clients use, so a model fetched
 * by `huggingface_hub`/`transformers`/`timm` is found here and vice versa:
 *
 *   ${HF_HUB_CACHE:-${HF_HOME:-~/.cache/huggingface}/hub}/models--{owner}--{name}/
 *     blobs/{etag}                      file contents, named by the hub's ETag (sha256 for LFS files)
 *     snapshots/{commit}/{file}         relative symlink to ../../blobs/{etag} (a copy where
 *                                       symlinks are not allowed)
 *     refs/{revision}                   the commit the revision pointed to
 *     .no_exist/{commit}/{file}         an optional file the hub answered 404 for
 *
 * Files come from `${HF_ENDPOINT}/{owner}/{name}/resolve/{revision}/{file}`. The first response
 * names the commit (`X-Repo-Commit`); the other files are then requested at that commit, so a
 * push during the download cannot mix two versions. A server that sends no `X-Repo-Commit`
 * (a plain static mirror) gets the revision name as the commit, and one that sends neither
 * `X-Linked-Etag` nor `ETag` gets the sha256 of the content as the blob name.
 *
 * A snapshot with `config.json` and `model.safetensors` is used without touching the network
 * (offline use); to pick up a newer push, delete `refs/{revision}` or pass a commit as the
 * revision. `HF_HUB_OFFLINE=1` forbids the network altogether.
 *
 * Every blob is streamed to `blobs/{name}.incomplete-{random}`, checked (byte count against
 * Content-Length, sha256 against a sha256 ETag) and only then renamed into place; the snapshot
 * links and the ref are written after all files are in, so a snapshot folder is either complete
 * or absent. Leftover `.incomplete-*` files of an interrupted process are never read (they are
 * not removed either: another process may still be writing them).
 */

export interface ResolveOptions {
  /** Hub URL; default `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** The hub cache folder holding `models--*`; default `HF_HUB_CACHE`, else `${HF_HOME}/hub`. */
  cacheDir?: string;
  /** Branch, tag or commit; default `main`. An `@revision` in the spec wins over this. */
  revision?: string;
  /** Show a progress bar for model.safetensors on stderr (default true; false for `--quiet`). */
  progress?: boolean;
  /** Where the progress bar goes; default process.stderr. */
  progressStream?: NodeJS.WriteStream;
  /** Access token for gated/private repos; default `HF_TOKEN`. Sent to the endpoint's origin only. */
  token?: string;
  /** Give up after this long without any data; default 60 000 ms. */
  timeoutMs?: number;
  /** Never use the network; default from `HF_HUB_OFFLINE`. */
  offline?: boolean;
  fetchImpl?: typeof fetch;
}

interface ModelFile {
  name: string;
  required: boolean;
  showProgress: boolean;
}

/** Downloaded in this order; model.safetensors, the big one, last. */
const MODEL_FILES: readonly ModelFile[] = [
  { name: 'config.json', required: true, showProgress: false },
  { name: 'preprocessor_config.json', required: false, showProgress: false },
  { name: 'model.safetensors', required: true, showProgress: true },
];

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;

const SAFE_FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const COMMIT_HEX = /^[0-9a-f]{40}$/;

/** True for `owner/name` or `owner/name@revision` that is not an existing local path. */
export function isHubId(s: string): boolean {
  return parseHubId(s) !== undefined && !existsSync(s);
}

/**
 * A local model folder for `spec`: an existing directory as is, or a hub id downloaded into
 * (or found in) the hub cache. Returns the snapshot folder.
 */
export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<string> {
  if (isDirectory(spec)) return spec;
  const id = parseHubId(spec);
  if (!id || existsSync(spec)) {
    throw new UsageError(`expected a model folder (config.json + model.safetensors) or a hub id owner/name[@revision], found '${spec}'`);
  }
  const revision = id.revision ?? opts.revision ?? DEFAULT_HUB_REVISION;
  if (!isSafeRevision(revision)) throw new UsageError(`invalid hub revision '${revision}' for ${id.owner}/${id.name}`);
  const env = process.env;
  const repoDir = path.join(opts.cacheDir ?? defaultHubCacheDir(), `models--${id.owner}--${id.name}`);

  const cached = await cachedSnapshot(repoDir, revision);
  if (cached) return cached;
  if (opts.offline ?? isTruthy(env.HF_HUB_OFFLINE)) {
    throw new HubError(`${id.owner}/${id.name}@${revision} is not in the cache at ${repoDir} and HF_HUB_OFFLINE forbids downloading it`);
  }

  const endpoint = (opts.endpoint || env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const session: Session = {
    repo: `${id.owner}/${id.name}`,
    endpointOrigin: originOf(endpoint),
    token: opts.token ?? (env.HF_TOKEN || undefined),
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    fetchImpl: opts.fetchImpl ?? fetch,
    blobsDir: path.join(repoDir, 'blobs'),
    progress: opts.progress ?? true,
    progressStream: opts.progressStream,
  };
  return downloadSnapshot(repoDir, revision, endpoint, session);
}

/**
 * Fetches every model file into blobs/, then links the snapshot and writes the ref, so the
 * snapshot appears complete or not at all. Returns the snapshot folder.
 */
async function downloadSnapshot(repoDir: string, revision: string, endpoint: string, session: Session): Promise<string> {
  try {
    await fs.mkdir(session.blobsDir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new HubError(`cannot create the hub cache folder ${session.blobsDir}: ${code}; set HF_HOME or HF_HUB_CACHE to a writable folder`, { cause: err });
  }
  let commit: string | undefined;
  const fetched: Array<{ file: string; blob: string }> = [];
  const absent: string[] = [];
  for (const file of MODEL_FILES) {
    const at = commit ?? revision;
    const url = hubFileUrl(endpoint, session.repo, at, file.name);
    const blob = await downloadBlob(url, file, session);
    if (blob === 'absent') {
      absent.push(file.name);
      continue;
    }
    commit ??= blob.commit && SAFE_FILE_NAME.test(blob.commit) ? blob.commit : revision;
    fetched.push({ file: file.name, blob: blob.name });
  }
  const snapshotCommit = commit ?? revision; // config.json is required, so commit is set

  const snapshotDir = path.join(repoDir, 'snapshots', snapshotCommit);
  await fs.mkdir(snapshotDir, { recursive: true });
  for (const { file, blob } of fetched) await linkIntoSnapshot(snapshotDir, file, path.join(session.blobsDir, blob));
  for (const file of absent) {
    const marker = path.join(repoDir, '.no_exist', snapshotCommit, file);
    await fs.mkdir(path.dirname(marker), { recursive: true });
    await fs.writeFile(marker, '');
  }
  if (!(revision === snapshotCommit && COMMIT_HEX.test(revision))) {
    const ref = path.join(repoDir, 'refs', revision);
    await fs.mkdir(path.dirname(ref), { recursive: true });
    writeFileAtomic(ref, new TextEncoder().encode(snapshotCommit));
  }
  return snapshotDir;
}

/** `${HF_HUB_CACHE}`, else `${HF_HOME}/hub`, else `${XDG_CACHE_HOME:-~/.cache}/huggingface/hub`. */
export function defaultHubCacheDir(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const hfHome = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(hfHome, 'hub');
}

/** The snapshot folder for `revision` if it holds every required file; no network. */
async function cachedSnapshot(repoDir: string, revision: string): Promise<string | undefined> {
  let commit = revision;
  try {
    commit = (await fs.readFile(path.join(repoDir, 'refs', revision), 'utf8')).trim();
  } catch {
    // no ref: the revision may itself be a commit
  }
  if (!isSafeRevision(commit)) return undefined;
  const dir = path.join(repoDir, 'snapshots', commit);
  for (const file of MODEL_FILES) {
    if (file.required && !isFile(path.join(dir, file.name))) return undefined;
  }
  return dir;
}

interface Session {
  repo: string; // owner/name
  endpointOrigin: string;
  token: string | undefined;
  timeoutMs: number;
  fetchImpl: typeof fetch;
  blobsDir: string;
  progress: boolean;
  progressStream: NodeJS.WriteStream | undefined;
}

interface Blob {
  name: string; // file name in blobs/
  commit: string | undefined; // X-Repo-Commit, when the server sent one
}

/**
 * GET `url` into `blobs/`, following redirects. Returns the blob, or 'absent' for an optional
 * file the server answered 404 for.
 */
async function downloadBlob(url: string, file: ModelFile, session: Session): Promise<Blob | 'absent'> {
  const idle = new IdleTimeout(session.timeoutMs);
  try {
    const opened = await openFollowingRedirects(url, !file.required, session, idle);
    if (opened === 'absent') return 'absent';
    const { response, commit, etag } = opened;
    const blobName = etag && SAFE_FILE_NAME.test(etag) ? etag : undefined;
    if (blobName && isFile(path.join(session.blobsDir, blobName))) {
      await response.body?.cancel().catch(() => {});
      return { name: blobName, commit };
    }
    const name = await streamToBlob(response, url, file, blobName, session, idle);
    return { name, commit };
  } finally {
    idle.stop();
  }
}

interface Opened {
  response: Response; // the final 2xx response, body unread
  commit: string | undefined;
  etag: string | undefined;
}

/**
 * Follows redirects by hand: the hub's own response (302 to the CDN for large files) carries
 * X-Repo-Commit and X-Linked-Etag, which the CDN's final response does not. The headers used
 * are those of the last response that sent X-Repo-Commit, else of the final response.
 */
async function openFollowingRedirects(url: string, optional: boolean, session: Session, idle: IdleTimeout): Promise<Opened | 'absent'> {
  let current = url;
  let hubHeaders: Headers | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await get(current, session, idle);
    if (response.headers.has('x-repo-commit')) hubHeaders = response.headers;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => {});
      current = new URL(location, current).href;
      continue;
    }
    if (response.ok) {
      const headers = hubHeaders ?? response.headers;
      return {
        response,
        commit: headers.get('x-repo-commit') ?? undefined,
        etag: normaliseEtag(headers.get('x-linked-etag') ?? headers.get('etag')),
      };
    }
    await response.body?.cancel().catch(() => {});
    const errorCode = response.headers.get('x-error-code');
    if (optional && response.status === 404 && current === url && (errorCode ?? 'EntryNotFound') === 'EntryNotFound') {
      return 'absent';
    }
    throw httpError(response, current, session);
  }
  throw new HubError(`more than ${MAX_REDIRECTS} redirects fetching ${url}`);
}

/** One GET without following redirects; network failures become HubErrors. */
async function get(url: string, session: Session, idle: IdleTimeout): Promise<Response> {
  const headers: Record<string, string> = {
    'user-agent': 'vitprune',
    // Content-Length must count the bytes we receive, so no transparent decompression.
    'accept-encoding': 'identity',
  };
  if (session.token && originOf(url) === session.endpointOrigin) headers.authorization = `Bearer ${session.token}`;
  idle.arm();
  try {
    return await session.fetchImpl(url, { headers, redirect: 'manual', signal: idle.signal });
  } catch (err) {
    if (idle.fired) throw new HubError(`no response from ${url} within ${formatSeconds(session.timeoutMs)}; ${notCachedAdvice(session)}`);
    throw new HubError(`cannot reach the model hub at ${originOf(url)} (${networkErrorCode(err)}) while fetching ${url}; ${notCachedAdvice(session)}`, {
      cause: err,
    });
  }
}

/** What to do when the hub cannot be reached and the model is not in the cache. */
function notCachedAdvice(session: Session): string {
  return (
    `${session.repo} is not in the hub cache at ${path.dirname(session.blobsDir)}; ` +
    'without network, pass a model folder (config.json + model.safetensors) instead: --model DIR; or set HF_ENDPOINT to a hub you can reach'
  );
}

/**
 * Streams the body to `blobs/{name}.incomplete-{random}`, checks it, renames it into place.
 * Returns the blob name (`knownName`, else the content's sha256).
 */
async function streamToBlob(
  response: Response,
  url: string,
  file: ModelFile,
  knownName: string | undefined,
  session: Session,
  idle: IdleTimeout,
): Promise<string> {
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const expected = encoded ? undefined : parseLength(response.headers.get('content-length'));
  const tmp = path.join(session.blobsDir, `${knownName ?? 'download'}.incomplete-${randomBytes(6).toString('hex')}`);
  const progress = createProgress({
    label: file.name,
    total: expected ?? 0,
    unit: 'bytes',
    stream: session.progressStream,
    enabled: session.progress && file.showProgress,
  });
  const sha256 = createHash('sha256');
  let received = 0;
  let complete = false;
  const handle = await fs.open(tmp, 'wx');
  try {
    try {
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          idle.arm();
          await handle.write(chunk);
          sha256.update(chunk);
          received += chunk.byteLength;
          progress.update(received);
        }
      }
    } catch (err) {
      if (err instanceof Error && (err as NodeJS.ErrnoException).syscall === 'write') {
        throw new HubError(`cannot write ${tmp}: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
      }
      if (idle.fired) {
        throw new HubError(`download of ${url} timed out: no data for ${formatSeconds(session.timeoutMs)} after ${received} of ${expected ?? '?'} bytes`);
      }
      throw new HubError(`download of ${url} interrupted after ${received} of ${expected ?? '?'} bytes`, { cause: err });
    } finally {
      progress.done();
      await handle.close();
    }
    if (expected !== undefined && received !== expected) {
      throw new HubError(`download of ${url} interrupted after ${received} of ${expected} bytes`);
    }
    const digest = sha256.digest('hex');
    if (knownName && SHA256_HEX.test(knownName) && knownName !== digest) {
      throw new HubError(`download of ${url} is corrupt: sha256 ${digest}, the hub announced ${knownName}`);
    }
    const name = knownName ?? digest;
    await fs.rename(tmp, path.join(session.blobsDir, name));
    complete = true;
    return name;
  } finally {
    if (!complete) await fs.rm(tmp, { force: true }).catch(() => {});
  }
}

/** snapshots/{commit}/{file} → relative symlink to the blob (a copy if symlinks are refused). */
async function linkIntoSnapshot(snapshotDir: string, file: string, blobPath: string): Promise<void> {
  const target = path.join(snapshotDir, file);
  const tmp = `${target}.incomplete-${randomBytes(6).toString('hex')}`;
  try {
    await fs.symlink(path.relative(snapshotDir, blobPath), tmp);
  } catch {
    await fs.copyFile(blobPath, tmp);
  }
  await fs.rename(tmp, target);
}

function httpError(response: Response, url: string, session: Session): HubError {
  const status = response.status;
  const code = response.headers.get('x-error-code');
  const prefix = `HTTP ${status} from ${url}`;
  if (status === 401 || status === 403) {
    const advice = session.token ? 'the token in HF_TOKEN does not grant access' : 'set HF_TOKEN to an access token';
    const what =
      code === 'GatedRepo' ? `${session.repo} is gated: accept its conditions on the hub and` : `${session.repo} is private, gated or does not exist:`;
    return new HubError(`${prefix}: ${what} ${advice}`);
  }
  if (status === 404) {
    const what =
      code === 'RepoNotFound'
        ? `repository ${session.repo} not found`
        : code === 'RevisionNotFound'
          ? `revision not found in ${session.repo}`
          : code === 'EntryNotFound'
            ? `file not found in ${session.repo}`
            : `repository ${session.repo}, its revision or the file not found`;
    return new HubError(`${prefix}: ${what}`);
  }
  if (status === 429) return new HubError(`${prefix}: rate limited; try again later or set HF_TOKEN`);
  if (status >= 500) return new HubError(`${prefix}: server error; try again later`);
  return new HubError(`${prefix}: unexpected response`);
}

/** Resettable "no data for ms" timer that aborts the fetch and its body stream. */
class IdleTimeout {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(private readonly ms: number) {}
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get fired(): boolean {
    return this.controller.signal.aborted;
  }
  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(), this.ms);
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The errno-style code of a failed fetch (ECONNREFUSED, ENOTFOUND, ...), buried in `cause`. */
function networkErrorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const obj = e as { code?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof obj.code === 'string' && obj.code !== 'UND_ERR_SOCKET') return obj.code;
    if (Array.isArray(obj.errors) && obj.errors.length > 0) {
      e = obj.errors[0];
      continue;
    }
    if (!obj.cause) break;
    e = obj.cause;
  }
  const last = e as { message?: unknown } | undefined;
  return typeof last?.message === 'string' ? last.message.replace(/\s+/g, ' ') : String(err);
}

/** `W/"abc"` → `abc`. */
function normaliseEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  const stripped = etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return stripped || undefined;
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    throw new UsageError(`invalid hub endpoint URL '${url}'`);
  }
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function formatSeconds(ms: number): string {
  return `${ms / 1000} s`;
}

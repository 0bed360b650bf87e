import { HubError, UsageError } from '../errors.js';
import type { ModelBytes } from './load.js';

/**
 * A model folder's files over HTTP, with `fetch` only (no Node): what `loadClassifier` does with a
 * folder URL (`https://host/models/deit-tiny/`) in a browser or in Node, and, through
 * hub-web.ts, with a hub id in a browser.
 *
 * Files, in order: `config.json`; `preprocessor_config.json` when config.json is in
 * transformers layout (it names "architectures"); `model.safetensors`, the big one. Each is read
 * as a stream so that `onProgress` sees its bytes arrive, and its length is checked against
 * Content-Length. A failure is a HubError naming the URL, the file expected and what happened
 * (HTTP status, network error, short body).
 */

export interface DownloadProgress {
  file: string; // 'config.json', 'model.safetensors', …
  url: string;
  loaded: number; // bytes of this file received so far
  total: number | undefined; // its length, when the server said it (or it came from a cache)
}

export interface FetchModelOptions {
  /** Called as each file's bytes arrive (and once for a file found in a cache). */
  onProgress?: (progress: DownloadProgress) => void;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** Where downloaded files are kept, by URL (hub-web.ts: the browser's Cache Storage). */
export interface FileStore {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
}

/** The URL of a model folder, ending in '/' so that its files resolve inside it; http(s) only. */
export function folderBaseUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`expected an absolute http(s) URL of a model folder, found '${String(url)}'`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`expected an http(s) URL of a model folder, found a ${parsed.protocol} URL '${parsed.href}'`);
  }
  parsed.search = '';
  parsed.hash = '';
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return parsed.href;
}

/** The files of the model folder at `url` (config.json, model.safetensors, …) as bytes. */
export function fetchModelFolder(url: string | URL, options: FetchModelOptions = {}): Promise<ModelBytes> {
  const base = folderBaseUrl(url);
  return fetchModelFiles((file) => new URL(file, base).href, `the model folder ${base}`, options);
}

/**
 * A model's files, each from `urlOf(file)`; `where` names the model in messages ('the model
 * folder https://…/'). Files found in `store` are not fetched; fetched ones are put there.
 */
export async function fetchModelFiles(urlOf: (file: string) => string, where: string, options: FetchModelOptions = {}, store?: FileStore): Promise<ModelBytes> {
  const get = (file: string) => fetchFile(urlOf(file), file, where, options, store);
  const config = await get('config.json');
  const preprocessorConfig = declaresTransformersLayout(config) ? await get('preprocessor_config.json') : undefined;
  const weights = await get('model.safetensors');
  return preprocessorConfig ? { config, weights, preprocessorConfig } : { config, weights };
}

/** Whether config.json is in transformers layout (model/config.ts), which needs preprocessor_config.json. */
function declaresTransformersLayout(config: Uint8Array): boolean {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(config));
    return typeof parsed === 'object' && parsed !== null && 'architectures' in parsed;
  } catch {
    return false; // not JSON: modelFromBytes says so, naming the file
  }
}

async function fetchFile(url: string, file: string, where: string, options: FetchModelOptions, store: FileStore | undefined): Promise<Uint8Array> {
  const cached = await store?.get(url);
  if (cached) {
    options.onProgress?.({ file, url, loaded: cached.length, total: cached.length });
    return cached;
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await fetchImpl(url);
  } catch (cause) {
    throw new HubError(`cannot fetch ${url}, ${file} of ${where}: ${(cause as Error).message} (server unreachable, or it does not allow this origin: CORS)`, {
      cause,
    });
  }
  if (!response.ok) throw new HubError(`HTTP ${response.status} from ${url}: expected ${file} of ${where}; ${statusHint(response.status)}`);
  const bytes = await readBody(response, url, file, where, options.onProgress);
  await store?.put(url, bytes);
  return bytes;
}

function statusHint(status: number): string {
  if (status === 401 || status === 403) return 'the server refuses it (private or gated: no token is sent)';
  if (status === 404) return 'there is no such file there';
  if (status === 429) return 'rate limited: try again later';
  if (status >= 500) return 'server error: try again later';
  return 'unexpected response';
}

/** The whole body, reporting progress; a body shorter or longer than Content-Length is an error. */
async function readBody(response: Response, url: string, file: string, where: string, onProgress: FetchModelOptions['onProgress']): Promise<Uint8Array> {
  // A compressed response's Content-Length counts compressed bytes, not the ones read here.
  const encoding = response.headers.get('Content-Encoding');
  const declared = response.headers.get('Content-Length');
  const total = declared !== null && /^\d+$/.test(declared) && (!encoding || encoding === 'identity') ? Number(declared) : undefined;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    if (response.body) {
      const reader = response.body.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        chunks.push(chunk.value);
        loaded += chunk.value.length;
        onProgress?.({ file, url, loaded, total });
      }
    }
  } catch (cause) {
    throw new HubError(`${url}: the transfer of ${file} of ${where} broke off after ${loaded} bytes: ${(cause as Error).message}`, { cause });
  }
  if (loaded === 0) onProgress?.({ file, url, loaded, total }); // an empty body reported no chunk
  if (total !== undefined && loaded !== total) {
    throw new HubError(`${url}: expected ${total} bytes of ${file} of ${where} (Content-Length), received ${loaded}`);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

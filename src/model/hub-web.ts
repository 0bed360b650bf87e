import { UsageError } from '../errors.js';
import { DEFAULT_HUB_ENDPOINT, DEFAULT_HUB_REVISION, hubFileUrl, isSafeRevision, parseHubId } from './hub-id.js';
import type { ModelBytes } from './load.js';
import { fetchModelFiles, type FetchModelOptions, type FileStore } from './remote.js';

/**
 * A hub model over HTTP without Node (browsers): its files from
 * `${endpoint}/{owner}/{name}/resolve/{revision}/{file}` (remote.ts), kept in the browser's
 * Cache Storage under their URLs, in the cache named HUB_CACHE_NAME, so that the next load
 * needs no network. As with Node's hub cache (hub.ts), a stored revision is used as it is: to
 * pick up a newer push, delete the cache (`caches.delete('vitprune-hub')`) or ask for a commit.
 * No token is sent: private and gated repositories cannot be fetched this way.
 */

export const HUB_CACHE_NAME = 'vitprune-hub';

export interface HubFetchOptions extends FetchModelOptions {
  /** The hub's base URL, as HF_ENDPOINT in Node (default https://huggingface.co). */
  hubEndpoint?: string;
  /** Branch, tag or commit (default main); an `@revision` in the id wins over it. */
  revision?: string;
  /** Keep the files in Cache Storage, where the runtime has it (default true). */
  browserCache?: boolean;
}

/** The files of hub model `spec` (`owner/name[@revision]`) as bytes. */
export async function fetchHubModel(spec: string, options: HubFetchOptions = {}): Promise<ModelBytes> {
  const id = parseHubId(spec);
  if (!id) throw new UsageError(`expected a hub id owner/name[@revision], found '${spec}'`);
  const revision = id.revision ?? options.revision ?? DEFAULT_HUB_REVISION;
  if (!isSafeRevision(revision)) throw new UsageError(`invalid hub revision '${revision}' for ${id.owner}/${id.name}`);
  const endpoint = hubEndpoint(options.hubEndpoint);
  const repo = `${id.owner}/${id.name}`;
  const store = options.browserCache === false ? undefined : await openCacheStorage(HUB_CACHE_NAME);
  return fetchModelFiles((file) => hubFileUrl(endpoint, repo, revision, file), `hub model ${repo}@${revision} at ${endpoint}`, options, store);
}

/** The endpoint, checked: an absolute http(s) URL without a trailing '/'. */
function hubEndpoint(endpoint = DEFAULT_HUB_ENDPOINT): string {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new UsageError(`expected the hub endpoint to be an absolute http(s) URL (as HF_ENDPOINT), found '${endpoint}'`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`expected the hub endpoint to be an http(s) URL, found '${endpoint}'`);
  }
  return parsed.href.replace(/\/+$/, '');
}

/** The parts of the Cache Storage API used here (this file compiles without the DOM library). */
interface CacheLike {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

/** Cache Storage's cache `name` as a FileStore, or undefined where the runtime has none (Node, insecure pages). */
async function openCacheStorage(name: string): Promise<FileStore | undefined> {
  const caches = (globalThis as { caches?: { open(name: string): Promise<CacheLike> } }).caches;
  if (!caches) return undefined;
  const cache = await caches.open(name);
  return {
    async get(url) {
      const response = await cache.match(url);
      return response ? new Uint8Array(await response.arrayBuffer()) : undefined;
    },
    async put(url, bytes) {
      const body = bytes as Uint8Array<ArrayBuffer>;
      try {
        await cache.put(url, new Response(body, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) } }));
      } catch (e) {
        // A full quota costs the next load a download, not this one its model.
        console.warn(`vitprune: could not keep ${url} in Cache Storage '${name}': ${(e as Error).message}`);
      }
    },
  };
}

import { UsageError } from '../errors.js';
import { parseHubId } from '../model/hub-id.js';
import { fetchHubModel } from '../model/hub-web.js';
import { modelFromBytes, type ModelBytes } from '../model/load.js';
import { fetchModelFolder, type DownloadProgress } from '../model/remote.js';
import type { ViTModel } from '../model/types.js';

/**
 * Where `loadClassifier` finds a model, in Node and in browsers:
 *
 * | source                                   | Node                         | browser                          |
 * | ---------------------------------------- | ---------------------------- | -------------------------------- |
 * | `https://host/models/deit-tiny/` (a URL) | fetched (model/remote.ts)    | fetched (model/remote.ts)        |
 * | `/models/deit-tiny/`, `./m/`, `../m/`    | a folder path                | fetched, relative to the page    |
 * | `owner/name[@revision]`                  | hub cache on disk (hub.ts)   | fetched, kept in Cache Storage (hub-web.ts) |
 * | any other string                         | a folder path                | a UsageError                     |
 * | `{ config, weights }`                    | the bytes of the files       | the same                         |
 */

/** A model folder's URL or path, a hub id, or the bytes of a model folder's files. */
export type ModelSource = string | URL | ModelBytes;

export interface ModelSourceOptions {
  /** Called as the model's files arrive over HTTP (folder URLs; hub ids in browsers). */
  onProgress?: (progress: DownloadProgress) => void;
  /** The hub's base URL for hub ids (default: HF_ENDPOINT in Node, else https://huggingface.co). */
  hubEndpoint?: string;
  /** The hub revision (branch, tag or commit) for hub ids (default main; `id@revision` wins). */
  revision?: string;
  /** Browsers: keep hub downloads in Cache Storage (default true). */
  browserCache?: boolean;
  /** Node: a hub download shows a progress bar on stderr (default false). */
  progress?: boolean;
  /** The fetch for HTTP sources (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** What a source string names, decided without touching the network or the disk. */
export type SourceLocation =
  | { kind: 'url'; url: string } // a model folder over HTTP
  | { kind: 'hub'; id: string } // a hub id, fetched over HTTP (browsers)
  | { kind: 'node'; spec: string }; // a folder path or hub id, for Node's hub.ts and folder.ts

/** Where the code runs, as far as sources are concerned. */
export interface SourceRuntime {
  node: boolean;
  pageUrl?: string; // the page's (or worker's) location, against which browsers resolve '/…', './…', '../…'
}

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
const RELATIVE_URL = /^\.{0,2}\//;

/** What `source` names (see the table above). */
export function locateSource(source: string | URL, runtime: SourceRuntime): SourceLocation {
  if (source instanceof URL) return httpUrl(source.href);
  const scheme = SCHEME.exec(source)?.[1];
  if (scheme && !(runtime.node && scheme.length === 1)) return httpUrl(source); // 'C:' is a drive, not a scheme
  if (runtime.node) return { kind: 'node', spec: source };
  if (RELATIVE_URL.test(source)) {
    if (!runtime.pageUrl) throw new UsageError(`loadClassifier('${source}'): a relative model URL needs a page to be relative to; give an absolute URL`);
    return httpUrl(new URL(source, runtime.pageUrl).href);
  }
  if (parseHubId(source)) return { kind: 'hub', id: source };
  throw new UsageError(
    `loadClassifier('${source}'): expected a model folder URL (https://host/models/name/, or '/…', './…', '../…' on this site), ` +
      `a hub id owner/name[@revision], or the bytes of the model's files ({ config, weights })`,
  );
}

function httpUrl(url: string): SourceLocation {
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') {
    throw new UsageError(
      `loadClassifier('${url}'): expected an http(s) URL of a model folder, found a ${scheme}: URL${scheme === 'file' ? ' (in Node, give the folder path)' : ''}`,
    );
  }
  return { kind: 'url', url };
}

/** The runtime this code runs in. */
export function currentRuntime(): SourceRuntime {
  const node = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  const location = (globalThis as { location?: { href: string } }).location;
  return { node, pageUrl: location?.href };
}

/** The model `source` names, its files fetched or read as it says. */
export async function loadModel(source: ModelSource, options: ModelSourceOptions = {}): Promise<ViTModel> {
  if (typeof source !== 'string' && !(source instanceof URL)) return modelFromBytes(source);
  const location = locateSource(source, currentRuntime());
  switch (location.kind) {
    case 'url':
      return modelFromBytes(await fetchModelFolder(location.url, options), location.url);
    case 'hub':
      return modelFromBytes(await fetchHubModel(location.id, options), location.id);
    case 'node':
      return loadFromNode(location.spec, options);
  }
}

/** A folder or hub id, through the Node-only modules (loaded only here, when asked for). */
async function loadFromNode(spec: string, options: ModelSourceOptions): Promise<ViTModel> {
  const [{ resolveModel }, { loadModelFolder }] = await Promise.all([import('../model/hub.js'), import('../model/folder.js')]);
  const folder = await resolveModel(spec, {
    progress: options.progress ?? false,
    endpoint: options.hubEndpoint,
    revision: options.revision,
    fetchImpl: options.fetch,
  });
  return loadModelFolder(folder);
}

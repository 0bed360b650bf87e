/**
 * Keeps the demo usable offline once it has been loaded: the page, its scripts, the library
 * bundle with both wasm builds, the photos and the models served, all stored when it installs.
 * Model files (large, unchanging) are served from the cache first; everything else from the
 * network first, falling back to the cache when offline. Cached responses keep their headers,
 * COOP/COEP included, so an offline page is cross-origin isolated as it was online.
 */

interface ServiceWorkerScope {
  addEventListener(type: 'install' | 'activate', listener: (event: { waitUntil(p: Promise<unknown>): void }) => void): void;
  addEventListener(type: 'fetch', listener: (event: { request: Request; respondWith(r: Promise<Response>): void }) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  location: Location;
}
const scope = globalThis as unknown as ServiceWorkerScope;

const CACHE = 'vitprune-demo';
// The demo server's URL space (scripts/demo.ts); this worker is served at /service-worker.js, scope '/'.
const PAGE = ['/web/', '/web/style.css', '/web/main.js', '/web/engine-worker.js'];
const LIBRARY = '/browser/';
const LIBRARY_MANIFEST = `${LIBRARY}manifest.json`; // the library bundle's files (scripts/build-browser.ts)
const MODEL_FILES = ['config.json', 'model.safetensors'];

async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/**
 * Everything the page may need offline, fetched now: the engine's worker and the model files are
 * fetched by a worker that this service worker may not control on the first visit.
 */
async function precache(): Promise<void> {
  const library = (await fetchJson<string[]>(LIBRARY_MANIFEST)).map((file) => `${LIBRARY}${file}`);
  const models = await fetchJson<{ url: string }[]>('/models/');
  const photos = await fetchJson<string[]>('/images/');
  const cache = await caches.open(CACHE);
  await cache.addAll([...PAGE, LIBRARY_MANIFEST, ...library, '/models/', '/images/', ...photos, ...models.flatMap((m) => MODEL_FILES.map((f) => `${m.url}${f}`))]);
}

scope.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => scope.skipWaiting()));
});

scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));

async function cacheFirst(request: Request): Promise<Response> {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await (await caches.open(CACHE)).put(request, response.clone());
  return response;
}

async function networkFirst(request: Request): Promise<Response> {
  try {
    const response = await fetch(request);
    if (response.ok) await (await caches.open(CACHE)).put(request, response.clone());
    return response;
  } catch (offline) {
    const cached = await caches.match(request);
    if (cached) return cached;
    throw offline;
  }
}

scope.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== scope.location.origin) return;
  const isModelFile = url.pathname.startsWith('/models/') && !url.pathname.endsWith('/');
  event.respondWith(isModelFile ? cacheFirst(event.request) : networkFirst(event.request));
});

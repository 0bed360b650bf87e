/**
 * Keeps the demo usable offline once it has been loaded: the page, its scripts, the library
 * bundle with both wasm builds, the photo and model lists, and every model and photo fetched.
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
const SHELL = ['./', './style.css', './main.js', './engine-worker.js', '../browser/vitprune.js', '../browser/vitprune-relaxed.wasm', '../browser/vitprune-simd.wasm', '/models/', '/images/'];
/** Present once the library has a thread pool. */
const OPTIONAL = ['../browser/pool-worker.js'];

scope.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await Promise.all(OPTIONAL.map((url) => cache.add(url).catch(() => undefined)));
      await scope.skipWaiting();
    })(),
  );
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

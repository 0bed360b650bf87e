import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * A small static file server (node:http, GET and HEAD) for the demo, the browser tests and the
 * browser benchmark, on the loopback interface only.
 *
 * URL prefixes are mounted on folders; a prefix may have several folders, tried in order. With
 * `isolated` (the default) every response carries COOP/COEP, so that pages are cross-origin
 * isolated: SharedArrayBuffer, shared WebAssembly.Memory and the thread pool need it. A few
 * exact paths may be answered by fixed JSON documents (the demo's lists of models and photos) or
 * by single files (the demo's service worker, served at the root to control every path).
 */

export interface Mount {
  prefix: string; // URL path prefix, starting and ending with '/'
  dir: string; // folder served under it
}

export interface StaticServerOptions {
  mounts: Mount[];
  isolated?: boolean; // COOP: same-origin and COEP: require-corp on every response (default true)
  port?: number; // default 0: any free port
  redirects?: Record<string, string>; // exact paths answered by a 302 to another path ('/' → '/web/')
  json?: Record<string, unknown>; // exact paths answered by this value as JSON
  files?: Record<string, string>; // exact paths answered by this file ('/service-worker.js' → its build)
}

export interface StaticServer {
  url: string; // http://127.0.0.1:PORT (no trailing slash)
  isolated: boolean;
  close(): Promise<void>;
}

const MIME_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

/** The Content-Type of a file by its extension; unknown ones (.safetensors, .onnx) are bytes. */
export function mimeType(file: string): string {
  return MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** The headers that make a page cross-origin isolated (and let it load its own resources under COEP). */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** The file a URL path names, or null. Paths that leave their folder ('..', encoded or not) name nothing. */
export function resolveRequest(mounts: Mount[], urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  for (const mount of mounts) {
    if (!decoded.startsWith(mount.prefix)) continue;
    const root = path.resolve(mount.dir);
    const relative = decoded.slice(mount.prefix.length);
    const target = path.resolve(root, `.${path.posix.sep}${relative}`);
    if (target !== root && !target.startsWith(root + path.sep)) return null;
    if (!existsSync(target)) continue;
    const stat = statSync(target);
    if (stat.isFile()) return target;
    const index = path.join(target, 'index.html');
    if (stat.isDirectory() && existsSync(index)) return index;
  }
  return null;
}

export function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  const isolated = options.isolated ?? true;
  for (const m of options.mounts) {
    if (!m.prefix.startsWith('/') || !m.prefix.endsWith('/')) throw new Error(`mount prefix: expected '/…/', got '${m.prefix}'`);
  }

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const headers: Record<string, string> = { 'Cache-Control': 'no-cache', ...(isolated ? ISOLATION_HEADERS : {}) };
    const send = (status: number, type: string, body: string): void => {
      response.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)) });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      send(405, 'text/plain; charset=utf-8', `expected GET or HEAD, got ${request.method}\n`);
      return;
    }
    const urlPath = new URL(request.url ?? '/', 'http://localhost').pathname;
    const redirect = options.redirects?.[urlPath];
    if (redirect) {
      response.writeHead(302, { ...headers, Location: redirect, 'Content-Length': '0' });
      response.end();
      return;
    }
    if (options.json && urlPath in options.json) {
      send(200, MIME_TYPES['.json'], JSON.stringify(options.json[urlPath]));
      return;
    }
    const file = options.files?.[urlPath] ?? resolveRequest(options.mounts, urlPath);
    if (!file) {
      send(404, 'text/plain; charset=utf-8', `not found: ${urlPath}\n`);
      return;
    }
    response.writeHead(200, { ...headers, 'Content-Type': mimeType(file), 'Content-Length': String(statSync(file).size) });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    createReadStream(file)
      .on('error', () => response.destroy())
      .pipe(response);
  };

  const server = createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        isolated,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * `npm run demo`: serves the demo page (web/), the browser build (dist/browser, dist/web), the
 * sample photos (fixtures/images) and any local model folders on 127.0.0.1, cross-origin
 * isolated (COOP/COEP) so that the engine can use threads.
 *
 *   npm run demo -- [--model DIR]… [--port N] [--not-isolated]
 *
 * A model folder (config.json + model.safetensors, e.g. ../shared/data/deit-tiny) is served at
 * /models/NAME/, NAME being the folder's name; the page lists them from /models/.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startStaticServer, type Mount, type StaticServerOptions } from './static-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SAMPLE_PHOTOS_DIR = path.join(ROOT, 'fixtures/images');

export interface DemoServerSetup {
  models?: string[]; // model folders, each served at /models/<folder name>/
  isolated?: boolean; // default true
  port?: number;
  libraryDir?: string; // the library bundle's folder (default dist/browser)
  demoDir?: string; // the demo's compiled scripts (default dist/web)
  extraMounts?: Mount[]; // more folders (the browser benchmark's page and peers)
}

/** A model of the demo: its name and the URL of its folder. */
export interface DemoModel {
  name: string;
  url: string;
}

function checkModelFolder(dir: string): void {
  for (const file of ['config.json', 'model.safetensors']) {
    if (!existsSync(path.join(dir, file))) throw new Error(`--model ${dir}: expected a model folder holding ${file}, not found`);
  }
}

/** The URL space of the demo: /web/ (page), /browser/ (library), /images/ (photos), /models/NAME/, /service-worker.js. */
export function demoServerOptions(setup: DemoServerSetup = {}): StaticServerOptions {
  const models: DemoModel[] = [];
  const demoDir = setup.demoDir ?? path.join(ROOT, 'dist/web');
  const mounts: Mount[] = [
    { prefix: '/web/', dir: path.join(ROOT, 'web') },
    { prefix: '/web/', dir: demoDir },
    { prefix: '/browser/', dir: setup.libraryDir ?? path.join(ROOT, 'dist/browser') },
    { prefix: '/images/', dir: SAMPLE_PHOTOS_DIR },
  ];
  for (const dir of setup.models ?? []) {
    checkModelFolder(dir);
    const name = path.basename(path.resolve(dir));
    if (models.some((m) => m.name === name)) throw new Error(`--model ${dir}: a model named '${name}' is already served`);
    models.push({ name, url: `/models/${name}/` });
    mounts.push({ prefix: `/models/${name}/`, dir });
  }
  mounts.push(...(setup.extraMounts ?? []));
  const photos = readdirSync(SAMPLE_PHOTOS_DIR)
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort();
  return {
    mounts,
    isolated: setup.isolated ?? true,
    port: setup.port ?? 0,
    redirects: { '/': '/web/', '/web': '/web/' },
    json: { '/models/': models, '/images/': photos.map((f) => `/images/${f}`) },
    // At the root, so that its scope holds the library's workers (/browser/) as well as the page.
    files: { '/service-worker.js': path.join(demoDir, 'service-worker.js') },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true, default: [] },
      port: { type: 'string', default: '0' },
      'not-isolated': { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected an integer in 0…65535, got '${values.port}'`);
  // npm run starts in the project root: relative folders are taken from where npm was invoked.
  const from = process.env.INIT_CWD ?? process.cwd();
  const server = await startStaticServer(
    demoServerOptions({ models: values.model!.map((m) => path.resolve(from, m)), isolated: !values['not-isolated'], port }),
  );
  console.log(`vitprune demo: ${server.url}/web/ (${server.isolated ? 'cross-origin isolated' : 'NOT isolated: one thread'}; Ctrl-C stops)`);
}

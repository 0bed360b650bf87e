/**
 * The browser build (run by `npm run build`, hence by `npm ci`), with esbuild:
 *
 *   dist/browser/vitprune.js             the library's browser entry (src/browser.ts), one ESM bundle
 *   dist/browser/pool-*.js               the thread pool's worker modules, beside it (once they exist: WORKER_ENTRIES)
 *   dist/browser/vitprune-relaxed.wasm   the two wasm builds, copied from build/: the bundle finds
 *   dist/browser/vitprune-simd.wasm      them beside itself (new URL('./vitprune-….wasm', import.meta.url))
 *   dist/browser/manifest.json           the names of the files above (what a page stores for offline use)
 *   dist/web/                            the demo page's scripts (web/*.ts); the page imports the library bundle
 *
 * Then the check: the browser entry must reach no Node built-in (node:fs, zlib, …), statically or
 * by dynamic import. Built-ins are marked external so that the bundle completes and every one is
 * listed with its import chain; any finding fails the build (exit 1).
 *
 *   tsx scripts/build-browser.ts [--outdir DIR]
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { formatNodeImports, isNodeBuiltin, nodeImportsOf, type NodeImport } from './browser-check.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const BROWSER_ENTRY = 'src/browser.ts';
/**
 * The modules the thread pool starts as workers (issue 12): bundles beside the entry, which the pool
 * finds relative to its own module's URL (kernels/platform.ts siblingModule), i.e. the entry's.
 * Each is built once it exists.
 */
export const WORKER_ENTRIES: Record<string, string> = {
  'pool-supervisor': 'src/kernels/pool-supervisor.ts',
  'pool-worker': 'src/kernels/pool-worker.ts',
};
export const WASM_BUILDS = ['vitprune-relaxed.wasm', 'vitprune-simd.wasm'];
/** The demo's scripts: the page, the engine's dedicated worker, the service worker. */
export const DEMO_ENTRIES = ['web/main.ts', 'web/engine-worker.ts', 'web/service-worker.ts'];
/** How the demo's scripts import the library: this specifier is kept as a run-time import of the bundle. */
export const LIBRARY_SPECIFIER = 'vitprune';

/**
 * kernels/wasm.ts finds the wasm builds at `../../build/` from its own module (src/kernels/ and
 * dist/kernels/ sit two levels below the project root); in a bundle the module is the bundle,
 * and the builds are copied beside it.
 */
const WASM_DIR_IN_SOURCES = '../../build/vitprune-';
const WASM_DIR_IN_BUNDLE = './vitprune-';

export interface BrowserBuildOptions {
  outdir?: string; // default dist/ (the bundles go to OUTDIR/browser and OUTDIR/web)
  minify?: boolean; // default true
}

export interface BrowserBuild {
  libraryDir: string; // OUTDIR/browser
  demoDir: string; // OUTDIR/web
  nodeImports: NodeImport[]; // Node built-ins the browser entry reaches: empty when it builds for browsers
  report: string;
  sizes: Record<string, { bytes: number; gzip: number }>; // each file of the library (scripts and wasm builds), by name
}

/**
 * Modules that only Node can run, which the core reaches only by `import()` behind a check that
 * it runs in Node (loading a model folder or a hub id; starting worker_threads). In the browser
 * bundle such an `import()` gives a module that throws, saying so, and the module's own imports
 * (node:fs, …) stay out. A static import of one of them is left alone, and the check reports
 * what it pulls in.
 */
export const NODE_ONLY_MODULES = ['src/model/folder.ts', 'src/model/hub.ts', 'src/kernels/platform-node.ts'];

/** The plugin that applies NODE_ONLY_MODULES (paths relative to `root`). */
export function nodeOnlyModules(modules: string[], root = ROOT): esbuild.Plugin {
  const nodeOnly = new Set(modules.map((m) => path.resolve(root, m)));
  return {
    name: 'node-only-modules',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const target = path.resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
        if (!nodeOnly.has(target)) return undefined;
        return { path: path.relative(root, target), namespace: 'node-only' };
      });
      build.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`vitprune: ${args.path} runs in Node only, not in this browser build`)});`,
        loader: 'js',
      }));
    },
  };
}

/** Marks every Node built-in external (recorded in the metafile) instead of failing at the first. */
export const nodeBuiltinsExternal: esbuild.Plugin = {
  name: 'node-builtins-external',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => (isNodeBuiltin(args.path) ? { path: args.path, external: true } : undefined));
  },
};

/** Points kernels/wasm.ts at the wasm builds beside the bundle; fails when the path it rewrites is gone. */
const wasmBesideBundle: esbuild.Plugin = {
  name: 'wasm-beside-bundle',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]kernels[\\/]wasm\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(WASM_DIR_IN_SOURCES)) {
        return {
          errors: [
            {
              text: `expected ${args.path} to locate the wasm builds at '${WASM_DIR_IN_SOURCES}…' relative to itself, not found: update scripts/build-browser.ts`,
            },
          ],
        };
      }
      return { contents: source.replaceAll(WASM_DIR_IN_SOURCES, WASM_DIR_IN_BUNDLE), loader: 'ts' };
    });
  },
};

/** The demo's scripts import the library bundle at run time, from the folder beside theirs. */
const libraryAtRunTime: esbuild.Plugin = {
  name: 'library-at-run-time',
  setup(build) {
    build.onResolve({ filter: new RegExp(`^${LIBRARY_SPECIFIER}$`) }, () => ({ path: '../browser/vitprune.js', external: true }));
  },
};

const COMMON: esbuild.BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'silent',
};

/**
 * Bundles a page's scripts (each entry one ESM file in `outdir`); their import of 'vitprune' stays a
 * run-time import of the library bundle, expected at ../browser/vitprune.js from the scripts' folder.
 */
export async function bundlePageScripts(entries: string[], outdir: string, minify = true): Promise<void> {
  await esbuild.build({ ...COMMON, entryPoints: entries, outdir, minify, plugins: [libraryAtRunTime] });
}

export async function buildBrowser(options: BrowserBuildOptions = {}): Promise<BrowserBuild> {
  const outdir = path.resolve(ROOT, options.outdir ?? 'dist');
  const libraryDir = path.join(outdir, 'browser');
  const demoDir = path.join(outdir, 'web');
  const minify = options.minify ?? true;

  const entryPoints: Record<string, string> = { vitprune: BROWSER_ENTRY };
  for (const [name, entry] of Object.entries(WORKER_ENTRIES)) if (existsSync(path.join(ROOT, entry))) entryPoints[name] = entry;
  const library = await esbuild.build({
    ...COMMON,
    entryPoints,
    outdir: libraryDir,
    minify,
    keepNames: true, // errors name themselves by their class (errors.ts: new.target.name): HubError, not a minified name
    metafile: true,
    plugins: [nodeOnlyModules(NODE_ONLY_MODULES), nodeBuiltinsExternal, wasmBesideBundle],
  });
  for (const file of WASM_BUILDS) {
    const built = path.join(ROOT, 'build', file);
    if (!existsSync(built)) throw new Error(`expected the wasm build ${built} (made by \`npm run build:wasm\`), not found`);
    copyFileSync(built, path.join(libraryDir, file));
  }
  // What a page must store to run offline (the demo's service worker reads it).
  const files = [
    ...Object.keys(library.metafile.outputs)
      .map((f) => path.basename(f))
      .filter((f) => f.endsWith('.js')),
    ...WASM_BUILDS,
  ];
  writeFileSync(path.join(libraryDir, 'manifest.json'), `${JSON.stringify(files.sort())}\n`);

  await bundlePageScripts(DEMO_ENTRIES, demoDir, minify);

  const nodeImports = Object.keys(entryPoints).flatMap((name) => nodeImportsOf(library.metafile, entryPoints[name]));
  const sizes: BrowserBuild['sizes'] = {};
  for (const file of files) {
    const content = readFileSync(path.join(libraryDir, file));
    sizes[file] = { bytes: content.length, gzip: gzipSync(content, { level: 9 }).length };
  }
  return { libraryDir, demoDir, nodeImports, report: formatNodeImports(Object.values(entryPoints), nodeImports), sizes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
  const build = await buildBrowser({ outdir: values.outdir });
  const kib = (n: number) => (n / 1024).toFixed(1);
  const sizes = Object.entries(build.sizes).map(([name, size]) => `${name} ${kib(size.bytes)} KiB (gzip ${kib(size.gzip)})`);
  console.log(`build-browser: wrote ${path.relative(ROOT, build.libraryDir)}/: ${sizes.join(', ')}; and ${path.relative(ROOT, build.demoDir)}/`);
  if (build.nodeImports.length > 0) {
    console.error(build.report);
    process.exit(1);
  }
  console.log(build.report);
}

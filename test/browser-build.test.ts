import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNodeImports, nodeImportsOf } from '../scripts/browser-check.js';
import {
  BROWSER_ENTRY,
  buildBrowser,
  nodeBuiltinsExternal,
  nodeOnlyModules,
  WASM_BUILDS,
  WORKER_ENTRIES,
  type BrowserBuild,
} from '../scripts/build-browser.js';

type Imports = Metafile['inputs'][string]['imports'];

function metafile(graph: Record<string, Imports>): Metafile {
  return { inputs: Object.fromEntries(Object.entries(graph).map(([p, imports]) => [p, { bytes: 1, imports }])), outputs: {} };
}

describe('browser check (made-up import graphs)', () => {
  const graph = metafile({
    'src/entry.ts': [
      { path: 'src/a.ts', kind: 'import-statement' },
      { path: 'src/b.ts', kind: 'dynamic-import' },
    ],
    'src/a.ts': [
      { path: 'node:fs', kind: 'import-statement', external: true },
      { path: 'src/c.ts', kind: 'import-statement' },
    ],
    'src/b.ts': [{ path: 'src/c.ts', kind: 'import-statement' }],
    'src/c.ts': [{ path: 'node_modules/lib/index.js', kind: 'import-statement' }],
    'node_modules/lib/index.js': [{ path: 'zlib', kind: 'require-call', external: true }],
    'src/unreached.ts': [{ path: 'node:os', kind: 'import-statement', external: true }],
  });

  it('finds every built-in the entry reaches, static, dynamic or required, with the shortest chain', () => {
    expect(nodeImportsOf(graph, 'src/entry.ts')).toEqual([
      {
        builtin: 'zlib',
        importer: 'node_modules/lib/index.js',
        kind: 'require-call',
        chain: ['src/entry.ts', 'src/a.ts', 'src/c.ts', 'node_modules/lib/index.js'],
        chainKinds: ['import-statement', 'import-statement', 'import-statement'],
      },
      { builtin: 'node:fs', importer: 'src/a.ts', kind: 'import-statement', chain: ['src/entry.ts', 'src/a.ts'], chainKinds: ['import-statement'] },
    ]);
    // Reached only through import(): the chain says so.
    const dynamicOnly = metafile({
      'src/e.ts': [{ path: 'src/b.ts', kind: 'dynamic-import' }],
      'src/b.ts': [{ path: 'node:os', kind: 'import-statement', external: true }],
    });
    expect(formatNodeImports(['src/e.ts'], nodeImportsOf(dynamicOnly, 'src/e.ts'))).toContain('node:os (import-statement) in src/e.ts ⇢ src/b.ts');
  });

  it('reports nothing for an entry that reaches no built-in, and says so', () => {
    expect(nodeImportsOf(graph, 'src/b.ts').map((f) => f.builtin)).toEqual(['zlib']);
    expect(nodeImportsOf(metafile({ 'src/x.ts': [{ path: 'fflate', kind: 'import-statement', external: true }] }), 'src/x.ts')).toEqual([]);
    expect(formatNodeImports(['src/x.ts'], [])).toBe('browser check: src/x.ts reaches no Node built-in');
  });

  it('names the chain in its report, and refuses an entry that is not in the graph', () => {
    const report = formatNodeImports(['src/entry.ts'], nodeImportsOf(graph, 'src/entry.ts'));
    expect(report).toContain('src/entry.ts reaches 2 Node built-in(s) through 2 import(s)');
    expect(report).toContain('node:fs (import-statement) in src/entry.ts → src/a.ts');
    expect(() => nodeImportsOf(graph, 'src/missing.ts')).toThrow(/expected the entry src\/missing\.ts/);
  });
});

describe('Node-only modules in the browser build', () => {
  it('turns an import() of one into a module that throws, and leaves a static import of one to the check', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vitprune-node-only-'));
    const files: Record<string, string> = {
      'entry.ts': "export const load = () => import('./dynamic-only.js');\nexport { join } from './uses.js';\n",
      'uses.ts': "export { join } from './static-too.js';\n",
      'dynamic-only.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
      'static-too.ts': "import { join } from 'node:path';\nexport { join };\n",
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    try {
      const result = await esbuild.build({
        absWorkingDir: dir,
        entryPoints: ['entry.ts'],
        bundle: true,
        format: 'esm',
        platform: 'browser',
        write: false,
        outdir: 'out',
        metafile: true,
        logLevel: 'silent',
        plugins: [nodeOnlyModules(['dynamic-only.ts', 'static-too.ts'], dir), nodeBuiltinsExternal],
      });
      expect(nodeImportsOf(result.metafile, 'entry.ts').map((f) => [f.builtin, f.importer])).toEqual([['node:path', 'static-too.ts']]);
      const bundle = result.outputFiles.map((f) => f.text).join('\n');
      expect(bundle).toContain('vitprune: dynamic-only.ts runs in Node only, not in this browser build');
      expect(bundle).not.toContain('readFileSync');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('browser build', () => {
  let outdir: string;
  let build: BrowserBuild;
  beforeAll(async () => {
    outdir = mkdtempSync(path.join(tmpdir(), 'vitprune-browser-build-'));
    build = await buildBrowser({ outdir, minify: false });
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('writes the library bundle with both wasm builds beside it, locates them there, and lists and measures its files', () => {
    for (const file of WASM_BUILDS) expect(existsSync(path.join(build.libraryDir, file))).toBe(true);
    const bundle = readFileSync(path.join(build.libraryDir, 'vitprune.js'), 'utf8');
    expect(bundle).toContain('./vitprune-${');
    expect(bundle).not.toContain('../../build/');
    expect(JSON.parse(readFileSync(path.join(build.libraryDir, 'manifest.json'), 'utf8'))).toEqual(Object.keys(build.sizes).sort());
    for (const file of ['vitprune.js', ...WASM_BUILDS]) {
      expect(build.sizes[file].bytes).toBe(readFileSync(path.join(build.libraryDir, file)).length);
      expect(build.sizes[file].gzip).toBeLessThan(build.sizes[file].bytes);
    }
  });

  it('writes the demo scripts, which import the library bundle at run time', () => {
    const worker = readFileSync(path.join(build.demoDir, 'engine-worker.js'), 'utf8');
    expect(worker).toContain('"../browser/vitprune.js"');
    for (const file of ['main.js', 'service-worker.js']) expect(existsSync(path.join(build.demoDir, file))).toBe(true);
  });

  it('lists each Node built-in the browser entries reach with its chain from its entry', () => {
    process.stderr.write(`${build.report}\n`);
    const entries = [BROWSER_ENTRY, ...Object.values(WORKER_ENTRIES)];
    for (const found of build.nodeImports) expect(entries).toContain(found.chain[0]);
  });

  it('the browser entries reach no Node built-in', () => {
    expect(build.nodeImports).toEqual([]);
  });
});

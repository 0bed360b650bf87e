import { isBuiltin } from 'node:module';
import type { Metafile } from 'esbuild';

/**
 * The browser build's check: which Node built-ins (node:fs, zlib, …) a bundle's entry reaches,
 * through which chain of imports. esbuild's metafile lists every input with its imports; the
 * build marks built-ins external (so that it completes and every offender is listed at once,
 * not only the first), and this walks the import graph from the entry to each of them.
 */

export type ImportKind = Metafile['inputs'][string]['imports'][number]['kind'];

/** One Node built-in the entry reaches. */
export interface NodeImport {
  builtin: string; // the specifier as written: 'node:fs', 'zlib'
  importer: string; // the input that imports it (a path relative to the project root)
  kind: ImportKind; // how: 'import-statement', 'dynamic-import', 'require-call', …
  chain: string[]; // inputs from the entry to the importer, the entry first
}

/** Whether `specifier` names a Node built-in (with or without the node: prefix). */
export function isNodeBuiltin(specifier: string): boolean {
  return isBuiltin(specifier);
}

/**
 * Every Node built-in that `entry` (an input path of the metafile) reaches, one per importer
 * and specifier, each with its shortest import chain from the entry; sorted by importer.
 */
export function nodeImportsOf(metafile: Metafile, entry: string): NodeImport[] {
  if (!(entry in metafile.inputs)) {
    throw new Error(`browser check: expected the entry ${entry} among the bundle's inputs, found ${Object.keys(metafile.inputs).length} others`);
  }
  const previous = new Map<string, string | null>([[entry, null]]); // breadth-first: the input each was first reached from
  const queue = [entry];
  const found: NodeImport[] = [];
  while (queue.length > 0) {
    const input = queue.shift()!;
    for (const imported of metafile.inputs[input].imports) {
      if (isNodeBuiltin(imported.path)) {
        found.push({ builtin: imported.path, importer: input, kind: imported.kind, chain: chainTo(input, previous) });
      } else if (!imported.external && imported.path in metafile.inputs && !previous.has(imported.path)) {
        previous.set(imported.path, input);
        queue.push(imported.path);
      }
    }
  }
  return found.sort((a, b) => a.importer.localeCompare(b.importer) || a.builtin.localeCompare(b.builtin));
}

function chainTo(input: string, previous: Map<string, string | null>): string[] {
  const chain: string[] = [];
  for (let at: string | null | undefined = input; at; at = previous.get(at)) chain.unshift(at);
  return chain;
}

/** The findings as lines for a person: one per built-in and importer, with its chain. */
export function formatNodeImports(entry: string, found: NodeImport[]): string {
  if (found.length === 0) return `browser check: ${entry} reaches no Node built-in`;
  const builtins = new Set(found.map((f) => f.builtin));
  const lines = found.map((f) => `  ${f.builtin} (${f.kind}) in ${f.chain.join(' → ')}`);
  return [
    `browser check: ${entry} reaches ${builtins.size} Node built-in(s) through ${found.length} import(s); a browser has none of them:`,
    ...lines,
  ].join('\n');
}

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
  chainKinds: ImportKind[]; // how each input of the chain after the entry is imported by the one before it
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
  // Breadth-first: the input each was first reached from, and how.
  const previous = new Map<string, { from: string; kind: ImportKind } | null>([[entry, null]]);
  const queue = [entry];
  const found: NodeImport[] = [];
  while (queue.length > 0) {
    const input = queue.shift()!;
    for (const imported of metafile.inputs[input].imports) {
      if (isNodeBuiltin(imported.path)) {
        found.push({ builtin: imported.path, importer: input, kind: imported.kind, ...chainTo(input, previous) });
      } else if (!imported.external && imported.path in metafile.inputs && !previous.has(imported.path)) {
        previous.set(imported.path, { from: input, kind: imported.kind });
        queue.push(imported.path);
      }
    }
  }
  return found.sort((a, b) => a.importer.localeCompare(b.importer) || a.builtin.localeCompare(b.builtin));
}

function chainTo(input: string, previous: Map<string, { from: string; kind: ImportKind } | null>): Pick<NodeImport, 'chain' | 'chainKinds'> {
  const chain = [input];
  const chainKinds: ImportKind[] = [];
  for (let step = previous.get(input); step; step = previous.get(step.from)) {
    chain.unshift(step.from);
    chainKinds.unshift(step.kind);
  }
  return { chain, chainKinds };
}

/** A chain as text: ' → ' before a statically imported input, ' ⇢ ' before one reached by import(), ' ⇒ ' by require(). */
function formatChain({ chain, chainKinds }: Pick<NodeImport, 'chain' | 'chainKinds'>): string {
  const arrow = (kind: ImportKind) => (kind === 'dynamic-import' ? ' ⇢ ' : kind === 'require-call' ? ' ⇒ ' : ' → ');
  return chain.map((input, i) => (i === 0 ? input : `${arrow(chainKinds[i - 1])}${input}`)).join('');
}

/** The findings as lines for a person: one per built-in and importer, with its chain from its entry. */
export function formatNodeImports(entries: string[], found: NodeImport[]): string {
  const reach = `${entries.join(', ')} ${entries.length === 1 ? 'reaches' : 'reach'}`;
  if (found.length === 0) return `browser check: ${reach} no Node built-in`;
  const builtins = new Set(found.map((f) => f.builtin));
  const lines = found.map((f) => `  ${f.builtin} (${f.kind}) in ${formatChain(f)}`);
  return [
    `browser check: ${reach} ${builtins.size} Node built-in(s) through ${found.length} import(s) (⇢ import(), ⇒ require()); a browser has none of them:`,
    ...lines,
  ].join('\n');
}

import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The shape of the code, checked on every run of the suite:
 *
 * 1. Imports point down: cli → api → eval, viz, oracle → prune → grad → image → model → kernels →
 *    util → errors. A file may import its own folder and any lower layer, never a higher one nor a
 *    sibling layer (eval, viz and oracle). Type-only imports count: they are dependencies too.
 * 2. Node's built-ins stay out of the core: a file outside cli/ whose static imports reach
 *    `node:*` (or a built-in by its bare name) must say "(Node only)" in its header, and a file
 *    that says so must need it. So the package root and the sub-exports, which say nothing of the
 *    kind, can run in a browser; Node-only code is reached through dynamic `import()` only.
 */

const SRC = path.resolve(import.meta.dirname, '../src');

/** Layers from the bottom; a name is a folder of src/ or a file directly in it. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts'],
  ['util'],
  ['kernels'],
  ['model'],
  ['image'],
  ['grad'],
  ['prune'],
  ['eval', 'viz', 'oracle'],
  ['api'],
  ['cli'],
  ['index.ts', 'node.ts'],
  ['browser.ts'],
];

function layerOf(file: string): { name: string; rank: number } {
  const name = path.relative(SRC, file).split(path.sep)[0];
  const rank = LAYERS.findIndex((layer) => layer.includes(name));
  if (rank < 0) throw new Error(`${path.relative(SRC, file)}: its folder '${name}' has no layer in test/layers.test.ts`);
  return { name, rank };
}

interface Import {
  specifier: string;
  typeOnly: boolean;
  dynamic: boolean;
}

function importsOf(file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node) ? Boolean(node.importClause?.isTypeOnly) : node.isTypeOnly;
      found.push({ specifier: node.moduleSpecifier.text, typeOnly, dynamic: false });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) found.push({ specifier: argument.text, typeOnly: false, dynamic: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** The source file a relative specifier names (`./x.js` → x.ts), or null for a package or built-in. */
function resolve(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return path.resolve(path.dirname(from), specifier).replace(/\.js$/, '.ts');
}

const isBuiltin = (specifier: string): boolean => specifier.startsWith('node:') || builtinModules.includes(specifier);

const files = sourceFiles(SRC);
const imports = new Map(files.map((f) => [f, importsOf(f)]));

/** Every import of a higher or sibling layer, as "from imports to (layer → layer)". */
function wrongImports(graph: Map<string, Import[]>): string[] {
  const wrong: string[] = [];
  for (const [file, list] of graph) {
    const from = layerOf(file);
    for (const { specifier } of list) {
      const target = resolve(file, specifier);
      if (!target) continue;
      const to = layerOf(target);
      if (to.name !== from.name && to.rank >= from.rank)
        wrong.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)} (${from.name} → ${to.name})`);
    }
  }
  return wrong;
}

/** Files of `graph` whose static imports reach a Node built-in (type-only imports are erased, dynamic ones load later). */
function reachingNode(graph: Map<string, Import[]>): Set<string> {
  const memo = new Map<string, boolean>();
  const visit = (file: string, stack: Set<string>): boolean => {
    const known = memo.get(file);
    if (known !== undefined) return known;
    if (stack.has(file)) return false;
    stack.add(file);
    const result = (graph.get(file) ?? []).some(({ specifier, typeOnly, dynamic }) => {
      if (typeOnly || dynamic) return false;
      if (isBuiltin(specifier)) return true;
      const target = resolve(file, specifier);
      return target !== null && visit(target, stack);
    });
    stack.delete(file);
    memo.set(file, result);
    return result;
  };
  return new Set([...graph.keys()].filter((f) => visit(f, new Set())));
}

/** Files outside cli/ that reach Node without saying "(Node only)", and files that say it without need. */
function nodeMarks(graph: Map<string, Import[]>, saysNodeOnly: (file: string) => boolean): { unmarked: string[]; needless: string[] } {
  const node = reachingNode(graph);
  const checked = [...graph.keys()].filter((f) => layerOf(f).name !== 'cli');
  return {
    unmarked: checked.filter((f) => node.has(f) && !saysNodeOnly(f)).map((f) => path.relative(SRC, f)),
    needless: checked.filter((f) => !node.has(f) && saysNodeOnly(f)).map((f) => path.relative(SRC, f)),
  };
}

const at = (file: string) => path.join(SRC, file);
const dependency = (specifier: string, kind: Partial<Import> = {}): Import => ({ specifier, typeOnly: false, dynamic: false, ...kind });

describe('dependencies point down', () => {
  it('no file imports a higher or a sibling layer', () => {
    expect(wrongImports(imports)).toEqual([]);
  });

  it('an upward or sideways import is reported, a downward one is not', () => {
    const graph = new Map([
      [at('model/vit.ts'), [dependency('../prune/flops.js', { typeOnly: true }), dependency('../kernels/types.js')]],
      [at('eval/compare.ts'), [dependency('../viz/trace.js')]],
    ]);
    expect(wrongImports(graph)).toEqual(['model/vit.ts imports prune/flops.ts (model → prune)', 'eval/compare.ts imports viz/trace.ts (eval → viz)']);
  });
});

describe('Node built-ins stay out of the core', () => {
  it('a file outside cli/ says "(Node only)" exactly when its static imports reach a Node built-in', () => {
    const says = (file: string) => /\(Node only\)/.test(readFileSync(file, 'utf8').slice(0, 2000));
    expect(nodeMarks(imports, says)).toEqual({ unmarked: [], needless: [] });
  });

  it('sees Node through a chain of static imports, not through type-only or dynamic ones', () => {
    const graph = new Map([
      [at('model/folder.ts'), [dependency('../util/atomic-file.js')]],
      [at('util/atomic-file.ts'), [dependency('node:fs')]],
      [at('model/load.ts'), [dependency('./folder.js', { typeOnly: true })]],
      [at('api/classifier.ts'), [dependency('../model/folder.js', { dynamic: true }), dependency('fs')]],
    ]);
    expect(nodeMarks(graph, (f) => f.endsWith('folder.ts'))).toEqual({ unmarked: ['util/atomic-file.ts', 'api/classifier.ts'], needless: [] });
    expect(nodeMarks(graph, () => true).needless).toEqual(['model/load.ts']);
  });
});

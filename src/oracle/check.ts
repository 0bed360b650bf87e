import type { TraceBundle } from './bundle-bytes.js';
import { DEFAULT_TOLERANCES, depthFactor, isIntegerKind, tensorBlock, tensorSpec, TENSOR_KINDS, type TensorKind, type TraceArray } from './format.js';

/**
 * The checker: compares an ACTUAL bundle (another port, another backend) with an EXPECTED one
 * (normally from reference64), tensor by tensor in the order the expected forward pass computed
 * them. Floats of a kind pass when every |actual − expected| ≤ τ × max|expected| over the tensor,
 * τ = τ_kind × depthFactor(block) (non-finite values must be equal); integer kinds must be equal.
 * Tensors the actual bundle lacks are listed, not failed: a port only writes what it has. The
 * first tensor that fails is the first divergence; later failures are usually its consequences.
 */

export type TensorStatus = 'ok' | 'differs' | 'shape' | 'dtype' | 'missing';

export interface ElementDifference {
  index: number; // flat, row-major
  at: number[]; // the same, per dimension
  expected: number;
  actual: number;
  allowed: number; // the absolute tolerance: tolerance × max|expected| (0 for integers)
}

export interface TensorComparison {
  name: string;
  kind: TensorKind | 'other';
  block: number; // −1 before the blocks, depth after them
  status: TensorStatus;
  tolerance: number; // τ: relative to max|expected|, the kind's times depthFactor (0: exact)
  expectedShape: number[];
  actualShape?: number[];
  maxError?: number; // max |actual − expected|
  relativeError?: number; // maxError / max|expected|
  mismatches?: number; // elements outside the tolerance
  first?: ElementDifference; // the first of them
}

export interface KindSummary {
  kind: TensorKind | 'other';
  tensors: number; // compared (present in both)
  failed: number;
  worstRelativeError: number; // over the float tensors of the kind that were compared with matching shapes
  worstTensor: string | null;
  tolerance: number; // the kind's τ, before depthFactor
  worstShare: number; // the largest error as a share of its tensor's τ (≤ 1 passes)
}

export interface CheckReport {
  ok: boolean;
  expected: string; // labels of the two bundles (folders), for messages
  actual: string;
  manifestDifferences: string[]; // model dimensions or method settings that differ
  firstDivergence: TensorComparison | null;
  tensors: TensorComparison[]; // every expected tensor, in order
  missing: string[]; // expected tensors the actual bundle lacks
  extra: string[]; // actual tensors the expected bundle lacks (not compared)
  kinds: KindSummary[];
}

export interface CheckOptions {
  tolerances?: Partial<Record<TensorKind, number>>; // overrides
  expectedLabel?: string;
  actualLabel?: string;
}

/** Compare `actual` with `expected`. */
export function checkBundles(expected: TraceBundle, actual: TraceBundle, options: CheckOptions = {}): CheckReport {
  const tolerances: Record<string, number> = { ...DEFAULT_TOLERANCES, ...expected.manifest.tolerances, ...options.tolerances };
  const depth = expected.manifest.config?.depth ?? 0;
  const tensors: TensorComparison[] = [];
  for (const [name, e] of expected.tensors) {
    const kind = kindOf(name, e.info.kind);
    const block = e.info.block ?? tensorBlock(name, depth);
    const exact = e.data instanceof Int32Array || (kind !== 'other' && isIntegerKind(kind));
    const tolerance = exact ? 0 : (tolerances[kind] ?? tolerances.residual) * depthFactor(block);
    const base = { name, kind, block, tolerance, expectedShape: e.info.shape };
    const a = actual.tensors.get(name);
    tensors.push(a ? compareTensor(base, e.data, a.info.shape, a.data) : { ...base, status: 'missing' });
  }
  const manifestDifferences = compareManifests(expected, actual);
  const failed = tensors.filter((t) => t.status !== 'ok' && t.status !== 'missing');
  return {
    ok: failed.length === 0 && manifestDifferences.length === 0 && tensors.some((t) => t.status === 'ok'),
    expected: options.expectedLabel ?? 'expected',
    actual: options.actualLabel ?? 'actual',
    manifestDifferences,
    firstDivergence: failed[0] ?? null,
    tensors,
    missing: tensors.filter((t) => t.status === 'missing').map((t) => t.name),
    extra: [...actual.tensors.keys()].filter((name) => !expected.tensors.has(name)),
    kinds: summarizeKinds(tensors),
  };
}

/** The tolerance kind of a tensor: by its name, else as its manifest says, else 'other'. */
function kindOf(name: string, listed: string | undefined): TensorKind | 'other' {
  const spec = tensorSpec(name);
  if (spec) return spec.kind;
  return (TENSOR_KINDS as readonly string[]).includes(listed ?? '') ? (listed as TensorKind) : 'other';
}

type ComparisonBase = Pick<TensorComparison, 'name' | 'kind' | 'block' | 'tolerance' | 'expectedShape'>;

function compareTensor(base: ComparisonBase, expected: TraceArray, actualShape: number[], actual: TraceArray): TensorComparison {
  if (!sameShape(base.expectedShape, actualShape)) return { ...base, status: 'shape', actualShape };
  if (expected instanceof Int32Array !== actual instanceof Int32Array) return { ...base, status: 'dtype', actualShape };
  let scale = 0; // max|expected| over the finite values
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  const allowed = base.tolerance * scale;
  let maxError = 0;
  let mismatches = 0;
  let first: ElementDifference | undefined;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const error = Math.abs(a - e);
    const pass = Number.isFinite(e) ? error <= allowed : Object.is(a, e) || (Number.isNaN(e) && Number.isNaN(a));
    if (Number.isFinite(e)) maxError = Math.max(maxError, Number.isNaN(error) ? Infinity : error);
    if (!pass) {
      mismatches++;
      first ??= { index: i, at: unravel(i, base.expectedShape), expected: e, actual: a, allowed };
    }
  }
  return {
    ...base,
    status: mismatches ? 'differs' : 'ok',
    actualShape,
    maxError,
    relativeError: scale > 0 ? maxError / scale : maxError,
    mismatches,
    ...(first && { first }),
  };
}

function summarizeKinds(tensors: TensorComparison[]): KindSummary[] {
  const kinds = new Map<string, KindSummary>();
  for (const t of tensors) {
    if (t.status === 'missing') continue;
    const s = kinds.get(t.kind) ?? {
      kind: t.kind,
      tensors: 0,
      failed: 0,
      worstRelativeError: 0,
      worstTensor: null,
      tolerance: t.tolerance / depthFactor(t.block),
      worstShare: 0,
    };
    s.tensors++;
    if (t.status !== 'ok') s.failed++;
    if (t.relativeError !== undefined && (s.worstTensor === null || t.relativeError > s.worstRelativeError)) {
      s.worstRelativeError = t.relativeError;
      s.worstTensor = t.name;
    }
    if (t.relativeError !== undefined && t.tolerance > 0) s.worstShare = Math.max(s.worstShare, t.relativeError / t.tolerance);
    kinds.set(t.kind, s);
  }
  return [...kinds.values()];
}

/** What makes two bundles incomparable: different model dimensions, or a different method or settings. */
function compareManifests(expected: TraceBundle, actual: TraceBundle): string[] {
  const differences: string[] = [];
  const e = expected.manifest;
  const a = actual.manifest;
  if (e.config && a.config) {
    for (const [key, value] of Object.entries(e.config)) {
      const other = (a.config as unknown as Record<string, unknown>)[key];
      if (other !== undefined && JSON.stringify(other) !== JSON.stringify(value))
        differences.push(`config.${key}: expected ${JSON.stringify(value)}, actual ${JSON.stringify(other)}`);
    }
  }
  if (a.method !== undefined && JSON.stringify(a.method) !== JSON.stringify(e.method ?? null)) {
    differences.push(`method: expected ${JSON.stringify(e.method ?? null)}, actual ${JSON.stringify(a.method)}`);
  }
  return differences;
}

function unravel(index: number, shape: readonly number[]): number[] {
  const at = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = index % shape[d];
    index = Math.floor(index / shape[d]);
  }
  return at;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Where a tensor sits, in words. */
function blockLabel(block: number, depth: number): string {
  if (block < 0) return 'before the blocks';
  return block >= depth ? 'after the blocks' : `block ${block}`;
}

const g = (x: number) => (Number.isFinite(x) && x !== 0 ? x.toExponential(2) : String(x));

/** What a failed comparison found, in one line. */
export function describeDivergence(t: TensorComparison, depth: number): string {
  const where = `${blockLabel(t.block, depth)}, ${t.name} [${t.expectedShape.join(', ')}]`;
  if (t.status === 'shape') return `${where}: actual shape [${t.actualShape!.join(', ')}]`;
  if (t.status === 'dtype') return `${where}: expected ${t.kind === 'other' || !isIntegerKind(t.kind) ? 'floats' : 'int32'}, actual the other`;
  const f = t.first!;
  const tolerance = t.tolerance === 0 ? 'exact' : `tolerance ${g(t.tolerance)} × max|expected| = ${g(f.allowed)}, τ_${t.kind} × ${depthFactor(t.block)}`;
  return `${where} at [${f.at.join(', ')}]: expected ${f.expected}, actual ${f.actual} (|Δ| ${g(Math.abs(f.actual - f.expected))}, ${tolerance}); ${t.mismatches} of ${t.expectedShape.reduce((p, d) => p * d, 1)} values outside`;
}

/** The report as text: the first divergence, a table by tensor kind, the missing tensors, the verdict. */
export function formatCheckReport(report: CheckReport, depth: number): string {
  const lines = [`expected ${report.expected}`, `actual   ${report.actual}`];
  for (const d of report.manifestDifferences) lines.push(`manifests differ: ${d}`);
  lines.push(report.firstDivergence ? `first divergence: ${describeDivergence(report.firstDivergence, depth)}` : 'no divergence');
  const rows = [['kind', 'tensors', 'failed', 'max rel. error', 'τ_kind', 'max share of τ', 'worst tensor']];
  for (const k of report.kinds) {
    const exact = k.tolerance === 0;
    const share = exact ? '' : k.worstShare.toFixed(3);
    rows.push([
      k.kind,
      String(k.tensors),
      String(k.failed),
      exact ? (k.failed ? 'differ' : 'equal') : g(k.worstRelativeError),
      exact ? 'exact' : g(k.tolerance),
      share,
      k.worstTensor ?? '',
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  lines.push(
    '',
    ...rows.map((r) =>
      r
        .map((cell, c) => (c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
        .join('  ')
        .trimEnd(),
    ),
  );
  lines.push('(a tensor of block b is allowed τ_kind × (b + 1) × its max|expected|; a share above 1 fails)', '');
  if (report.missing.length) lines.push(`missing from actual (${report.missing.length}, not compared): ${report.missing.join(', ')}`);
  if (report.extra.length) lines.push(`only in actual (${report.extra.length}, not compared): ${report.extra.join(', ')}`);
  const compared = report.tensors.length - report.missing.length;
  const failed = report.tensors.filter((t) => t.status !== 'ok' && t.status !== 'missing').length;
  lines.push(
    report.ok
      ? `PASS: ${compared} tensors compared, all within tolerance`
      : `FAIL: ${failed} of ${compared} tensors compared differ${report.manifestDifferences.length ? ', manifests differ' : ''}${compared === 0 ? ' (nothing to compare)' : ''}`,
  );
  return lines.join('\n') + '\n';
}

import { UsageError, VitpruneError } from '../errors.js';
import { readBundle } from '../oracle/bundle.js';
import { checkBundles, describeDivergence, formatCheckReport } from '../oracle/check.js';
import { FLOAT_KINDS, type TensorKind } from '../oracle/format.js';
import { stringOption, type CommandSpec, type Parsed } from './args.js';
import { printJson } from './common.js';

export const checkSpec: CommandSpec = {
  name: 'check',
  summary: 'Compare a trace bundle with an expected one, tensor by tensor, and name the first divergence (exit 1 when they differ).',
  usage: 'vitprune check EXPECTED_DIR ACTUAL_DIR [--tol KIND=REL,...] [--json]',
  options: {
    tol: {
      type: 'string',
      valueName: 'LIST',
      help: `tolerances relative to the tensor's max|expected|, e.g. probs=1e-4,residual=1e-4 (kinds: ${FLOAT_KINDS.join(', ')}; ids, positions and flags are exact)`,
    },
  },
  positionals: { name: 'BUNDLE', min: 2 },
};

export async function checkCommand({ values, positionals }: Parsed): Promise<void> {
  if (positionals.length !== 2) throw new UsageError(`'vitprune check' expects EXPECTED_DIR and ACTUAL_DIR, got ${positionals.length} folders (see --help)`);
  const [expectedDir, actualDir] = positionals;
  const expected = readBundle(expectedDir);
  const actual = readBundle(actualDir);
  const report = checkBundles(expected, actual, {
    tolerances: parseTolerances(stringOption(values, 'tol')),
    expectedLabel: expectedDir,
    actualLabel: actualDir,
  });
  const depth = expected.manifest.config?.depth ?? 0;
  if (values.json) printJson(report);
  else process.stdout.write(formatCheckReport(report, depth));
  if (!report.ok) {
    const reason = report.firstDivergence
      ? `first divergence: ${describeDivergence(report.firstDivergence, depth)}`
      : (report.manifestDifferences[0] ?? 'no tensor in common');
    throw new VitpruneError(`${actualDir} does not match ${expectedDir}: ${reason}`);
  }
}

/** `probs=1e-4,residual=2e-5` → { probs: 1e-4, residual: 2e-5 }. */
function parseTolerances(raw: string | undefined): Partial<Record<TensorKind, number>> {
  const tolerances: Partial<Record<TensorKind, number>> = {};
  for (const item of raw?.split(',').filter(Boolean) ?? []) {
    const [kind, value] = item.split('=');
    if (!(FLOAT_KINDS as readonly string[]).includes(kind))
      throw new UsageError(`--tol: expected KIND=REL with KIND one of ${FLOAT_KINDS.join(', ')}, got '${item}'`);
    const tolerance = Number(value);
    if (value === undefined || value.trim() === '' || !(tolerance >= 0))
      throw new UsageError(`--tol: expected a non-negative relative tolerance for ${kind}, got '${item}'`);
    tolerances[kind as TensorKind] = tolerance;
  }
  return tolerances;
}

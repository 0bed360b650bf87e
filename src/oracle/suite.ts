import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TraceFormatError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { loadModelFolder } from '../model/folder.js';
import type { ViTModel } from '../model/types.js';
import { ViTRunner } from '../model/vit.js';
import { readBundle } from './bundle.js';
import { checkBundles, type CheckOptions, type CheckReport } from './check.js';
import { describeJson } from './json-fields.js';
import { recordTrace, requestFromBundle } from './trace.js';

/**
 * The conformance suite (fixtures/conformance, made by `npm run conformance`): tiny random models
 * and, for each model × input × method setting, a trace bundle from reference64. `suite.json`
 * indexes them; folders are relative to the suite's folder. Read from disk (Node only).
 */

export const SUITE_FORMAT = 'vitprune-conformance';
export const SUITE_VERSION = 1;
export const SUITE_FILE = 'suite.json';

export interface SuiteModel {
  dir: string; // model folder: config.json + model.safetensors (+ preprocessor_config.json)
  layout: 'timm' | 'transformers';
  description: string;
}

export interface SuiteCase {
  name: string; // <model>.<input>.<method>[-<setting>]
  dir: string; // the expected bundle
  model: string; // key of `models`
  input: string; // the input's name (the tensor itself is the bundle's "input")
  method: string; // 'dense' or a method name
  setting: number | null; // 1 or 2; null for dense and for tie cases
  ties: boolean; // bit-identical tokens put a tie on a decision boundary: tests the tie-break rule
}

export interface SuiteIndex {
  format: typeof SUITE_FORMAT;
  version: number;
  generator: string;
  models: Record<string, SuiteModel>;
  cases: SuiteCase[];
}

/** Read `dir/suite.json`, checking format, version and that every folder it names exists. */
export function readSuite(dir: string): SuiteIndex {
  const file = path.join(dir, SUITE_FILE);
  if (!existsSync(file)) throw new TraceFormatError(`${file}: expected the conformance suite's index, not found (run npm run conformance)`);
  const suite = JSON.parse(readFileSync(file, 'utf8')) as SuiteIndex;
  if (suite.format !== SUITE_FORMAT || suite.version !== SUITE_VERSION) {
    throw new TraceFormatError(
      `${file}: expected format "${SUITE_FORMAT}" version ${SUITE_VERSION}, found ${describeJson(suite.format)} version ${describeJson(suite.version)}`,
    );
  }
  for (const c of suite.cases) {
    if (!suite.models[c.model]) throw new TraceFormatError(`${file}: case "${c.name}" names model "${c.model}", which "models" does not list`);
    for (const folder of [c.dir, suite.models[c.model].dir]) {
      if (!existsSync(path.join(dir, folder))) throw new TraceFormatError(`${file}: case "${c.name}": folder ${folder} not found`);
    }
  }
  return suite;
}

export interface CaseResult {
  suiteCase: SuiteCase;
  model: ViTModel;
  report: CheckReport;
}

/** Run every case of the suite in `dir` on `kernels` and check it against its expected bundle. */
export function checkSuite(dir: string, kernels: Kernels, options: CheckOptions = {}): CaseResult[] {
  const suite = readSuite(dir);
  const runners = new Map<string, { model: ViTModel; runner: ViTRunner }>();
  return suite.cases.map((suiteCase) => {
    if (!runners.has(suiteCase.model)) {
      const model = loadModelFolder(path.join(dir, suite.models[suiteCase.model].dir));
      runners.set(suiteCase.model, { model, runner: new ViTRunner(model, kernels) });
    }
    const { model, runner } = runners.get(suiteCase.model)!;
    const expected = readBundle(path.join(dir, suiteCase.dir));
    const actual = recordTrace(runner, model, {
      ...requestFromBundle(expected, suiteCase.dir),
      modelSource: expected.manifest.model?.source ?? suiteCase.model,
    });
    return { suiteCase, model, report: checkBundles(expected, actual, { ...options, expectedLabel: suiteCase.dir, actualLabel: kernels.name }) };
  });
}

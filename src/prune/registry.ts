import { UsageError } from '../errors.js';
import { autoMethod } from './auto.js';
import type { ViTConfig } from '../model/types.js';
import { evit, topk } from './evit.js';
import { ltp } from './ltp.js';
import { mctf } from './mctf.js';
import { pitome } from './pitome.js';
import { ppt } from './ppt.js';
import type { PlanContext, PruneRequest, PruningPlan, TokenMethod } from './method.js';
import { randomDrop } from './random.js';
import { tome } from './tome.js';
import { zeroTPrune } from './zero-tprune.js';

/**
 * Every token-pruning method, in the order commands list them. The CLI's --method, eval,
 * compare, tune, visualize and the library's `prune` option all read this list: adding a method
 * is its file (defineMethod, method.ts) and one line here.
 */
export const TOKEN_METHODS: readonly TokenMethod[] = [
  zeroTPrune,
  tome,
  mctf,
  ppt,
  pitome,
  evit,
  topk,
  ltp,
  randomDrop,
  autoMethod((name) => tokenMethod(name)),
];

/** The method named `name`; UsageError listing the methods otherwise. */
export function tokenMethod(name: string): TokenMethod {
  const method = TOKEN_METHODS.find((m) => m.name === name);
  if (!method) throw new UsageError(`unknown token-pruning method '${name}': expected one of ${TOKEN_METHODS.map((m) => m.name).join(', ')}`);
  return method;
}

/** The plan of `request.method` for a model of config `cfg` (TokenMethod.plan). */
export async function planPruning(cfg: ViTConfig, request: PruneRequest & { method: string }, context?: PlanContext): Promise<PruningPlan> {
  return tokenMethod(request.method).plan(cfg, request, context);
}

import { ScheduleError, UsageError } from '../errors.js';
import { denseGmacs, modelGmacs, type BlockTokens } from '../model/gmacs.js';
import type { ViTConfig } from '../model/types.js';
import { exactTailHooks, exactTailSaving, withExactTail } from './exact-tail.js';
import { settingsObject, type PlanContext, type PruningPlan, type TokenMethod } from './method.js';

/**
 * `auto`: the best training-free reduction we measured for the requested budget, as a
 * documented per-budget choice among the registry's methods (docs/methods.md), plus the exact
 * tail (exact-tail.ts: the patch tokens go before the last MLP, which changes no logit). A budget
 * picks the method of the first band whose lower edge it reaches; the plan is that method's plan
 * for the budget it and the tail reach together, reported as {"method": …, "settings": …,
 * "exactTail": true} so that it runs again from JSON.
 *
 * The bands were decided on the even half of the 500 dev images (DeiT-Tiny and ViT-Tiny at
 * budgets 0.87, 0.78, 0.70, 0.65, 0.62) among the methods that need no
 * calibration images (LTP does, so `--budget` alone cannot run it): docs/methods.md.
 */
export interface AutoBand {
  readonly from: number; // budgets ≥ from (and below the previous band's edge)
  readonly method: string; // a registry name
  readonly fixed?: (cfg: ViTConfig) => unknown; // settings the method's budget solver keeps (PruneRequest.fixed)
}

/**
 * MCTF's fusing blocks under `auto`: from the 4th block to the one before the last (0-indexed
 * 3 … depth − 2; fewer on models of under 6 blocks, the paper's every-block-but-the-first under 3).
 * Fusing in blocks 2 and 3 costs more agreement than the tokens it saves are worth there, and
 * with the exact tail a fusion in the last block saves only its projection.
 */
export function autoMctfLayers(depth: number): number[] | null {
  const first = Math.min(3, depth - 2);
  return first >= 1 ? Array.from({ length: depth - 1 - first }, (_, i) => first + i) : null;
}

/**
 * Highest budgets first; the last band reaches 0. Even half (agreement / KL, both with the
 * tail): MCTF on blocks 3 … 10 (0-indexed) has a lower KL than PPT at 0.78 and below on both
 * models (DeiT-Tiny 0.78: 0.984 / 0.0026 against 0.980 / 0.0045); at 0.87 on DeiT-Tiny it agrees
 * on three images fewer (0.980 / 0.0005 against 0.992 / 0.0012), so PPT keeps the budgets from
 * halfway between 0.78 and 0.87. Tables: docs/methods.md, "Since then: MCTF from the 4th block".
 */
export const AUTO_BANDS: readonly AutoBand[] = [
  { from: 0.82, method: 'ppt' },
  { from: 0, method: 'mctf', fixed: (cfg) => ({ layers: autoMctfLayers(cfg.depth) }) },
];

/** The band `auto` runs at `budget` (a fraction of dense GMACs). */
export function autoBandFor(budget: number): AutoBand {
  return AUTO_BANDS.find((band) => budget >= band.from)!;
}

/**
 * `plan` (of the method `name`) with the exact tail (exact-tail.ts): the patch tokens go before the
 * last MLP, which changes no logit; reported as {"method", "settings", "exactTail": true}.
 */
function withTail(cfg: ViTConfig, name: string, plan: PruningPlan & { tokens: readonly BlockTokens[] }): PruningPlan {
  const tokens = withExactTail(cfg, plan.tokens);
  return {
    ...plan,
    method: 'auto',
    settings: { method: name, settings: plan.settings, exactTail: true },
    tokens,
    gmacs: modelGmacs(cfg, tokens),
    hooks: (i) => exactTailHooks(plan.hooks(i), cfg.depth),
    stagedHooks: (i, onStage) =>
      exactTailHooks(plan.stagedHooks(i, onStage), cfg.depth, (removed) => onStage({ after: cfg.depth, hook: 'attention', stage: 'exact tail', removed })),
  };
}

/** `plan` as auto's, without the exact tail. */
function plain(name: string, plan: PruningPlan): PruningPlan {
  return { ...plan, method: 'auto', settings: { method: name, settings: plan.settings } };
}

/**
 * `method` planned so that it and the exact tail together cost `budget` (within 1 %): the method
 * at a higher budget, raised by what the tail saves (a few rounds, the saving depending on the
 * tokens the method leaves). Without the tail where its counts depend on the image, or where
 * even the dense model with the tail costs less than the budget allows (above ≈ 0.96 × dense).
 */
async function planWithTail(cfg: ViTConfig, name: string, method: TokenMethod, budget: number, fixed: unknown, context?: PlanContext): Promise<PruningPlan> {
  const dense = denseGmacs(cfg);
  /** The fraction of dense GMACs a plan of `gmacs` with these token counts costs with the tail. */
  const withTailFraction = (gmacs: number, tokens: readonly BlockTokens[]) => (gmacs - exactTailSaving(cfg, tokens) / 1e9) / dense;
  const planAt = (b: number) => method.plan(cfg, { budget: b, fixed }, context);
  const first = await planAt(budget);
  let plan = first;
  let best: { plan: PruningPlan & { tokens: readonly BlockTokens[] }; miss: number } | null = null;
  let target = budget;
  for (let round = 0; round < 4 && plan.tokens; round++) {
    const tokens = plan.tokens;
    const total = withTailFraction(plan.gmacs!, tokens);
    const miss = Math.abs(total / budget - 1);
    if (miss <= 0.01 && (!best || miss < best.miss)) best = { plan: { ...plan, tokens }, miss };
    const next = Math.min(1, target + budget - total);
    if (next === target) break;
    target = next;
    try {
      plan = await planAt(target);
    } catch (error) {
      if (error instanceof ScheduleError) break; // a budget its knob cannot reach within 1 %
      throw error;
    }
  }
  if (!best && first.tokens && target < 1) {
    // the knob could not follow: the method at its dense end (nothing removed) with the tail alone
    const whole = await planAt(1);
    if (whole.tokens && Math.abs(withTailFraction(whole.gmacs!, whole.tokens) / budget - 1) <= 0.01)
      best = { plan: { ...whole, tokens: whole.tokens }, miss: 0 };
  }
  return best ? withTail(cfg, name, best.plan) : plain(name, first);
}

/**
 * `auto` over the methods `lookup` finds (the registry; given, not imported, so that the
 * registry can list `auto` beside the methods it chooses from).
 */
export function autoMethod(lookup: (name: string) => TokenMethod): TokenMethod {
  return {
    name: 'auto',
    summary: `the best method we measured for the budget: ${AUTO_BANDS.map((b, i) => `${b.method} ${i === 0 ? `from ${b.from}` : `below ${AUTO_BANDS[i - 1].from}`}`).join(', ')} × dense GMACs, with the patch tokens dropped before the last MLP, which changes no logit (docs/methods.md)`,
    removal: 'merged',
    counts: 'fixed',
    takesKeep: false,
    takesSettings: true,
    tunable: false,
    options: [],
    async plan(cfg, request, context) {
      if (request.options && Object.values(request.options).some((v) => v !== undefined)) {
        throw new UsageError(`method auto takes no options (it chooses the method and its defaults); found ${Object.keys(request.options).join(', ')}`);
      }
      if (request.budget !== undefined && request.keep === undefined && request.settings === undefined) {
        if (!(request.budget > 0 && request.budget <= 1))
          throw new UsageError(`method auto: expected a budget in (0, 1] of the dense model's GMACs, found ${request.budget}`);
        const band = autoBandFor(request.budget);
        return planWithTail(cfg, band.method, lookup(band.method), request.budget, band.fixed?.(cfg), context);
      }
      if (request.settings !== undefined && request.budget === undefined && request.keep === undefined) {
        const source = request.settingsSource ?? 'settings';
        const { method, settings, exactTail } = settingsObject(request.settings, ['method', 'settings', 'exactTail'], source);
        if (typeof method !== 'string' || method === 'auto')
          throw new UsageError(`${source}: expected "method", the name of the method auto chose, found ${JSON.stringify(method)}`);
        if (!(exactTail === undefined || typeof exactTail === 'boolean'))
          throw new UsageError(`${source}: expected "exactTail", true or false, found ${JSON.stringify(exactTail)}`);
        const plan = await lookup(method).plan(cfg, { settings, settingsSource: source }, context);
        if (!exactTail) return plain(method, plan);
        if (!plan.tokens) throw new UsageError(`${source}: "exactTail" needs a method whose token counts are fixed; ${method}'s depend on the image`);
        return withTail(cfg, method, { ...plan, tokens: plan.tokens });
      }
      throw new UsageError('method auto: expected exactly one of budget, settings');
    },
  };
}

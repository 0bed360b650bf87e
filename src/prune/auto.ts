import { UsageError } from '../errors.js';
import type { ViTConfig } from '../model/types.js';
import { settingsObject, type PlanContext, type PruneRequest, type PruningPlan, type TokenMethod } from './method.js';

/**
 * `auto`: the best training-free reduction we measured for the requested budget, as a
 * documented per-budget choice among the registry's methods (docs/methods.md). A budget picks
 * the method of the first band whose lower edge it reaches; the plan is that method's plan for
 * the same budget, reported as {"method": …, "settings": …} so that it runs again from JSON.
 *
 * The bands were decided on the even half of the 500 dev images (DeiT-Tiny at budgets 0.95,
 * 0.87, 0.78, 0.70, 0.65, 0.62; ViT-Tiny at 0.87, 0.70, 0.65) among the methods that need no
 * calibration images (LTP does, so `--budget` alone cannot run it): docs/methods.md.
 */
export interface AutoBand {
  readonly from: number; // budgets ≥ from (and below the previous band's edge)
  readonly method: string; // a registry name
}

/**
 * Highest budgets first; the last band reaches 0. Even half (agreement / KL): PPT wins on
 * DeiT-Tiny at 0.95, 0.87, 0.78 (0.980 / 0.0065 against MCTF 0.976 / 0.0101), MCTF at 0.65 and
 * 0.62 on DeiT-Tiny and at 0.70 and 0.65 on ViT-Tiny. At 0.70 the models disagree: DeiT-Tiny PPT
 * 0.952 / 0.016 against MCTF 0.948 / 0.021, ViT-Tiny MCTF 0.976 / 0.021 against PPT 0.960 / 0.036;
 * MCTF loses less where it loses, so the edge lies halfway between 0.70 and 0.78.
 */
export const AUTO_BANDS: readonly AutoBand[] = [
  { from: 0.74, method: 'ppt' },
  { from: 0, method: 'mctf' },
];

/** The method `auto` runs at `budget` (a fraction of dense GMACs). */
export function autoMethodFor(budget: number): string {
  return AUTO_BANDS.find((band) => budget >= band.from)!.method;
}

/**
 * `auto` over the methods `lookup` finds (the registry; given, not imported, so that the
 * registry can list `auto` beside the methods it chooses from).
 */
export function autoMethod(lookup: (name: string) => TokenMethod): TokenMethod {
  const delegate = async (cfg: ViTConfig, name: string, request: PruneRequest, context?: PlanContext): Promise<PruningPlan> => {
    const plan = await lookup(name).plan(cfg, request, context);
    return { ...plan, method: 'auto', settings: { method: name, settings: plan.settings } };
  };
  return {
    name: 'auto',
    summary: `the best method we measured for the budget: ${AUTO_BANDS.map((b, i) => `${b.method} ${i === 0 ? `from ${b.from}` : `below ${AUTO_BANDS[i - 1].from}`}`).join(', ')} × dense GMACs (docs/methods.md)`,
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
        return delegate(cfg, autoMethodFor(request.budget), { budget: request.budget }, context);
      }
      if (request.settings !== undefined && request.budget === undefined && request.keep === undefined) {
        const source = request.settingsSource ?? 'settings';
        const { method, settings } = settingsObject(request.settings, ['method', 'settings'], source);
        if (typeof method !== 'string' || method === 'auto')
          throw new UsageError(`${source}: expected "method", the name of the method auto chose, found ${JSON.stringify(method)}`);
        return delegate(cfg, method, { settings, settingsSource: source }, context);
      }
      throw new UsageError('method auto: expected exactly one of budget, settings');
    },
  };
}

import { ScheduleError, UsageError } from '../errors.js';
import type { BlockTokens } from '../model/gmacs.js';
import { denseGmacs, modelGmacs } from '../model/gmacs.js';
import type { ForwardHooks } from '../model/hooks.js';
import type { ViTConfig } from '../model/types.js';
import type { ViTRunner } from '../model/vit.js';
import { solveBudget, type BudgetKnob } from './budget.js';
import { reductionStages, type RemovalStage } from './removal-stages.js';

/**
 * The shape every token-pruning method has. A method is one file that defines itself with
 * `defineMethod` (how it turns a budget, a keep ratio or its own JSON settings into settings;
 * its hooks; its token counts; its JSON description), registered by one line in registry.ts.
 * Every caller (the CLI's commands, eval, compare, tune, visualize, the library's `prune`
 * option) plans through `TokenMethod.plan`, and every budget is solved by budget.ts.
 */

/** How a method's removed tokens are drawn: gone, merged into others (ToMe), fused into one token (EViT). */
export type Removal = 'dropped' | 'merged' | 'fused';

/** Whether token counts follow from the settings alone, or depend on the image (thresholds). */
export type TokenCounts = 'fixed' | 'per-image';

/** Which settings a caller asks for: exactly one of budget, keep, settings. */
export interface PruneRequest {
  budget?: number; // GMACs as a fraction of the dense model's
  keep?: number; // keep ratio ρ in (0, 1], for methods that have one
  settings?: unknown; // the method's settings as JSON (a schedule or thresholds file's contents; ToMe: {"r": …})
  settingsSource?: string; // where `settings` came from, for messages (a file name); default "settings"
  options?: Readonly<Record<string, unknown>>; // the method's options by name (zero-tprune: ablation; random: seed)
  fixed?: unknown; // with budget: settings the solver keeps while it turns its knobs, as JSON (MCTF: {"layers": […]}; MethodSpec.fixable)
}

/** Runs every calibration image (unlabelled) with `hooks` and resolves to the mean GMACs per image. */
export type CalibrationRun = (hooks: ForwardHooks) => Promise<number>;

/** A CalibrationRun of `runner` over preprocessed inputs ([C, S, S] each). */
export function calibrationRun(runner: ViTRunner, inputs: readonly Float32Array[]): CalibrationRun {
  if (inputs.length === 0) throw new UsageError('calibration: expected at least one input image, found none');
  return async (hooks) => {
    let sum = 0;
    for (const input of inputs) sum += runner.forward(input, hooks).gmacs;
    return sum / inputs.length;
  };
}

/** What planning may use besides the model's config. */
export interface PlanContext {
  calibration?: CalibrationRun; // per-image methods reach a budget by measuring on calibration images
}

/** A method's settings, ready to run. */
export interface PruningPlan {
  readonly method: string;
  readonly removal: Removal;
  /** The settings as JSON (what eval --json and compare report as "schedule"). */
  readonly settings: unknown;
  /** GMACs per image: exact for fixed token counts; per-image methods: the calibration images' mean, null when not measured. */
  readonly gmacs: number | null;
  /** The executed token counts per block, for methods whose counts are fixed (null: they depend on the image). */
  readonly tokens: readonly BlockTokens[] | null;
  /** Hooks for the image with this index in a run (random drop draws per image). */
  hooks(imageIndex: number): ForwardHooks;
  /** The same run reporting each removal stage: the method's own stages, or every reduction as one. */
  stagedHooks(imageIndex: number, onStage: (stage: RemovalStage) => void): ForwardHooks;
}

/** The value of a method's option. */
export type OptionValue = string | number | boolean;

/** An option of a method: a CLI flag of the same name; a switch on by default is turned off by --no-NAME. */
export interface MethodOption {
  readonly name: string;
  readonly help: string;
  readonly values: readonly string[] | 'integer' | 'number' | 'boolean'; // the choices, any integer, any finite number, or a switch
  readonly default: OptionValue;
}

/** A token-pruning method, as the registry lists it. */
export interface TokenMethod {
  readonly name: string;
  readonly summary: string; // one line: what it does, where its settings come from
  readonly removal: Removal;
  readonly counts: TokenCounts;
  readonly takesKeep: boolean; // has a keep ratio
  readonly takesSettings: boolean; // reads its own JSON settings
  readonly tunable: boolean; // its settings are a post-block schedule that `vitprune tune` searches
  readonly options: readonly MethodOption[];
  /** The plan for `request` on a model of config `cfg`. Throws UsageError (request) or ScheduleError (settings). */
  plan(cfg: ViTConfig, request: PruneRequest, context?: PlanContext): Promise<PruningPlan>;
}

/** What a method file writes; `defineMethod` makes the TokenMethod. S: its settings, O: its options. */
export interface MethodSpec<S, O extends Record<string, OptionValue>> {
  name: string;
  summary: string;
  removal: Removal;
  counts: TokenCounts;
  tunable?: boolean;
  /** The options and their defaults. */
  options?: { readonly [K in keyof O]: Omit<MethodOption, 'name'> & { default: O[K] } };
  /** Settings for a keep ratio ρ in (0, 1]. */
  keepRatio?(cfg: ViTConfig, rho: number, options: O): S;
  /** Settings from the method's JSON; errors name `source` (ScheduleError). */
  fromJson?(cfg: ViTConfig, json: unknown, options: O, source: string): S;
  /** The settings a budget request may fix (PruneRequest.fixed); the knobs keep them. */
  fixable?: readonly (keyof S & string)[];
  /** The knobs the budget solver turns, coarse first (budget.ts), keeping the `fixed` settings. */
  knobs(cfg: ViTConfig, options: O, context: PlanContext, fixed: Partial<S>): BudgetKnob<S>[];
  /** Token counts per block as executed (methods whose counts are fixed). */
  tokens?(cfg: ViTConfig, settings: S, options: O): BlockTokens[];
  /** Hooks per image; called once per plan, so state (scratch buffers) can be shared by the run. */
  hooks(settings: S, options: O): (imageIndex: number) => ForwardHooks;
  /** Hooks that also report the method's own removal stages (without: every reduction is one stage). */
  stagedHooks?(settings: S, options: O, onStage: (stage: RemovalStage) => void): (imageIndex: number) => ForwardHooks;
  /** The settings (and options) as JSON. */
  describe(settings: S, options: O): unknown;
}

const TARGETS = ['budget', 'keep', 'settings'] as const;

export function defineMethod<S, O extends Record<string, OptionValue> = Record<never, never>>(spec: MethodSpec<S, O>): TokenMethod {
  const options: MethodOption[] = Object.entries(spec.options ?? {}).map(([name, o]) => ({ name, ...(o as Omit<MethodOption, 'name'>) }));
  const takes = ['budget', ...(spec.keepRatio ? ['keep'] : []), ...(spec.fromJson ? ['settings'] : [])];

  /** The request's options checked against the method's, defaults filled in. */
  const resolveOptions = (given: Readonly<Record<string, unknown>> = {}): O => {
    const resolved: Record<string, OptionValue> = {};
    for (const key of Object.keys(given)) {
      if (given[key] !== undefined && !options.some((o) => o.name === key)) {
        const known = options.length ? `its options are ${options.map((o) => o.name).join(', ')}` : 'it has no options';
        throw new UsageError(`method ${spec.name}: unknown option '${key}' (${known})`);
      }
    }
    for (const o of options) {
      const value = given[o.name] ?? o.default;
      const ok =
        o.values === 'integer'
          ? Number.isInteger(value)
          : o.values === 'number'
            ? Number.isFinite(value)
            : o.values === 'boolean'
              ? typeof value === 'boolean'
              : (o.values as readonly unknown[]).includes(value);
      if (!ok) {
        const expected =
          o.values === 'integer'
            ? 'an integer'
            : o.values === 'number'
              ? 'a finite number'
              : o.values === 'boolean'
                ? 'true or false'
                : `one of ${o.values.join(', ')}`;
        throw new UsageError(`method ${spec.name}: option '${o.name}' expects ${expected}, found ${JSON.stringify(value)}`);
      }
      resolved[o.name] = value as OptionValue;
    }
    return resolved as O;
  };

  return {
    name: spec.name,
    summary: spec.summary,
    removal: spec.removal,
    counts: spec.counts,
    takesKeep: spec.keepRatio !== undefined,
    takesSettings: spec.fromJson !== undefined,
    tunable: spec.tunable ?? false,
    options,

    async plan(cfg, request, context = {}) {
      if (request.fixed !== undefined && request.budget === undefined) throw new UsageError(`method ${spec.name}: fixed settings go with a budget only`);
      const given = TARGETS.filter((k) => request[k] !== undefined);
      if (given.length !== 1) {
        throw new UsageError(`method ${spec.name}: expected exactly one of ${takes.join(', ')}; found ${given.length ? given.join(', ') : 'none'}`);
      }
      const { settings: settingsJson, options: recorded } = splitOptions(request.settings, options);
      const o = resolveOptions({ ...recorded, ...request.options });
      const dense = denseGmacs(cfg);
      let settings: S;
      let measured: number | null = null;
      if (request.budget !== undefined) {
        const budget = request.budget;
        const fixed = fixedSettings<S>(spec.name, spec.fixable ?? [], request.fixed);
        if (!(budget > 0 && budget <= 1)) {
          throw new UsageError(`method ${spec.name}: expected a budget in (0, 1] of the dense model's ${dense.toFixed(4)} GMACs, found ${budget}`);
        }
        const solution = await solveBudget(dense, budget, spec.knobs(cfg, o, context, fixed));
        settings = solution.settings;
        measured = solution.gmacs;
      } else if (request.keep !== undefined) {
        if (!spec.keepRatio) throw new UsageError(`method ${spec.name} has no keep ratio: it takes ${takes.join(' or ')}`);
        if (!(request.keep > 0 && request.keep <= 1)) throw new UsageError(`method ${spec.name}: expected a keep ratio in (0, 1], found ${request.keep}`);
        settings = spec.keepRatio(cfg, request.keep, o);
      } else {
        if (!spec.fromJson) throw new UsageError(`method ${spec.name} has no settings of its own to read: it takes ${takes.join(' or ')}`);
        settings = spec.fromJson(cfg, settingsJson, o, request.settingsSource ?? 'settings');
      }
      const tokens = spec.tokens ? spec.tokens(cfg, settings, o) : null;
      const gmacs = tokens ? modelGmacs(cfg, tokens) : measured;
      const hooks = spec.hooks(settings, o);
      const staged = spec.stagedHooks;
      return {
        method: spec.name,
        removal: spec.removal,
        settings: spec.describe(settings, o),
        gmacs,
        tokens,
        hooks,
        stagedHooks: (imageIndex, onStage) => (staged ? staged(settings, o, onStage)(imageIndex) : reductionStages(hooks(imageIndex), onStage)),
      };
    },
  };
}

/** `json` ({} when undefined) checked to hold only the `fixable` settings of method `name`. */
function fixedSettings<S>(name: string, fixable: readonly string[], json: unknown): Partial<S> {
  if (json === undefined) return {};
  if (!fixable.length) throw new UsageError(`method ${name}: a budget cannot fix any of its settings`);
  return settingsObject(json, fixable, `method ${name}'s fixed settings`) as Partial<S>;
}

/**
 * A settings document may record the method's options beside its settings, as `describe` writes
 * them (zero-tprune: {"steps": …, "ablation": …}): they are taken out as options.
 */
function splitOptions(json: unknown, options: readonly MethodOption[]): { settings: unknown; options: Record<string, unknown> } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { settings: json, options: {} };
  const settings: Record<string, unknown> = {};
  const recorded: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    if (options.some((o) => o.name === key)) recorded[key] = value;
    else settings[key] = value;
  }
  return { settings, options: recorded };
}

/** Checks a settings document is a JSON object with only `keys`; ScheduleError naming `source` otherwise. */
export function settingsObject(json: unknown, keys: readonly string[], source: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ScheduleError(`${source}: expected an object with ${keys.map((k) => `"${k}"`).join(', ')}, found ${JSON.stringify(json)?.slice(0, 80)}`);
  }
  for (const key of Object.keys(json)) {
    if (!keys.includes(key)) throw new ScheduleError(`${source}: unexpected key "${key}" (expected ${keys.map((k) => `"${k}"`).join(', ')})`);
  }
  return json as Record<string, unknown>;
}

/** Runs `check` (a method's own validation), its ScheduleError messages prefixed with `source` (the settings' file or flag). */
export function checkedSettings<T>(source: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof ScheduleError) throw new ScheduleError(`${source}: ${err.message}`);
    throw err;
  }
}

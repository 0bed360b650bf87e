/**
 * Adam (Kingma & Ba, 2015) on a vector of parameters, in place:
 *
 *   m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²
 *   p ← p − α·m̂/(√v̂ + ε),   m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)
 *
 * Each parameter moves by at most about α per step, whatever its gradient's scale.
 */
export interface AdamOptions {
  learningRate: number; // α
  beta1?: number; // 0.9
  beta2?: number; // 0.999
  epsilon?: number; // 1e-8
}

/** What a checkpoint keeps of an Adam optimiser: its step count and moment estimates. */
export interface AdamState {
  steps: number;
  m: number[]; // [size]
  v: number[]; // [size]
}

export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private steps = 0;

  constructor(
    size: number,
    private readonly options: AdamOptions,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** One step on params [size] down the gradient grads [size]. */
  step(params: Float64Array, grads: ArrayLike<number>): void {
    const { learningRate, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = this.options;
    this.steps++;
    const correction1 = 1 - beta1 ** this.steps;
    const correction2 = 1 - beta2 ** this.steps;
    for (let i = 0; i < params.length; i++) {
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * grads[i];
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * grads[i] * grads[i];
      params[i] -= (learningRate * (this.m[i] / correction1)) / (Math.sqrt(this.v[i] / correction2) + epsilon);
    }
  }

  snapshot(): AdamState {
    return { steps: this.steps, m: Array.from(this.m), v: Array.from(this.v) };
  }

  /** Continue from a snapshot of an optimiser of the same size. */
  restore(state: AdamState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      throw new RangeError(`adam: expected a state of ${this.m.length} parameters, got ${state.m.length} and ${state.v.length} moments`);
    }
    this.m.set(state.m);
    this.v.set(state.v);
    this.steps = state.steps;
  }
}

import type { ChannelGates } from '../grad/channel-gates.js';
import type { ProjCorrection } from '../grad/reweight-proj.js';
import type { SoftGradients } from '../grad/soft-vit.js';
import type { BlockWidths, ViTConfig } from '../model/types.js';

/**
 * The parameters learned channel pruning trains (channels-learn.ts), as flat vectors Adam steps
 * whole, with per-block views, and the chain rule from the soft model's gradients to them.
 * Block b, heads H, widths qk = d and v (heads of one block share the layout):
 *
 *   φ [H·d] then [H·v]   gate logits: g = σ(φ/τ) while learning; 0/1 from a selection after
 *   ψ [H]                logit scales a_h = e^ψ_h: head h's query gates are a_h·g
 *   U [D, r], V [H·v, r], Δb [D]    the proj correction (grad/reweight-proj.ts), when reweighting
 *
 * Chain rule, from ∂L/∂g_eff (g_eff = a_h·g for queries, g for values):
 *
 *   ∂L/∂φ_c = ∂L/∂g_eff·a_h·g(1 − g)/τ        ∂L/∂ψ_h = Σ_{c ∈ h} ∂L/∂g_eff,c·g_eff,c
 */

/** Where one block's parameters sit in the flat vectors. */
export interface BlockLayout {
  qk: { offset: number; length: number }; // in φ
  v: { offset: number; length: number }; // in φ
  up: number; // offsets of U, V, Δb in the proj vector
  down: number;
  bias: number;
}

/** The kept channels: per block and head, width′ channel indices (ascending); `active` false marks padding. */
export interface LearnedSelection {
  widths: BlockWidths[];
  qk: Int32Array[][]; // [block][head]
  v: Int32Array[][];
  qkActive: boolean[][][]; // [block][head][i] whether qk[block][head][i] is kept (false: padding)
  vActive: boolean[][][];
}

/** Gradients with the parameters' shapes. */
export interface ParameterGradients {
  phi: Float64Array;
  psi: Float64Array;
  proj: Float64Array;
}

export class LearnedChannelParameters {
  readonly layouts: BlockLayout[] = [];
  readonly phi: Float64Array; // gate logits, all blocks
  readonly psi: Float64Array; // [depth·H] log logit scales
  readonly proj: Float64Array; // (U, V, Δb) per block; empty without reweighting
  readonly corrections: (ProjCorrection | null)[]; // views into proj
  private readonly cfg: ViTConfig;

  constructor(
    cfg: ViTConfig,
    readonly rank: number,
    readonly reweight: boolean,
  ) {
    const { heads: H, qkDim: d, vDim: dv, dim: D, depth } = cfg;
    this.cfg = cfg;
    const r = rank;
    let gateLength = 0;
    let projLength = 0;
    for (let b = 0; b < depth; b++) {
      this.layouts.push({
        qk: { offset: gateLength, length: H * d },
        v: { offset: gateLength + H * d, length: H * dv },
        up: projLength,
        down: projLength + D * r,
        bias: projLength + D * r + H * dv * r,
      });
      gateLength += H * (d + dv);
      projLength += D * r + H * dv * r + D;
    }
    this.phi = new Float64Array(gateLength);
    this.psi = new Float64Array(depth * H);
    this.proj = new Float64Array(reweight ? projLength : 0);
    this.corrections = this.layouts.map((l) =>
      reweight
        ? {
            rank: r,
            up: this.proj.subarray(l.up, l.up + D * r),
            down: this.proj.subarray(l.down, l.down + H * dv * r),
            bias: this.proj.subarray(l.bias, l.bias + D),
          }
        : null,
    );
  }

  zeroGradients(): ParameterGradients {
    return { phi: new Float64Array(this.phi.length), psi: new Float64Array(this.psi.length), proj: new Float64Array(this.proj.length) };
  }

  /** a_h per block and head. */
  logitScales(): number[][] {
    const H = this.cfg.heads;
    return this.layouts.map((_, b) => Array.from(this.psi.subarray(b * H, (b + 1) * H), Math.exp));
  }

  /** The gates of every block: soft σ(φ/τ), or hard (1 kept, 0 removed) from `selection`; query gates × a_h. */
  gates(tau: number | null, selection: LearnedSelection | null): ChannelGates[] {
    const { heads: H, qkDim: d, vDim: dv } = this.cfg;
    return this.layouts.map((l, b) => {
      const qk = new Float64Array(H * d);
      const v = new Float64Array(H * dv);
      if (selection) {
        markKept(selection.qk[b], selection.qkActive[b], d, qk);
        markKept(selection.v[b], selection.vActive[b], dv, v);
      } else if (tau !== null) {
        for (let i = 0; i < qk.length; i++) qk[i] = sigmoid(this.phi[l.qk.offset + i] / tau);
        for (let i = 0; i < v.length; i++) v[i] = sigmoid(this.phi[l.v.offset + i] / tau);
      } else {
        throw new RangeError('learned channel gates: expected a temperature or a selection, got neither');
      }
      for (let h = 0; h < H; h++) for (let c = 0; c < d; c++) qk[h * d + c] *= Math.exp(this.psi[b * H + h]);
      return { qk, v };
    });
  }

  /**
   * Adds the gradients of one soft backward (`grads`, of a forward with `gates` = this.gates(τ, …))
   * to `into`; φ's only when the gates were soft (τ given).
   */
  addGradients(gates: readonly ChannelGates[], tau: number | null, grads: SoftGradients, into: ParameterGradients): void {
    const { heads: H, qkDim: d, vDim: dv } = this.cfg;
    this.layouts.forEach((l, b) => {
      const dGates = grads.gates[b]!;
      const qk = gates[b].qk!;
      for (let h = 0; h < H; h++) {
        const a = Math.exp(this.psi[b * H + h]);
        for (let c = 0; c < d; c++) {
          const j = h * d + c;
          into.psi[b * H + h] += dGates.qk![j] * qk[j];
          if (tau !== null) into.phi[l.qk.offset + j] += sigmoidSlope(qk[j] / a, tau) * a * dGates.qk![j];
        }
      }
      if (tau !== null) for (let j = 0; j < H * dv; j++) into.phi[l.v.offset + j] += sigmoidSlope(gates[b].v![j], tau) * dGates.v![j];
      const dCorrection = grads.proj[b];
      if (dCorrection) {
        addTo(into.proj.subarray(l.up, l.down), dCorrection.up);
        addTo(into.proj.subarray(l.down, l.bias), dCorrection.down);
        addTo(into.proj.subarray(l.bias, l.bias + dCorrection.bias.length), dCorrection.bias);
      }
    });
  }
}

/** gates[h·width + c] = 1 for the kept (active) channels of each head, 0 elsewhere. */
function markKept(channels: Int32Array[], active: boolean[][], width: number, gates: Float64Array): void {
  channels.forEach((idx, h) => {
    idx.forEach((c, i) => {
      if (active[h][i]) gates[h * width + c] = 1;
    });
  });
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** dg/dφ of g = σ(φ/τ), from g: g·(1 − g)/τ. */
function sigmoidSlope(g: number, tau: number): number {
  return (g * (1 - g)) / tau;
}

/** a += b (a view into a gradient vector). */
function addTo(a: Float64Array, b: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

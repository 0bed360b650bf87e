import type { Tensor } from './types.js';

/**
 * Soft channel gates of one block's attention (issue 17): per head and channel, a factor on the
 * queries (so q and k share it: the logit loses g_c·q_c·k_c) and a factor on the values.
 *
 *   Q′[i, h·qk + c] = g_qk[h·qk + c] · Q[i, h·qk + c]      K′ = K
 *   V′[i, h·v + c]  = g_v[h·v + c]  · V[i, h·v + c]
 *
 * A gate of 0 removes the channel exactly as channel pruning does (the logit, resp. the output,
 * no longer sees it); 1 keeps it. Gradients, from ∂L/∂qkv′:
 *
 *   ∂L/∂g_c = Σ_i qkv[i, c]·∂L/∂qkv′[i, c],    ∂L/∂qkv[i, c] = g_c·∂L/∂qkv′[i, c]
 *
 * A per-head logit scale a_h (the logits of head h times a_h) is the same as all of head h's
 * query gates times a_h, so its gradient at a_h = 1 is Σ_{c ∈ head h} g_c·∂L/∂g_c.
 */
export interface ChannelGates {
  qk: Float64Array | null; // [H·qkDim] gates of the query (and key) channels, null = all 1
  v: Float64Array | null; // [H·vDim] gates of the value channels, null = all 1
}

/** Columns of a qkv row [2H·qk + H·v] that the gates scale: queries at 0…, values at 2H·qk…. */
function gatedSpans(heads: number, qkDim: number, gates: ChannelGates): { offset: number; gate: Float64Array }[] {
  const spans: { offset: number; gate: Float64Array }[] = [];
  if (gates.qk) spans.push({ offset: 0, gate: gates.qk });
  if (gates.v) spans.push({ offset: 2 * heads * qkDim, gate: gates.v });
  return spans;
}

/** gated [n, width] = qkv with its query and value columns scaled by the gates. */
export function gateForward(qkv: Tensor, n: number, heads: number, qkDim: number, vDim: number, gates: ChannelGates, gated: Tensor): void {
  const width = 2 * heads * qkDim + heads * vDim;
  gated.set(qkv.subarray(0, n * width));
  for (const { offset, gate } of gatedSpans(heads, qkDim, gates)) {
    for (let i = 0; i < n; i++) {
      const row = i * width + offset;
      for (let c = 0; c < gate.length; c++) gated[row + c] *= gate[c];
    }
  }
}

/**
 * In place: dqkv [n, width] from ∂L/∂gated to ∂L/∂qkv; the gates' gradients are added to
 * dGates (same shapes as the gates).
 */
export function gateBackward(
  qkv: Tensor,
  n: number,
  heads: number,
  qkDim: number,
  vDim: number,
  gates: ChannelGates,
  dqkv: Tensor,
  dGates: ChannelGates,
): void {
  const width = 2 * heads * qkDim + heads * vDim;
  const dSpans = gatedSpans(heads, qkDim, dGates);
  gatedSpans(heads, qkDim, gates).forEach(({ offset, gate }, s) => {
    const dGate = dSpans[s].gate;
    for (let i = 0; i < n; i++) {
      const row = i * width + offset;
      for (let c = 0; c < gate.length; c++) {
        dGate[c] += qkv[row + c] * dqkv[row + c];
        dqkv[row + c] *= gate[c];
      }
    }
  });
}

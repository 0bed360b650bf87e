import { choleskySolve, withRidge } from './channels-linalg.js';

/**
 * Channel selection by greedy backward elimination of a least-squares reconstruction error
 * (Optimal Brain Surgeon applied to the input channels of a linear map). The reweightings refit
 * what a removed channel did from the channels that stay, so what a channel costs is not its own
 * size but the part of it the others cannot predict. With Σ = Σ_rows x xᵀ the Gram of the inputs,
 * C [m, o] the least-squares coefficients of the outputs on the current inputs and P = Σ⁻¹ on
 * them, removing input c and refitting the rest adds to the output error
 *     cost_c = C_cᵀ·M·C_c / P_cc                  (M [o, o]: the metric of the output error)
 * and leaves C ← C − P_:c·C_c / P_cc, P ← P − P_:c·P_c: / P_cc (the classic OBS updates).
 *
 * Equal proportion: channels belong to groups (heads) that each lose `remove` channels, in
 * rounds; in every round the groups remove one channel each, cheapest first.
 *
 *  - q/k of one head: inputs = centred keys (the logit error is Σ (q·k − (A·q)·k′)², A the query
 *    refit), C = I (every key predicts itself), M = Σ q qᵀ: cost = logit variance lost.
 *  - v of one block: inputs = [z, 1], the head outputs and the bias input of proj (never removed),
 *    C = [W_projᵀ; bᵀ], M = I: cost = output error of the proj refit.
 */
export function eliminateChannels(
  gram: Float64Array,
  m: number,
  coefficients: Float64Array,
  outputs: number,
  metric: Float64Array | null,
  groups: Int32Array[],
  remove: number,
  ridge: number,
): Int32Array[] {
  const P = inverseSpd(gram, m, ridge);
  const C = Float64Array.from(coefficients);
  const alive = groups.map((g) => new Set(g));
  const cost = (c: number): number => {
    let sum = 0;
    if (metric) {
      for (let i = 0; i < outputs; i++) {
        const ci = C[c * outputs + i];
        if (ci === 0) continue;
        let row = 0;
        for (let j = 0; j < outputs; j++) row += metric[i * outputs + j] * C[c * outputs + j];
        sum += ci * row;
      }
    } else {
      for (let i = 0; i < outputs; i++) sum += C[c * outputs + i] ** 2;
    }
    return sum / P[c * m + c];
  };
  const eliminate = (c: number): void => {
    const pcc = P[c * m + c];
    const pc = P.slice(c * m, (c + 1) * m); // row c = column c (symmetric)
    const cc = C.slice(c * outputs, (c + 1) * outputs);
    for (let i = 0; i < m; i++) {
      const f = pc[i] / pcc;
      if (f === 0) continue;
      for (let j = 0; j < outputs; j++) C[i * outputs + j] -= f * cc[j];
      for (let j = 0; j < m; j++) P[i * m + j] -= f * pc[j];
    }
  };
  for (let round = 0; round < remove; round++) {
    const pending = new Set(groups.map((_, g) => g));
    while (pending.size > 0) {
      let best = { group: -1, channel: -1, cost: Infinity };
      for (const g of pending) {
        for (const c of alive[g]) {
          const x = cost(c);
          if (x < best.cost || (x === best.cost && c < best.channel) || best.group < 0) best = { group: g, channel: c, cost: x };
        }
      }
      eliminate(best.channel);
      alive[best.group].delete(best.channel);
      pending.delete(best.group);
    }
  }
  return alive.map((s) => Int32Array.from(s).sort());
}

/** (Σ + λI)⁻¹ with λ = ridge · mean diagonal. */
function inverseSpd(gram: Float64Array, m: number, ridge: number): Float64Array {
  const a = withRidge(gram, m, ridge);
  const identity = new Float64Array(m * m);
  for (let i = 0; i < m; i++) identity[i * m + i] = 1;
  return choleskySolve(a, m, identity, m);
}

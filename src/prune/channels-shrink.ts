import type { BlockWidths, Linear, ViTConfig } from '../model/types.js';

/**
 * Physically smaller attention weights (docs/algorithms.md §5.3, step 6): the kept rows of the fused
 * qkv projection and the kept input columns of the output projection. Head h keeps channels
 * qk[h] of its Q and K rows (the same indices, so q′·k′ pairs the same channels) and v[h] of its V
 * rows; the new layout is the usual one with per-head widths qk′ = |qk[h]|, v′ = |v[h]|.
 */

/**
 * qkv [2H·qk + H·v, D] → [2H·qk′ + H·v′, D]. The Q rows (and bias) of head h become
 * qScale[h]·M_h·Q_h, with M_h = queryMaps[h] [qk′, qk] (null: the row selection of qk[h]). That
 * folds a logit scale and a query refit into the weights, so the runtime needs no change. keyMaps
 * and valueMaps [width′, width] likewise replace the K and V row selections by linear maps.
 */
export function shrinkQkv(
  cfg: ViTConfig,
  qkv: Linear,
  qk: Int32Array[],
  v: Int32Array[],
  qScale: ArrayLike<number>,
  queryMaps: (Float64Array | null)[] | null = null,
  valueMaps: Float64Array[] | null = null,
  keyMaps: Float64Array[] | null = null,
): Linear {
  const { heads: H, qkDim: d, vDim: dv } = cfg;
  const D = qkv.inFeatures;
  const keep = qk[0].length;
  const rows = 2 * H * keep + H * v[0].length;
  const weight = new Float32Array(rows * D);
  const bias = new Float32Array(rows);
  let r = 0;
  const copyRow = (source: number) => {
    weight.set(qkv.weight.subarray(source * D, (source + 1) * D), r * D);
    bias[r++] = qkv.bias[source];
  };
  // row r = scale · Σ_c map[i, c] · row (first + c)
  const mappedRow = (first: number, width: number, map: Float64Array | null, i: number, kept: Int32Array, scale: number) => {
    const w = new Float64Array(D);
    let b = 0;
    for (let c = 0; c < width; c++) {
      const m = map ? map[i * width + c] : c === kept[i] ? 1 : 0;
      if (m === 0) continue;
      const src = (first + c) * D;
      for (let j = 0; j < D; j++) w[j] += m * qkv.weight[src + j];
      b += m * qkv.bias[first + c];
    }
    for (let j = 0; j < D; j++) weight[r * D + j] = scale * w[j];
    bias[r++] = scale * b;
  };
  for (let h = 0; h < H; h++) for (let i = 0; i < keep; i++) mappedRow(h * d, d, queryMaps?.[h] ?? null, i, qk[h], qScale[h]);
  if (keyMaps) for (let h = 0; h < H; h++) for (let i = 0; i < keep; i++) mappedRow(H * d + h * d, d, keyMaps[h], i, qk[h], 1);
  else for (let h = 0; h < H; h++) for (const c of qk[h]) copyRow(H * d + h * d + c); // K
  if (valueMaps) for (let h = 0; h < H; h++) for (let i = 0; i < v[h].length; i++) mappedRow(2 * H * d + h * dv, dv, valueMaps[h], i, v[h], 1);
  else for (let h = 0; h < H; h++) for (const c of v[h]) copyRow(2 * H * d + h * dv + c); // V
  return { weight, bias, outFeatures: rows, inFeatures: D };
}

/** proj [D, H·v] → [D, H·v′]: the input columns of the kept v channels, head by head. */
export function shrinkProj(cfg: ViTConfig, proj: Linear, v: Int32Array[]): Linear {
  const { heads: H, vDim: dv } = cfg;
  const columns: number[] = [];
  for (let h = 0; h < H; h++) for (const c of v[h]) columns.push(h * dv + c);
  const D = proj.outFeatures;
  const k = columns.length;
  const weight = new Float32Array(D * k);
  for (let o = 0; o < D; o++) for (let i = 0; i < k; i++) weight[o * k + i] = proj.weight[o * proj.inFeatures + columns[i]];
  return { weight, bias: Float32Array.from(proj.bias), outFeatures: D, inFeatures: k };
}

/**
 * The config of the pruned model: the same except the per-head widths of every block; when
 * blocks differ, blockWidths lists them and qkDim, vDim are the largest.
 */
export function shrinkConfig(cfg: ViTConfig, widths: BlockWidths[]): ViTConfig {
  const qkDim = Math.max(...widths.map((w) => w.qkDim));
  const vDim = Math.max(...widths.map((w) => w.vDim));
  const uniform = widths.every((w) => w.qkDim === qkDim && w.vDim === vDim);
  const { blockWidths: _, ...rest } = cfg;
  return uniform ? { ...rest, qkDim, vDim } : { ...rest, qkDim, vDim, blockWidths: widths };
}

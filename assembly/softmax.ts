import { expF32x4, laneMask, loadFirstLanes, storeFirstLanes } from './vector';

// @ts-ignore: decorator
@inline
function horizontalMax(v: v128): f32 {
  const m = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

// @ts-ignore: decorator
@inline
function horizontalSum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** row[j] ← exp(row[j] − max) / Σ exp(row[·] − max) for j < cols (row: byte address). */
export function softmaxRow(row: usize, cols: i32): void {
  const vectorEnd = row + (<usize>(cols & ~3) << 2);
  const rest = cols & 3;
  let p = row;

  let maxV = f32x4.splat(-Infinity);
  for (; p < vectorEnd; p += 16) maxV = f32x4.pmax(maxV, v128.load(p));
  let max = horizontalMax(maxV);
  for (let j = 0; j < rest; j++) max = Mathf.max(max, load<f32>(p + (<usize>j << 2)));
  const maxSplat = f32x4.splat(max);

  let sumV = f32x4.splat(0);
  for (p = row; p < vectorEnd; p += 16) {
    const e = expF32x4(f32x4.sub(v128.load(p), maxSplat));
    v128.store(p, e);
    sumV = f32x4.add(sumV, e);
  }
  if (rest) {
    const e = v128.and(expF32x4(f32x4.sub(loadFirstLanes(p, rest), maxSplat)), laneMask(rest));
    storeFirstLanes(p, e, rest);
    sumV = f32x4.add(sumV, e);
  }

  const inverse = f32x4.splat(<f32>1.0 / horizontalSum(sumV));
  for (p = row; p < vectorEnd; p += 16) v128.store(p, f32x4.mul(v128.load(p), inverse));
  if (rest) storeFirstLanes(p, f32x4.mul(loadFirstLanes(p, rest), inverse), rest);
}

/** Row-wise softmax of x[rows, cols] in place (x: byte address). */
export function f32_softmax_rows_wasmsimd(x: usize, rows: i32, cols: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++, x += rowBytes) softmaxRow(x, cols);
}

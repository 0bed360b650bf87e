/**
 * Rankings by a score, descending, ties by index ascending: what `(p, q) => v[q] − v[p] || p − q`
 * sorts, without a comparator closure (Array.prototype.sort calls one per comparison, ≈ 30 ns:
 * 50 µs for 200 tokens, a pruning layer's whole budget). A merge sort: insertion-sorted runs of
 * eight, merged bottom-up. The order is total for scores without NaN, so any correct sort gives
 * these same indices (the wasm kernel i32_rank_descending included).
 */

let spare = new Int32Array(256);

/** Whether index a ranks before index b: a larger score, or the same score and a lower index. */
function before(values: ArrayLike<number>, a: number, b: number): boolean {
  const va = values[a];
  const vb = values[b];
  return va > vb || (va === vb && a < b);
}

/** indices[0..count) sorted in place by values[index] descending, ties by index ascending (values without NaN). */
export function rankDescending(values: ArrayLike<number>, indices: Int32Array, count: number): void {
  for (let start = 0; start < count; start += 8) {
    const end = Math.min(start + 8, count);
    for (let i = start + 1; i < end; i++) {
      const x = indices[i];
      let j = i - 1;
      for (; j >= start && before(values, x, indices[j]); j--) indices[j + 1] = indices[j];
      indices[j + 1] = x;
    }
  }
  if (count <= 8) return;
  if (spare.length < count) spare = new Int32Array(count);
  let from: Int32Array = indices;
  let to: Int32Array = spare;
  for (let width = 8; width < count; width *= 2) {
    for (let lo = 0; lo < count; lo += 2 * width) {
      const mid = Math.min(lo + width, count);
      const hi = Math.min(lo + 2 * width, count);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) to[k++] = before(values, from[j], from[i]) ? from[j++] : from[i++];
      while (i < mid) to[k++] = from[i++];
      while (j < hi) to[k++] = from[j++];
    }
    const swap = from;
    from = to;
    to = swap;
  }
  if (from !== indices) indices.set(from.subarray(0, count));
}

/** What ranks: this module's rankDescending, or a kernel set's with the same order (merge-kernels.ts, on the wasm backend's buffers). */
export interface Ranker {
  rankDescending(values: ArrayLike<number>, indices: Int32Array, count: number): void;
}

const THIS_MODULE: Ranker = { rankDescending };

/**
 * The indices first…end − 1 ranked by values (rankDescending), written to the start of `into`
 * (default: a new array) by `ranker`; returns that view.
 */
export function rankedRange(
  values: ArrayLike<number>,
  first: number,
  end: number,
  into: Int32Array = new Int32Array(Math.max(0, end - first)),
  ranker: Ranker = THIS_MODULE,
): Int32Array {
  const count = Math.max(0, end - first);
  for (let k = 0; k < count; k++) into[k] = first + k;
  ranker.rankDescending(values, into, count);
  return into.subarray(0, count);
}

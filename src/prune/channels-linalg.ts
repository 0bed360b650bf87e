/** Small dense linear algebra in float64 for the channel-pruning fits (matrices row-major). */

/** Solve A·X = B for symmetric positive definite A [m, m] and B [m, cols] (Cholesky, A = L·Lᵀ). */
export function choleskySolve(a: Float64Array, m: number, b: Float64Array, cols: number): Float64Array {
  const L = choleskyFactor(a, m);
  const x = Float64Array.from(b);
  // L·Y = B (forward), then Lᵀ·X = Y (backward), all columns at once.
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < i; t++) {
      const l = L[i * m + t];
      for (let c = 0; c < cols; c++) x[i * cols + c] -= l * x[t * cols + c];
    }
    for (let c = 0; c < cols; c++) x[i * cols + c] /= L[i * m + i];
  }
  return solveLowerTransposed(L, m, x, cols);
}

/**
 * Eigen-decomposition of a symmetric matrix A [m, m] by cyclic Jacobi rotations:
 * A = V·diag(values)·Vᵀ, eigenvalues in descending order, vectors[k·m + i] = component i of the k-th vector.
 */
export function symmetricEigen(a: Float64Array, m: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(m * m); // columns = eigenvectors while rotating
  for (let i = 0; i < m; i++) V[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        total += A[i * m + j] ** 2;
        if (i !== j) off += A[i * m + j] ** 2;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < m - 1; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = A[p * m + q];
        if (apq === 0) continue;
        // the rotation that zeroes A[p, q]: tan(2θ) = 2·A_pq / (A_qq − A_pp)
        const theta = (A[q * m + q] - A[p * m + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = A[k * m + p];
          const akq = A[k * m + q];
          A[k * m + p] = c * akp - s * akq;
          A[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = A[p * m + k];
          const aqk = A[q * m + k];
          A[p * m + k] = c * apk - s * aqk;
          A[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = V[k * m + p];
          const vkq = V[k * m + q];
          V[k * m + p] = c * vkp - s * vkq;
          V[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => A[j * m + j] - A[i * m + i] || i - j);
  const values = Float64Array.from(order, (i) => A[i * m + i]);
  const vectors = new Float64Array(m * m);
  order.forEach((col, k) => {
    for (let i = 0; i < m; i++) vectors[k * m + i] = V[i * m + col];
  });
  return { values, vectors };
}

/** The lower-triangular Cholesky factor L of a symmetric positive definite A [m, m] (A = L·Lᵀ). */
export function choleskyFactor(a: Float64Array, m: number): Float64Array {
  const L = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * m + j];
      for (let t = 0; t < j; t++) sum -= L[i * m + t] * L[j * m + t];
      if (i === j) {
        if (!(sum > 0)) throw new RangeError(`cholesky: matrix is not positive definite (pivot ${i} = ${sum})`);
        L[i * m + i] = Math.sqrt(sum);
      } else {
        L[i * m + j] = sum / L[j * m + j];
      }
    }
  }
  return L;
}

/** Solve Lᵀ·X = B for lower-triangular L [m, m] and B [m, cols]. */
export function solveLowerTransposed(L: Float64Array, m: number, b: Float64Array, cols: number): Float64Array {
  const x = Float64Array.from(b);
  for (let i = m - 1; i >= 0; i--) {
    for (let t = i + 1; t < m; t++) {
      const l = L[t * m + i];
      for (let c = 0; c < cols; c++) x[i * cols + c] -= l * x[t * cols + c];
    }
    for (let c = 0; c < cols; c++) x[i * cols + c] /= L[i * m + i];
  }
  return x;
}

/**
 * The ridge λ of every channel-pruning fit: ridge × the mean of the first m diagonal entries of
 * the square matrix a [size, size], at least 1e-12.
 */
export function ridgeLambda(a: Float64Array, size: number, m: number, ridge: number): number {
  let trace = 0;
  for (let i = 0; i < m; i++) trace += a[i * size + i];
  return Math.max(ridge * (trace / m), 1e-12);
}

/** A copy of the symmetric a [m, m] with ridgeLambda(a) added to its diagonal. */
export function withRidge(a: Float64Array, m: number, ridge: number): Float64Array {
  const lambda = ridgeLambda(a, m, m, ridge);
  const out = Float64Array.from(a);
  for (let i = 0; i < m; i++) out[i * m + i] += lambda;
  return out;
}

/** Subtract the column means of x [n, d] in place. */
export function centreColumns(x: Float64Array, n: number, d: number): void {
  for (let c = 0; c < d; c++) {
    let mean = 0;
    for (let t = 0; t < n; t++) mean += x[t * d + c];
    mean /= n;
    for (let t = 0; t < n; t++) x[t * d + c] -= mean;
  }
}

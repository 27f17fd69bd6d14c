/**
 * Small dense linear algebra for balancing methods: Gramians over long
 * float32 vectors (float64 accumulation), combinations, and T×T solvers.
 * Pure functions over typed arrays, no allocation in inner loops.
 */

/** <a, b> accumulated in float64, 4-way unrolled. */
export function dot(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  if (b.length !== n) throw new Error(`dot: length mismatch ${n} vs ${b.length}`);
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[i]! * b[i]!;
    s1 += a[i + 1]! * b[i + 1]!;
    s2 += a[i + 2]! * b[i + 2]!;
    s3 += a[i + 3]! * b[i + 3]!;
  }
  for (; i < n; i++) s0 += a[i]! * b[i]!;
  return s0 + s1 + s2 + s3;
}

/** T×T Gramian G_ij = <g_i, g_j>, row-major Float64Array (T(T+1)/2 dot products). */
export function gramian(grads: readonly Float32Array[]): Float64Array {
  const T = grads.length;
  const G = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = i; j < T; j++) {
      const v = dot(grads[i]!, grads[j]!);
      G[i * T + j] = v;
      G[j * T + i] = v;
    }
  }
  return G;
}

/** out = Σ_i c[i] * g_i, written into `out` (allocated if absent). Skips zero coefficients. */
export function combine(grads: readonly Float32Array[], c: ArrayLike<number>, out?: Float32Array): Float32Array {
  const T = grads.length;
  const d = T > 0 ? grads[0]!.length : 0;
  const o = out ?? new Float32Array(d);
  if (o.length !== d) throw new Error(`combine: output length ${o.length} != ${d}`);
  o.fill(0);
  for (let i = 0; i < T; i++) {
    const ci = c[i]!;
    if (ci === 0) continue;
    const g = grads[i]!;
    for (let k = 0; k < d; k++) o[k]! += ci * g[k]!;
  }
  return o;
}

/** Norms from a Gramian's diagonal. */
export function normsFromGram(G: Float64Array, T: number): Float64Array {
  const n = new Float64Array(T);
  for (let i = 0; i < T; i++) n[i] = Math.sqrt(Math.max(0, G[i * T + i]!));
  return n;
}

/**
 * Solve A x = b for a symmetric positive (semi-)definite k×k A (row-major) by
 * Cholesky. If A is singular or ill-conditioned (a pivot ≤ rel*max diag), retry
 * with Tikhonov ridge λ = rel*trace/k growing ×10 until it factors: the result is
 * then the minimum-norm-like regularised solution. Never returns NaN for finite input;
 * an all-zero A gives x = 0.
 */
export function solveSPD(A: Float64Array, b: Float64Array, k: number, rel = 1e-10): { x: Float64Array; ridge: number } {
  let trace = 0;
  let maxDiag = 0;
  for (let i = 0; i < k; i++) {
    trace += A[i * k + i]!;
    maxDiag = Math.max(maxDiag, Math.abs(A[i * k + i]!));
  }
  if (!(maxDiag > 0) || !Number.isFinite(maxDiag)) return { x: new Float64Array(k), ridge: 0 };
  let ridge = 0;
  const L = new Float64Array(k * k);
  for (let attempt = 0; attempt < 40; attempt++) {
    if (choleskyInto(A, k, ridge, L, rel * maxDiag)) {
      const x = new Float64Array(k);
      // forward: L y = b
      for (let i = 0; i < k; i++) {
        let s = b[i]!;
        for (let j = 0; j < i; j++) s -= L[i * k + j]! * x[j]!;
        x[i] = s / L[i * k + i]!;
      }
      // backward: Lᵀ x = y
      for (let i = k - 1; i >= 0; i--) {
        let s = x[i]!;
        for (let j = i + 1; j < k; j++) s -= L[j * k + i]! * x[j]!;
        x[i] = s / L[i * k + i]!;
      }
      return { x, ridge };
    }
    ridge = ridge === 0 ? Math.max(rel * (trace / k), 1e-300) : ridge * 10;
  }
  return { x: new Float64Array(k), ridge };
}

function choleskyInto(A: Float64Array, k: number, ridge: number, L: Float64Array, minPivot: number): boolean {
  L.fill(0);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * k + j]! + (i === j ? ridge : 0);
      for (let p = 0; p < j; p++) s -= L[i * k + p]! * L[j * k + p]!;
      if (i === j) {
        if (!(s > minPivot)) return false;
        L[i * k + i] = Math.sqrt(s);
      } else {
        L[i * k + j] = s / L[j * k + j]!;
      }
    }
  }
  return true;
}

/**
 * Symmetric eigendecomposition by cyclic Jacobi rotations (k small, ≤ ~32).
 * Returns eigenvalues (descending) and eigenvectors as columns of V (row-major k×k).
 */
export function symEig(A: Float64Array, k: number, maxSweeps = 100): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const V = new Float64Array(k * k);
  for (let i = 0; i < k; i++) V[i * k + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += a[p * k + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = a[p * k + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * k + p]!;
        const aqq = a[q * k + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = a[r * k + p]!;
          const arq = a[r * k + q]!;
          a[r * k + p] = c * arp - s * arq;
          a[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = a[p * k + r]!;
          const aqr = a[q * k + r]!;
          a[p * k + r] = c * apr - s * aqr;
          a[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const vrp = V[r * k + p]!;
          const vrq = V[r * k + q]!;
          V[r * k + p] = c * vrp - s * vrq;
          V[r * k + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  const order = Array.from({ length: k }, (_, i) => i).sort((i, j) => a[j * k + j]! - a[i * k + i]!);
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  order.forEach((src, dst) => {
    values[dst] = a[src * k + src]!;
    for (let r = 0; r < k; r++) vectors[r * k + dst] = V[r * k + src]!;
  });
  return { values, vectors };
}

/** Euclidean projection of v onto the probability simplex (Duchi et al. 2008), in place-safe copy. */
export function projectSimplex(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const u = Array.from(v as ArrayLike<number>).sort((a, b) => b - a);
  let css = 0;
  let theta = 0;
  for (let i = 0; i < n; i++) {
    css += u[i]!;
    const t = (css - 1) / (i + 1);
    if (u[i]! - t > 0) theta = t;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.max(0, v[i]! - theta);
  return out;
}

/** Standard diagnostics (norms, cosines, conflicting pairs) from a Gramian. */
export function diagnosticsFromGram(G: Float64Array, T: number): { norms: Float64Array; cosines: Float64Array; conflicts: number } {
  const norms = normsFromGram(G, T);
  const cosines = new Float64Array(T * T);
  let conflicts = 0;
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const den = norms[i]! * norms[j]!;
      cosines[i * T + j] = den > 0 ? G[i * T + j]! / den : 0;
      if (j > i && G[i * T + j]! < 0) conflicts++;
    }
  }
  return { norms, cosines, conflicts };
}

/**
 * x = A⁺ b for a symmetric k×k A (row-major, possibly indefinite or singular): the
 * minimum-norm least-squares solution, from the eigendecomposition (symEig), keeping the
 * eigenpairs with |λ| > relTol · max|λ|. An all-zero A gives x = 0. Also returns the
 * number of eigenpairs kept (the numerical rank).
 */
export function pinvSymSolve(A: Float64Array, b: ArrayLike<number>, k: number, relTol: number): { x: Float64Array; rank: number } {
  const { values, vectors } = symEig(A, k);
  let maxAbs = 0;
  for (let i = 0; i < k; i++) maxAbs = Math.max(maxAbs, Math.abs(values[i]!));
  const x = new Float64Array(k);
  let rank = 0;
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) return { x, rank };
  const cut = relTol * maxAbs;
  for (let e = 0; e < k; e++) {
    const lam = values[e]!;
    if (!(Math.abs(lam) > cut)) continue;
    rank++;
    let vb = 0;
    for (let i = 0; i < k; i++) vb += vectors[i * k + e]! * b[i]!;
    const f = vb / lam;
    for (let i = 0; i < k; i++) x[i] = x[i]! + f * vectors[i * k + e]!;
  }
  return { x, rank };
}

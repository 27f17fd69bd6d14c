#!/usr/bin/env python3
"""Generate the float64 fixtures of the Gramian methods FairGrad, UPGrad, ConFIG and PE-LTR
under test/fixtures/balance/gram-methods.json.

Each case is a small gradient matrix J (T rows, d columns, float32-representable values), its
Gramian G = J J^T, and for every method the expected coefficients c (direction = J^T c) and the
expected direction itself, computed here in float64 from the *published rule* with numpy/scipy,
independently of the TypeScript code:

- FairGrad (Ban & Ji, ICML 2024): G w = w^(-1/alpha) solved with scipy.optimize.least_squares
  on the raw Gramian, bounds (0, inf), start 1/T, exactly as the reference (OptMN-Lab/fairgrad,
  LibMTL) but with tight tolerances; then the direction is clipped to maxNorm (the reference's
  clip_grad_norm_). Zero-gradient tasks are left out of the solve (coefficient 0), and the
  library's ridge (G + 1e-8 * diag(G)) is applied, as the TypeScript code documents;
  for non-degenerate cases the unregularised reference solve is also recorded ("reference").
- UPGrad (Quinton & Rey, 2024; TorchJD UPGradWeighting): A = G / tr(G) + reg_eps I; for each i,
  v_i = argmin v^T A v s.t. v >= e_i / T, solved as a non-negative least-squares problem
  (scipy.optimize.nnls on a square-root factor of A) and cross-checked with scipy SLSQP; the
  weights are sum_i v_i. Also computed with TorchJD's defaults (norm_eps = reg_eps = 1e-4).
- ConFIG (Liu, Chu, Thuerey, ICLR 2025; official tum-pbs/ConFIG): u_i = g_i/|g_i| (0 for a zero
  gradient), b = lstsq(U, 1) (minimum-norm least squares), g_u = b/|b|,
  direction = (sum_i g_i . g_u) g_u, computed on the explicit vectors.
- PE-LTR (Lin et al., RecSys 2019; TorchEasyRec ParetoEfficientMultiTaskLoss): the relaxed
  analytic solution hat_w = pinv(M) z with M = [[G, 1], [1^T, 0]], z = [-G c; 1 - sum c], then
  the Euclidean projection onto {x >= 0, sum x = 1 - sum c} (scipy SLSQP from the nnls start,
  as TorchEasyRec, with tight tolerances; cross-checked with a sort-based closed form), w = x + c.

Run with `python3 scripts/gen-gram-method-fixtures.py` (numpy and scipy needed). CI does not run
this: the tests only read the committed JSON.
"""
import json
import os

import numpy as np
from scipy.optimize import least_squares, minimize, nnls, root

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "balance", "gram-methods.json")
F32_EPS = 2.0 ** -23
FAIRGRAD_RIDGE = 1e-8


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


# ----------------------------------------------------------------------------- cases
def cases():
    rng = np.random.default_rng(20241208)
    out = []
    for T, d in [(2, 8), (3, 8), (6, 8), (3, 5), (6, 10)]:
        J = f32(rng.normal(size=(T, d)))
        out.append((f"random T={T} d={d}", J))
    # correlated tasks (all cosines positive and large), as recommendation tasks often are
    base = rng.normal(size=8)
    out.append(("correlated T=3", f32(base + 0.3 * rng.normal(size=(3, 8)))))
    # widely different norms
    J = f32(rng.normal(size=(3, 8)) * np.array([[1e-3], [1.0], [30.0]]))
    out.append(("norms 1e-3, 1, 30", J))
    # more tasks than dimensions: rank deficient
    out.append(("T=6 d=4 (rank 4)", f32(rng.normal(size=(6, 4)))))
    J = f32(rng.normal(size=(3, 6)))
    J[1] = 0
    out.append(("zero gradient", J))
    J = f32(rng.normal(size=(3, 6)))
    J[1] = J[0]
    out.append(("two identical gradients", J))
    g = f32(rng.normal(size=5))
    out.append(("opposed gradients", np.stack([g, -g])))
    J = f32(rng.normal(size=(3, 6)))
    J[1] = -J[0]
    J[2] = J[2] - (J[2] @ J[0]) / (J[0] @ J[0]) * J[0]
    J = f32(J)
    out.append(("opposed pair + third", J))
    return out


# ----------------------------------------------------------------------------- FairGrad
def fairgrad_ls(G, alpha, x0, tight=True):
    def objfn(x):
        return G @ x - np.power(1.0 / x, 1.0 / alpha)

    kw = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100000) if tight else {}
    return least_squares(objfn, x0, bounds=(0, np.inf), **kw).x


def fairgrad(J, alpha=1.0, max_norm=1.0):
    G = J @ J.T
    T = len(G)
    nrm2 = np.diag(G)
    active = np.where(nrm2 > 1e-24 * max(nrm2.max(), 0))[0] if nrm2.max() > 0 else np.array([], dtype=int)
    w = np.zeros(T)
    reference = None
    if len(active) > 0:
        Ga = G[np.ix_(active, active)]
        # the library's ridge: 1e-8 of each task's own squared norm on the diagonal
        Gr = Ga + FAIRGRAD_RIDGE * np.diag(np.diag(Ga))
        # the reference's start (1/T) and solver, with tight tolerances and enough evaluations to
        # reach the huge weights of a Pareto-stationary set (opposite gradients)
        x = fairgrad_ls(Gr, alpha, np.ones(len(active)) / len(active))
        # polish the least-squares root with scipy's hybrid Powell root finder
        pol = root(lambda y: Gr @ y - np.power(1.0 / y, 1.0 / alpha), x,
                   jac=lambda y: Gr + np.diag(np.power(y, -1.0 / alpha - 1.0) / alpha), method="hybr", options={"xtol": 1e-15})
        if pol.success and np.all(pol.x > 0):
            x = pol.x
        res = Gr @ x - np.power(1.0 / x, 1.0 / alpha)
        scale = np.abs(Gr) @ x + np.power(1.0 / x, 1.0 / alpha)  # the residual's cancellation scale
        assert np.max(np.abs(res) / scale) < 1e-12, ("fairgrad residual", res)
        w[active] = x
        if len(active) == T and np.linalg.matrix_rank(J, tol=1e-6 * np.linalg.norm(J)) == T:
            reference = fairgrad_ls(G, alpha, np.ones(T) / T, tight=False)  # exactly the reference call
            exact = fairgrad_ls(G, alpha, x, tight=True)  # the ridge-free root, tightly
            assert np.allclose(exact, x, rtol=1e-6), ("fairgrad ridge vs exact root", exact, x)
    norm = np.sqrt(max(w @ G @ w, 0.0))
    c = w * (max_norm / norm) if max_norm > 0 and norm > max_norm else w
    ref = None
    if reference is not None:
        rn = np.sqrt(reference @ G @ reference)
        ref = reference * (max_norm / rn) if max_norm > 0 and rn > max_norm else reference
    return c, ref


# ----------------------------------------------------------------------------- UPGrad
def sqrt_factor(A):
    lam, V = np.linalg.eigh(A)
    lam = np.clip(lam, 0, None)
    return (V * np.sqrt(lam)).T  # R with R^T R = A


def upgrad(J, reg_eps=0.0, norm_eps=0.0):
    G = J @ J.T
    T = len(G)
    tr = np.trace(G)
    A = np.zeros_like(G) if (tr <= norm_eps or tr == 0) else G / tr
    A = A + reg_eps * np.eye(T)
    R = sqrt_factor(A)
    W = np.zeros((T, T))
    for i in range(T):
        u = np.zeros(T)
        u[i] = 1.0 / T
        # v = u + x, x >= 0: min |R u + R x|^2  ->  nnls(R, -R u)
        x, _ = nnls(R, -R @ u, maxiter=1000)
        v = u + x
        # KKT check: A v >= 0 (up to rounding), complementarity on the free entries
        Av = A @ v
        scale = max(np.abs(A).max(), 1e-300) * max(np.abs(v).max(), 1e-300)
        assert np.all(Av >= -1e-9 * scale), ("upgrad KKT", Av)
        assert np.all(np.abs(Av * (v - u)) <= 1e-9 * scale * max(1, np.abs(v).max())), ("upgrad compl", Av, v - u)
        # cross-check with SLSQP (a different QP algorithm)
        # cross-check with SLSQP (a different QP algorithm), in units y = T v (y >= e_i)
        sl = minimize(lambda y: y @ A @ y, T * u + 0.1, jac=lambda y: 2 * A @ y, method="SLSQP",
                      bounds=[(T * ui, None) for ui in u], options={"ftol": 1e-15, "maxiter": 2000})
        y = sl.x / T
        assert y @ A @ y >= v @ A @ v - 1e-12, ("upgrad objective", y @ A @ y, v @ A @ v)
        if np.linalg.matrix_rank(A, tol=1e-8) == T:
            assert np.allclose(y, v, atol=1e-5), ("upgrad slsqp", y, v)
        W[i] = v
    return W.sum(axis=0)


# ----------------------------------------------------------------------------- ConFIG
def config(J):
    norms = np.linalg.norm(J, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        U = np.nan_to_num(J / norms[:, None], nan=0.0)
    U[norms == 0] = 0
    b = np.linalg.lstsq(U, np.ones(len(J)), rcond=1e-10)[0]
    nb = np.linalg.norm(b)
    if nb == 0:
        return np.zeros(J.shape[1])
    gu = b / nb
    return np.sum(J @ gu) * gu


# ----------------------------------------------------------------------------- PE-LTR
def simplex_projection(v, total):
    """Euclidean projection onto {x >= 0, sum x = total} (sort-based)."""
    n = len(v)
    if total == 0:
        return np.zeros(n)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - total
    ind = np.arange(1, n + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    theta = css[rho] / (rho + 1)
    return np.maximum(v - theta, 0)


def peltr(J, c):
    G = J @ J.T
    K = len(G)
    c = np.asarray(c, dtype=np.float64)
    e = np.ones((K, 1))
    M = np.block([[G, e], [e.T, np.zeros((1, 1))]])
    z = np.concatenate([-G @ c, [1 - c.sum()]])
    # the paper / TorchEasyRec: (M^T M)^{-1} M z; pinv(M) z is the same for an invertible M and
    # the minimum-norm least-squares solution otherwise
    hat_w = (np.linalg.pinv(M, rcond=1e-10) @ z)[:K]
    if np.linalg.cond(M) < 1e6:
        ref = (np.linalg.inv(M.T @ M) @ M @ z)[:K]
        assert np.allclose(ref, hat_w, rtol=1e-6, atol=1e-8), ("peltr relaxed", ref, hat_w)
    total = 1 - c.sum()
    x_closed = simplex_projection(hat_w, total)
    # TorchEasyRec's _asm: nnls start, SLSQP with sum constraint and x >= 0
    x0, _ = nnls(np.eye(K), hat_w)
    sl = minimize(lambda x: np.sum((x - hat_w) ** 2), x0, method="SLSQP", bounds=[(0, None)] * K,
                  constraints={"type": "eq", "fun": lambda x: np.sum(x) - total}, options={"ftol": 1e-16, "maxiter": 1000})
    assert np.allclose(sl.x, x_closed, atol=1e-6), ("peltr projection", sl.x, x_closed)
    return x_closed + c, hat_w


# ----------------------------------------------------------------------------- main
def rank_of(J):
    s = np.linalg.svd(J, compute_uv=False)
    return int(np.sum(s > 1e-9 * max(s.max(), 1e-300))) if s.size else 0


def coeffs_of(J, d):
    """Coefficients c with J^T c = d (least squares, minimum norm)."""
    return np.linalg.lstsq(J.T, d, rcond=None)[0]


def main():
    out = {"generator": "scripts/gen-gram-method-fixtures.py", "numpy": np.__version__, "cases": []}
    for name, J in cases():
        T = len(J)
        G = J @ J.T
        rank = rank_of(J)
        entry = {"name": name, "T": T, "rank": rank, "J": J.tolist(), "G": G.tolist(), "methods": {}}

        for alpha, max_norm in [(1.0, 1.0), (1.0, 0.0), (2.0, 0.0), (0.5, 0.0)]:
            c, ref = fairgrad(J, alpha, max_norm)
            key = f"fairgrad alpha={alpha} maxNorm={max_norm}"
            entry["methods"][key] = {
                "method": "fairgrad",
                "options": {"alpha": alpha, "maxNorm": max_norm},
                "coeffs": c.tolist(),
                "direction": (J.T @ c).tolist(),
                "reference": None if ref is None else ref.tolist(),
            }

        for opts in [{"regEps": 0.0, "normEps": 0.0}, {"regEps": 1e-4, "normEps": 1e-4}]:
            w = upgrad(J, opts["regEps"], opts["normEps"])
            entry["methods"][f"upgrad regEps={opts['regEps']}"] = {
                "method": "upgrad",
                "options": opts,
                "coeffs": w.tolist(),
                "direction": (J.T @ w).tolist(),
            }

        d = config(J)
        entry["methods"]["config"] = {"method": "config", "options": {}, "coeffs": coeffs_of(J, d).tolist(), "direction": d.tolist()}

        for c in [np.zeros(T), np.full(T, 0.1 / T) + np.linspace(0, 0.2, T) / T]:
            w, hat = peltr(J, c)
            entry["methods"][f"peltr c={np.round(c, 4).tolist()}"] = {
                "method": "peltr",
                "options": {"minWeights": c.tolist()},
                "coeffs": w.tolist(),
                "relaxed": hat.tolist(),
                "direction": (J.T @ w).tolist(),
            }
        out["cases"].append(entry)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {len(out['cases'])} cases to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()

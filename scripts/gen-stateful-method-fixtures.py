#!/usr/bin/env python3
"""Reference values for the stateful gradient methods ExcessMTL, MoCo and MetaBalance.

Each method's published update rule is written out here independently, in float64 numpy,
from the papers (not from src/balance/*.ts), and run over several steps of seeded float32
gradients. The fixtures are committed under test/fixtures/balance/, so the tests never need
Python. Regenerate with:

    python3 scripts/gen-stateful-method-fixtures.py

Papers:
- ExcessMTL: He et al., "Robust Multi-Task Learning with Excess Risks", ICML 2024.
- MoCo: Fernando et al., "Mitigating Gradient Bias in Multi-objective Learning: A Provably
  Convergent Approach", ICLR 2023 (Algorithm 1); variant "libmtl" = LibMTL's MoCo.
- MetaBalance: He et al., "MetaBalance: Improving Multi-Task Recommendations via Adapting
  Gradient Magnitudes of Auxiliary Tasks", WWW 2022 (Algorithm 2, per parameter tensor).

Conventions shared with the tests: a step's gradients are T float32 rows of length d; the
first `stableDim` entries are the same parameters every step (per-coordinate history is kept
over them only), the rest are this batch's embedding rows (the step's own values are used).
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "balance")


def f32rows(a):
    """float32 matrix -> list of lists of exactly representable floats."""
    return [[float(x) for x in row] for row in np.asarray(a, dtype=np.float32)]


def make_steps(seed, T, stable, tails, scales, drift):
    """Gradients per step: T rows of length stable + tails[k], float32, task norms ~ scales * drift**k."""
    rng = np.random.default_rng(seed)
    steps = []
    for k, tail in enumerate(tails):
        d = stable + tail
        g = rng.standard_normal((T, d)) * (np.asarray(scales) * np.asarray(drift) ** k)[:, None]
        # a shared component makes the tasks correlated (and sometimes conflicting)
        g += 0.5 * rng.standard_normal(d)[None, :] * np.sign(rng.standard_normal(T))[:, None]
        steps.append(np.asarray(g, dtype=np.float32))
    return steps


def make_losses(seed, T, n):
    rng = np.random.default_rng(seed)
    return [[float(x) for x in 0.2 + rng.random(T)] for _ in range(n)]


# ----------------------------------------------------------------------------- ExcessMTL


def excessmtl_run(steps, stable, eta, warmup):
    """Algorithm of the paper: AdaGrad diagonal H, E_i = g^T H^-1 g, baseline normalisation, EG step on the simplex."""
    T = steps[0].shape[0]
    S = np.zeros((T, stable))
    alpha = np.full(T, 1.0 / T)
    base = np.zeros(T)
    out = []
    for t, g32 in enumerate(steps, start=1):
        g = g32.astype(np.float64)
        gs = g[:, :stable]
        S = S + gs * gs
        E = np.sum(gs * gs / np.sqrt(S + 1e-7), axis=1)
        if t <= warmup:
            base = base + E
        else:
            b = base / warmup
            r = np.where(b > 0, E / np.where(b > 0, b, 1), 0.0)
            a = alpha * np.exp(eta * r)
            alpha = a / a.sum()
        out.append({"weights": alpha.tolist(), "direction": (alpha @ g).tolist(), "excess": E.tolist()})
    return out


def excessmtl_cases():
    cases = []
    steps = make_steps(11, 3, 6, [2, 0, 3, 1, 2, 4], [1.0, 0.3, 2.0], [0.7, 1.0, 1.1])
    for name, eta, warmup in [("first-step baseline", 0.5, 1), ("3-step warm-up", 2.0, 3)]:
        cases.append({
            "name": name, "options": {"robustStepSize": eta, "warmupSteps": warmup}, "stableDim": 6,
            "grads": [f32rows(s) for s in steps], "expected": excessmtl_run(steps, 6, eta, warmup),
        })
    whole = make_steps(12, 2, 5, [0] * 5, [1.0, 0.1], [0.8, 1.05])
    cases.append({
        "name": "whole vector (no stableDim)", "options": {"robustStepSize": 1.0, "warmupSteps": 1}, "stableDim": None,
        "grads": [f32rows(s) for s in whole], "expected": excessmtl_run(whole, 5, 1.0, 1),
    })
    return cases


# ----------------------------------------------------------------------------- MoCo


def proj_simplex(v):
    """Euclidean projection onto the probability simplex (sort-based, Held et al. / Duchi et al.)."""
    n = len(v)
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = max(j for j in range(n) if u[j] - (css[j] - 1) / (j + 1) > 0)
    theta = (css[rho] - 1) / (rho + 1)
    return np.maximum(v - theta, 0)


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def moco_run(steps, losses, stable, o):
    """Algorithm 1: y_i <- y_i - beta_k (y_i - h_i); lambda <- P(lambda - gamma_k (Y^T Y + rho I) lambda); d = sum lambda_i y_i."""
    T = steps[0].shape[0]
    y = np.zeros((T, stable))
    lam = np.full(T, 1.0 / T)
    out = []
    for k, g32 in enumerate(steps, start=1):
        g = g32.astype(np.float64)
        if o["normalize"] == "loss":
            h = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-8) * np.asarray(losses[k - 1])[:, None]
        else:
            h = g.copy()
        bk = o["beta"] / k ** o["betaSigma"]
        gk = o["gamma"] / k ** o["gammaSigma"]
        y = y - bk * (y - h[:, :stable])
        Y = np.concatenate([y, h[:, stable:]], axis=1)  # rows: this step's h (fixed point of the tracking)
        v = lam - gk * (Y @ Y.T + o["rho"] * np.eye(T)) @ lam
        lam = proj_simplex(v) if o["simplex"] == "projection" else softmax(v)
        out.append({"lambda": lam.tolist(), "direction": (lam @ Y).tolist()})
    return out


def moco_cases():
    base = {"beta": 0.5, "betaSigma": 0.5, "gamma": 0.1, "gammaSigma": 0.5, "rho": 0.0, "normalize": "none", "simplex": "projection"}
    steps = make_steps(21, 3, 5, [1, 3, 0, 2, 2, 1], [1.0, 2.5, 0.4], [1.0, 0.9, 1.0])
    losses = make_losses(22, 3, len(steps))
    cases = []
    for name, over in [
        ("paper defaults", {}),
        ("paper, large gamma (projection hits the simplex boundary)", {"gamma": 1.0, "betaSigma": 0.0, "rho": 0.05}),
        ("LibMTL variant (loss normalisation, softmax)", {"normalize": "loss", "simplex": "softmax", "rho": 0.1, "gamma": 3.0}),
    ]:
        o = {**base, **over}
        cases.append({
            "name": name, "options": over, "stableDim": 5, "losses": losses,
            "grads": [f32rows(s) for s in steps], "expected": moco_run(steps, losses, 5, o),
        })
    whole = make_steps(23, 4, 6, [0] * 5, [1.0, 0.5, 1.5, 0.2], [1.0] * 4)
    wl = make_losses(24, 4, 5)
    cases.append({
        "name": "whole vector (no stableDim), 4 tasks", "options": {"gamma": 0.5}, "stableDim": None, "losses": wl,
        "grads": [f32rows(s) for s in whole], "expected": moco_run(whole, wl, 6, {**base, "gamma": 0.5}),
    })
    return cases


# ----------------------------------------------------------------------------- MetaBalance


def metabalance_run(steps, segs, o):
    """Algorithm 2 per tensor: moving norms m (beta), aux g <- r g m_tar/m_aux + (1-r) g under the strategy; d = g_tar + sum aux."""
    T = steps[0].shape[0]
    tgt = o["target"]
    ns = len(segs[0]) - 1
    m = np.zeros((T, ns))
    out = []
    for g32, seg in zip(steps, segs):
        g = g32.astype(np.float64)
        n = np.array([[np.linalg.norm(g[i, seg[k]:seg[k + 1]]) for k in range(ns)] for i in range(T)])
        m = o["beta"] * m + (1 - o["beta"]) * n
        d = np.zeros(g.shape[1])
        w = np.ones((T, ns))
        for i in range(T):
            for k in range(ns):
                part = g[i, seg[k]:seg[k + 1]]
                if i != tgt and m[tgt, k] > 0 and m[i, k] > 0:
                    applies = {"both": True, "reduce": m[i, k] > m[tgt, k], "enlarge": m[i, k] < m[tgt, k]}[o["strategy"]]
                    if applies:
                        w[i, k] = o["relax"] * m[tgt, k] / m[i, k] + (1 - o["relax"])
                d[seg[k]:seg[k + 1]] += w[i, k] * part
        out.append({"factors": w.tolist(), "direction": d.tolist()})
    return out


def metabalance_cases():
    base = {"relax": 0.7, "beta": 0.9, "target": 0, "strategy": "both"}
    T = 3
    stable = [0, 4, 6, 9]  # three dense tensors
    tails = [[2, 3], [1, 0], [3, 2], [2, 2], [1, 4], [2, 1]]  # two embedding tables, rows vary per step
    segs = [stable + [9 + a, 9 + a + b] for a, b in tails]
    steps = make_steps(31, T, 9, [a + b for a, b in tails], [1.0, 4.0, 0.2], [1.0, 0.8, 1.2])
    cases = []
    for name, over in [
        ("paper defaults (strategy C), per tensor", {}),
        ("strategy C, target 1 (the largest gradients)", {"target": 1}),
        ("strategy A (reduce), relax 0.3", {"strategy": "reduce", "relax": 0.3}),
        ("strategy B (enlarge), beta 0.5", {"strategy": "enlarge", "beta": 0.5}),
    ]:
        o = {**base, **over}
        cases.append({
            "name": name, "options": over, "segments": segs,
            "grads": [f32rows(s) for s in steps], "expected": metabalance_run(steps, segs, o),
        })
    whole = make_steps(32, 4, 7, [0] * 5, [1.0, 3.0, 0.3, 1.0], [1.0, 0.9, 1.1, 1.0])
    wsegs = [[0, 7]] * 5
    cases.append({
        "name": "whole vector (no segments), 4 tasks", "options": {"target": 3}, "segments": None,
        "grads": [f32rows(s) for s in whole], "expected": metabalance_run(whole, wsegs, {**base, "target": 3}),
    })
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cases in [("excessmtl", excessmtl_cases()), ("moco", moco_cases()), ("metabalance", metabalance_cases())]:
        path = os.path.join(OUT, f"{name}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"generator": "scripts/gen-stateful-method-fixtures.py", "method": name, "cases": cases}, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()

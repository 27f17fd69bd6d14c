#!/usr/bin/env python3
"""Generate test/fixtures/balance/stch.json: STCH's loss weights in float64, written
independently of src/balance/stch.ts (numpy only).

The smooth Tchebycheff scalarization (Lin et al., ICML 2024)
    g(l) = mu * log sum_i exp(lam_i (f_i(l) - zstar_i) / mu),  f = l (or log l with log=True)
is differentiated w.r.t. the losses: the gradient of the model objective is
sum_i dg/dl_i * grad l_i, so the loss weights are w = dg/dl. Here dg/dl is computed by
central finite differences of g (evaluated with a max-shifted log-sum-exp, h = 1e-6 of
each loss) and checked against the closed form lam * softmax(lam (f - z*)/mu) [* 1/l for
log]; the closed form is stored, and g itself for the objective check.

    python3 scripts/gen-stch-fixtures.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "balance", "stch.json")


def g(l, lam, zs, mu, log):
    f = np.log(np.maximum(l, 1e-20)) if log else l
    a = lam * (f - zs) / mu
    m = np.max(a)
    return mu * (m + np.log(np.sum(np.exp(a - m))))


def closed(l, lam, zs, mu, log):
    f = np.log(np.maximum(l, 1e-20)) if log else l
    a = lam * (f - zs) / mu
    s = np.exp(a - np.max(a))
    s = s / s.sum()
    w = lam * s
    return w / l if log else w


def main():
    rng = np.random.default_rng(2024)
    cases = []
    for k, (T, mu, log, custom) in enumerate(
        [(2, 1.0, False, False), (3, 1.0, False, False), (3, 0.05, False, True), (4, 0.3, True, True), (5, 10.0, False, True), (3, 0.5, True, False), (6, 0.01, False, False)]
    ):
        lam = rng.uniform(0.2, 2.0, T) if custom else np.ones(T)
        zs = (rng.uniform(-2.0, -0.5, T) if log else rng.uniform(0.0, 0.3, T)) if custom else np.zeros(T)
        for r in range(3):
            l = rng.uniform(0.02, 1.5, T)
            w = closed(l, lam, zs, mu, log)
            h = 1e-6
            fd = np.array([(g(l + h * e, lam, zs, mu, log) - g(l - h * e, lam, zs, mu, log)) / (2 * h) for e in np.eye(T)])
            assert np.max(np.abs(fd - w)) < 1e-6 * max(1.0, np.max(np.abs(w))), (fd, w)
            cases.append(
                {
                    "name": f"case {k}.{r}: T={T} mu={mu} log={log} {'custom' if custom else 'default'} preferences/ideal",
                    "mu": mu,
                    "log": log,
                    "preferences": lam.tolist() if custom else None,
                    "ideal": zs.tolist() if custom else None,
                    "losses": l.tolist(),
                    "weights": w.tolist(),
                    "objective": float(g(l, lam, zs, mu, log)),
                }
            )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/gen-stch-fixtures.py", "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()

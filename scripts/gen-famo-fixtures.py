#!/usr/bin/env python3
"""Generate test/fixtures/balance/famo.json: FAMO's published rule in float64, written
independently of src/balance/famo.ts (numpy only).

For each case: T tasks, a sequence of steps with losses before the update (l0) and the
same batch's losses after it (l1). The "nextBatch" cases follow update = "next-batch" (the
one-step approximation: see case_next_batch). At each step the loss weights are
    z = softmax(xi),  D = max(l - b, 0) + eps,  w = (z / D) / sum(z / D)
(Liu et al., NeurIPS 2023, Algorithm 1/2: d = c * sum z_i/l_i grad l_i, c = 1/sum z/l),
and xi is then updated from delta = log D(l0) - log D(l1) through the explicit softmax
Jacobian J = diag(z) - z z^T: grad = J^T delta + gamma * xi, followed by PyTorch's Adam
(lr beta, betas 0.9/0.999, eps 1e-8, weight_decay gamma: L2 added to the gradient) or,
for "sgd", xi <- xi - beta * grad. A finite-difference check of J^T delta against
d/dxi <softmax(xi), delta> guards the Jacobian.

    python3 scripts/gen-famo-fixtures.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "balance", "famo.json")


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def jac(z):
    return np.diag(z) - np.outer(z, z)


def case(name, T, steps, opts, seed):
    rng = np.random.default_rng(seed)
    lr, gamma, opt, b, eps = opts["lr"], opts["gamma"], opts["optimizer"], opts["minLoss"], opts["eps"]
    xi = np.zeros(T)
    m = np.zeros(T)
    v = np.zeros(T)
    out = []
    for t in range(1, steps + 1):
        l0 = b + rng.uniform(0.05, 2.0, T)
        l1 = np.maximum(b + 1e-3, l0 * rng.uniform(0.7, 1.1, T))
        z = softmax(xi)
        D0 = np.maximum(l0 - b, 0) + eps
        D1 = np.maximum(l1 - b, 0) + eps
        w = (z / D0) / np.sum(z / D0)
        delta = np.log(D0) - np.log(D1)
        g = jac(z).T @ delta
        # finite-difference check of the softmax VJP
        h = 1e-6
        fd = np.array([(softmax(xi + h * e) @ delta - softmax(xi - h * e) @ delta) / (2 * h) for e in np.eye(T)])
        assert np.max(np.abs(fd - g)) < 1e-8, (fd, g)
        g = g + gamma * xi
        if opt == "adam":
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mhat = m / (1 - 0.9**t)
            denom = np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8
            xi = xi - lr * mhat / denom
        else:
            xi = xi - lr * g
        out.append({"before": l0.tolist(), "after": l1.tolist(), "weights": w.tolist(), "xi": xi.tolist()})
    return {"name": name, "numTasks": T, "options": opts, "steps": out}


def adam_or_sgd(xi, g, m, v, t, opts):
    if opts["optimizer"] == "adam":
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mhat = m / (1 - 0.9**t)
        denom = np.sqrt(v) / np.sqrt(1 - 0.999**t) + 1e-8
        return xi - opts["lr"] * mhat / denom, m, v
    return xi - opts["lr"] * g, m, v


def case_next_batch(name, T, steps, opts, seed):
    """update = "next-batch": step k's weights use the current xi; then xi is updated from
    delta = log D(l_{k-1}) - log D(l_k) (the previous step's losses against this step's)."""
    rng = np.random.default_rng(seed)
    b, eps, gamma = opts["minLoss"], opts["eps"], opts["gamma"]
    xi, m, v, t = np.zeros(T), np.zeros(T), np.zeros(T), 0
    prev = None
    out = []
    for k in range(steps):
        l = b + rng.uniform(0.05, 2.0, T)
        z = softmax(xi)
        D = np.maximum(l - b, 0) + eps
        w = (z / D) / np.sum(z / D)
        if prev is not None:
            delta = np.log(np.maximum(prev - b, 0) + eps) - np.log(D)
            g = jac(z).T @ delta + gamma * xi
            t += 1
            xi, m, v = adam_or_sgd(xi, g, m, v, t, opts)
        prev = l
        out.append({"losses": l.tolist(), "weights": w.tolist(), "xi": xi.tolist()})
    return {"name": name, "numTasks": T, "options": opts, "steps": out}


def main():
    cases = [
        case("defaults, 3 tasks", 3, 12, {"lr": 0.025, "gamma": 0.001, "optimizer": "adam", "minLoss": 0.0, "eps": 1e-8}, 1),
        case("adam, strong decay, 5 tasks", 5, 10, {"lr": 0.1, "gamma": 0.05, "optimizer": "adam", "minLoss": 0.0, "eps": 1e-8}, 2),
        case("sgd (Algorithm 1), 4 tasks", 4, 10, {"lr": 0.5, "gamma": 0.01, "optimizer": "sgd", "minLoss": 0.0, "eps": 1e-8}, 3),
        case("min-loss offset and eps, 2 tasks", 2, 8, {"lr": 0.05, "gamma": 0.001, "optimizer": "adam", "minLoss": 0.2, "eps": 1e-3}, 4),
    ]
    nextBatch = [
        case_next_batch("next-batch, defaults, 3 tasks", 3, 12, {"lr": 0.025, "gamma": 0.001, "optimizer": "adam", "minLoss": 0.0, "eps": 1e-8, "update": "next-batch"}, 5),
        case_next_batch("next-batch, sgd, 4 tasks", 4, 9, {"lr": 0.5, "gamma": 0.01, "optimizer": "sgd", "minLoss": 0.1, "eps": 1e-8, "update": "next-batch"}, 6),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/gen-famo-fixtures.py", "cases": cases, "nextBatch": nextBatch}, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate test/fixtures/metrics/calibration.json: reliability tables and ECE computed with numpy
(float64), independently of src/metrics/calibration.ts, for the TS tests to match (to 1e-12).

Cases: seeded probabilities quantised to 0.01 (so runs of equal predictions straddle the
equal-mass edges) with labels drawn from a miscalibrated truth (rate = p^1.5), a rare-event case
(rate about 2 %), each with 10 equal-mass and 10 equal-width bins, and 7 bins for a count that
does not divide evenly.

    python3 scripts/gen-calibration-fixture.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "metrics", "calibration.json")


def table(y, p, bins, binning):
    n = len(p)
    out = []
    if binning == "width":
        k = np.minimum(bins - 1, np.floor(p * bins).astype(np.int64))
        for b in range(bins):
            m = k == b
            c = int(m.sum())
            out.append(dict(lo=b / bins, hi=(b + 1) / bins, count=c, positives=int(y[m].sum()),
                            meanPred=float(p[m].mean()) if c else None, rate=float(y[m].mean()) if c else None))
    else:
        order = np.argsort(p, kind="stable")
        ps, ys = p[order], y[order]
        start = 0
        for b in range(bins):
            end = ((b + 1) * n) // bins
            if end <= start:
                continue
            end = int(np.searchsorted(ps, ps[end - 1], side="right"))  # a run of equal predictions stays in one bin
            c = end - start
            out.append(dict(lo=float(ps[start]), hi=float(ps[end - 1]), count=c, positives=int(ys[start:end].sum()),
                            meanPred=float(ps[start:end].mean()), rate=float(ys[start:end].mean())))
            start = end
    full = [b for b in out if b["count"] > 0]
    gaps = np.array([abs(b["rate"] - b["meanPred"]) for b in full])
    w = np.array([b["count"] / n for b in full])
    return dict(bins=out, ece=float((w * gaps).sum()), mce=float(gaps.max()), meanPred=float(p.mean()), rate=float(y.mean()), rows=n)


def main():
    rng = np.random.default_rng(20261208)
    cases = []
    n = 1500
    p = np.round(rng.beta(2, 3, n), 2)
    y = (rng.random(n) < p ** 1.5).astype(np.int64)
    p_rare = np.round(rng.beta(1, 40, n), 3)
    y_rare = (rng.random(n) < 0.8 * p_rare).astype(np.int64)
    for name, yy, pp in [("quantised", y, p), ("rare", y_rare, p_rare)]:
        for bins, binning in [(10, "mass"), (10, "width"), (7, "mass"), (7, "width")]:
            cases.append(dict(name=f"{name} {binning} {bins}", bins=bins, binning=binning, labels=yy.tolist(), probs=pp.tolist(),
                              expected=table(yy, pp, bins, binning)))
    with open(OUT, "w") as f:
        json.dump(dict(generator="scripts/gen-calibration-fixture.py", numpy=np.__version__, cases=cases), f)
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()

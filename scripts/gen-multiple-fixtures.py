#!/usr/bin/env python3
"""Fixtures for test/metrics/multiple.test.ts, computed independently with scipy (float64).

Run: python3 scripts/gen-multiple-fixtures.py  (needs numpy and scipy; the test reads the JSON only)
"""
import json
import os

import numpy as np
from scipy import stats

rng = np.random.default_rng(20261208)
out = {}

# Paired t-tests: several methods against a reference over 10 seeds.
ref = rng.normal(0.70, 0.004, size=10)
family = []
for shift in [0.0, 0.001, 0.003, 0.006, -0.002, 0.0005]:
    m = ref + shift + rng.normal(0, 0.003, size=10)
    d = m - ref
    t = stats.ttest_rel(m, ref)
    family.append({"a": m.tolist(), "b": ref.tolist(), "mean": float(d.mean()), "std": float(d.std(ddof=1)), "n": 10, "p": float(t.pvalue)})
out["paired"] = family

# Holm, by its definition (sorted step-down with running maximum).
p = np.array([f["p"] for f in family])
order = np.argsort(p, kind="stable")
m = len(p)
adj = np.empty(m)
running = 0.0
for j, i in enumerate(order):
    running = max(running, min(1.0, (m - j) * p[i]))
    adj[i] = running
out["holm"] = {"p": p.tolist(), "adjusted": adj.tolist()}

# Friedman on a complete table (datasets x methods, higher is better).
table = np.round(rng.uniform(0.6, 0.8, size=(9, 5)), 3)
table[2, 1] = table[2, 3]  # a tie
fr = stats.friedmanchisquare(*table.T)
ranks = np.array([stats.rankdata(-row) for row in table])
N, k = table.shape
chi2 = float(fr.statistic)
ff = (N - 1) * chi2 / (N * (k - 1) - chi2)
out["friedman"] = {
    "table": table.tolist(),
    "avgRanks": ranks.mean(0).tolist(),
    "chi2_untied": float(12 * N / (k * (k + 1)) * (np.sum(ranks.mean(0) ** 2) - k * (k + 1) ** 2 / 4)),
    "pChi2_untied": None,
    "ff": None,
}
c = out["friedman"]["chi2_untied"]
out["friedman"]["pChi2_untied"] = float(stats.chi2.sf(c, k - 1))
ffu = (N - 1) * c / (N * (k - 1) - c)
out["friedman"]["ff"] = float(ffu)
out["friedman"]["pFF"] = float(stats.f.sf(ffu, k - 1, (k - 1) * (N - 1)))

# Studentized range quantiles (infinite df), divided by sqrt(2): Demsar's q_alpha.
out["q"] = {str(kk): {"0.05": float(stats.studentized_range.ppf(0.95, kk, np.inf) / np.sqrt(2)),
                      "0.10": float(stats.studentized_range.ppf(0.90, kk, np.inf) / np.sqrt(2))} for kk in [2, 3, 4, 5, 6, 8, 10, 13, 20, 26]}

# Distribution spot values.
out["chi2cdf"] = [[x, df, float(stats.chi2.cdf(x, df))] for x, df in [(0.5, 1), (3.84, 1), (9.28, 3), (30.0, 24), (2.0, 7)]]
out["fcdf"] = [[x, a, b, float(stats.f.cdf(x, a, b))] for x, a, b in [(3.69, 3, 39), (1.0, 2, 10), (0.2, 12, 100)]]
out["normcdf"] = [[x, float(stats.norm.cdf(x))] for x in [-8.0, -3.0, -1.0, 0.0, 0.3, 2.5]]

path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "metrics", "multiple.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)

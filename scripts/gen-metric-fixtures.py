#!/usr/bin/python3
"""Generate the sklearn-verified metric fixtures under test/fixtures/metrics/.

Reads the first N rows of the real KuaiRand-Pure standard log, takes binary labels
(is_click, long_view, is_like), real tie-heavy scores (play_time_ms, duration_ms,
-profile_stay_time) plus a seeded noise score quantised to 0.01 (float32), and records
sklearn's roc_auc_score, a per-user GAUC (count / uniform / positives weighted, with
groups used/skipped and rows used), and sklearn log_loss for the TS tests to match.

Needs scikit-learn and pandas (Debian: apt-get install python3-sklearn python3-pandas;
run with /usr/bin/python3). CI does not run this: the tests only read the committed output.

    /usr/bin/python3 scripts/gen-metric-fixtures.py [--data PATH] [--rows 20000]
"""
import argparse
import json
import os

import numpy as np
import pandas as pd
import sklearn
from scipy.special import expit
from sklearn.metrics import log_loss, roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "metrics")
DEFAULT_DATA = "/work/shared/data/kuairand-pure/log_standard_2022-05-01_to_05-08.csv.gz"
LABELS = ["is_click", "long_view", "is_like"]
SEED = 20220501


def gauc_all(y, s, g):
    df = pd.DataFrame({"y": y, "s": s, "g": g})
    used = skipped = rows = 0
    num_c = den_c = num_u = num_p = den_p = 0.0
    for _, part in df.groupby("g", sort=True):
        yy = part["y"].to_numpy()
        pos = int(yy.sum())
        n = len(yy)
        if pos == 0 or pos == n:
            skipped += 1
            continue
        a = roc_auc_score(yy, part["s"].to_numpy())
        used += 1
        rows += n
        num_c += n * a
        den_c += n
        num_u += a
        num_p += pos * a
        den_p += pos
    return {
        "gauc_count": num_c / den_c,
        "gauc_uniform": num_u / used,
        "gauc_positives": num_p / den_p,
        "groups_used": used,
        "groups_skipped": skipped,
        "rows_used": rows,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--rows", type=int, default=20000)
    args = ap.parse_args()

    cols = ["user_id", *LABELS, "play_time_ms", "duration_ms", "profile_stay_time"]
    df = pd.read_csv(args.data, usecols=cols, nrows=args.rows)[cols]
    n = len(df)
    rng = np.random.default_rng(SEED)
    noise = np.round(rng.random(n), 2).astype(np.float32)
    # Shortest decimal that round-trips the float32 value; the TS test loads it into a Float32Array.
    df["noise"] = [np.format_float_positional(x, unique=True, trim="-") for x in noise]

    os.makedirs(OUT, exist_ok=True)
    df.to_csv(os.path.join(OUT, "kuairand-inputs.csv"), index=False)

    noise64 = noise.astype(np.float64)  # exact float32 values, as the TS side sees them
    scores = {
        "play_time_ms": df["play_time_ms"].to_numpy(np.float64),
        "duration_ms": df["duration_ms"].to_numpy(np.float64),
        "neg_profile_stay_time": -df["profile_stay_time"].to_numpy(np.float64),
        "noise": noise64,
    }
    groups = df["user_id"].to_numpy()
    cases = []
    for label in LABELS:
        y = df[label].to_numpy()
        for name, s in scores.items():
            case = {"label": label, "score": name, "auc": roc_auc_score(y, s)}
            case.update(gauc_all(y, s, groups))
            cases.append(case)

    # Log loss: noise as probability (contains exact 0 and 1, so eps clipping matters),
    # and logits z = (noise - 0.5) * 8 compared against log_loss(y, sigmoid(z)).
    logits = (noise64 - 0.5) * 8.0
    logloss_cases = []
    for label in LABELS:
        y = df[label].to_numpy()
        logloss_cases.append({
            "label": label,
            "logloss_noise_eps1e-7": log_loss(y, noise64, eps=1e-7, labels=[0, 1]),
            "logloss_noise_eps1e-3": log_loss(y, noise64, eps=1e-3, labels=[0, 1]),
            "logloss_sigmoid_logits": log_loss(y, expit(logits), eps=1e-15, labels=[0, 1]),
        })

    expected = {
        "generator": "scripts/gen-metric-fixtures.py",
        "sklearn_version": sklearn.__version__,
        "source": os.path.basename(args.data),
        "source_license": "CC BY-SA 4.0, KuaiRand (Gao et al., CIKM 2022)",
        "rows": n,
        "noise_seed": SEED,
        "noise": "numpy default_rng(seed).random(rows) rounded to 2 decimals, cast to float32",
        "logits": "(noise - 0.5) * 8 in float64",
        "auc_gauc": cases,
        "logloss": logloss_cases,
    }
    with open(os.path.join(OUT, "kuairand-expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"wrote {n} rows, {len(cases)} auc/gauc cases, {len(logloss_cases)} logloss cases to {OUT}")


if __name__ == "__main__":
    main()

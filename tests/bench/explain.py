#!/usr/bin/python3
"""Explanation benchmark: Timbre's TreeSHAP on its default genre model (gbdt) against XGBoost's
pred_contribs=True (exact TreeSHAP, its own model trained on the same split: hist, 300 rounds,
depth 6, as tests/bench/trees.py), one thread each, per table. Timbre explains the predicted
genre of each test row (one output of its multi-output trees); XGBoost's pred_contribs gives every
class at once (it has one tree per class and round, and no way to ask for one class). Prints the
per-row latency, rows/s and their ratio, and both models' global importances (mean |contribution|
to the predicted genre on the same rows) with their Spearman rank correlation.
Splits as tests/bench/trees.py (tables.py). Run through tests/bench/explain.sh."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb
from scipy.stats import spearmanr

from tables import MG_AUDIO, ST_AUDIO, music_genre_split, numeric, tracks_split, write_split


def timbre(args, train_csv, test_csv, feats, tmp, name):
    db = os.path.join(tmp, f"{name}.db")
    subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", train_csv, "--test", test_csv,
                    "--task", "genre", "--threads", "2", "--db", db, "--log-level", "warn", "--features",
                    ",".join(feats), "--calibration-fraction", "0"], check=True, stderr=subprocess.DEVNULL)
    out = subprocess.run([os.path.join(args.build, "tests/timbre-predict-bench"), "--db", db, "--data", test_csv,
                          "--calls", "10", "--threads", "1", "--explain", str(args.rows)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def xgboost(xtr, ytr, xte, n_classes, rows, rounds, threads):
    model = xgb.XGBClassifier(tree_method="hist", n_estimators=rounds, max_depth=6, learning_rate=0.1,
                              n_jobs=threads, objective="multi:softprob")
    model.fit(xtr, ytr)
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    x = xte[:rows].astype(np.float32)
    pred = booster.inplace_predict(x).argmax(axis=1)
    lat = []
    for i in range(min(rows, 200)):  # one row per call, as a server would explain
        d = xgb.DMatrix(x[i:i + 1])
        t0 = time.perf_counter()
        booster.predict(d, pred_contribs=True)
        lat.append(time.perf_counter() - t0)
    d = xgb.DMatrix(x)
    t0 = time.perf_counter()
    contribs = booster.predict(d, pred_contribs=True)  # rows × classes × (features + 1)
    batch_s = time.perf_counter() - t0
    chosen = contribs[np.arange(len(x)), pred, :-1]
    return dict(single_us=float(np.median(lat)) * 1e6, rows_per_s=len(x) / batch_s,
                importances=np.abs(chosen).mean(axis=0))


def run(args, name, df, label, feats, split, tmp):
    tr, te = split
    train_csv, test_csv, classes, ytr, _ = write_split(df, label, split, tmp, name)
    xtr, xte = numeric(df.iloc[tr], feats), numeric(df.iloc[te], feats)
    t = timbre(args, train_csv, test_csv, feats, tmp, name)
    print(f"  done: Timbre on {name}", file=sys.stderr)
    rounds = args.xgb_rounds_114k if name == "spotify_tracks_114k" else 300
    x = xgboost(xtr, ytr, xte, len(classes), args.rows, rounds, args.threads)
    print(f"  done: XGBoost on {name}", file=sys.stderr)
    ours = np.array([t["importances"][f] for f in feats])
    rho = spearmanr(ours, x["importances"]).correlation
    print(f"\n{name}: {len(tr)} train / {len(te)} test rows, {len(feats)} features, {len(classes)} genres; "
          f"{t['explain_rows']} test rows explained, one thread")
    print(f"{'':<34}{'1-row us':>10}{'rows/s':>10}")
    print(f"{'Timbre gbdt, predicted genre':<34}{t['explain_us_median']:>10.1f}{t['explain_rows_per_s']:>10.0f}")
    print(f"{f'XGBoost pred_contribs ({rounds} rounds)':<34}{x['single_us']:>10.1f}{x['rows_per_s']:>10.0f}")
    print(f"ratio (Timbre / XGBoost rows/s): {t['explain_rows_per_s'] / x['rows_per_s']:.1f}x; "
          f"single row {x['single_us'] / t['explain_us_median']:.1f}x")
    order = np.argsort(-ours)
    print("importance (mean |contribution| to the predicted genre)  Timbre   XGBoost")
    for j in order:
        print(f"  {feats[j]:<52}{ours[j]:>8.4f}{x['importances'][j]:>10.4f}")
    print(f"Spearman rank correlation of the two rankings: {rho:.3f}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--tables", default="music_genre_50k,spotify_tracks_114k")
    ap.add_argument("--xgb-rounds-114k", type=int, default=300,
                    help="XGBoost's rounds on the 114-genre table (114 trees a round: 300 take long to train; "
                         "fewer make its explanations faster, so the ratio errs in XGBoost's favour)")
    ap.add_argument("--threads", type=int, default=2, help="training threads (explaining runs on one)")
    args = ap.parse_args()
    print(f"explain benchmark, {time.strftime('%Y-%m-%d')}, xgboost {xgb.__version__}")
    with tempfile.TemporaryDirectory(prefix="timbre-explain-") as tmp:
        if "music_genre_50k" in args.tables:
            mg, tr, te = music_genre_split(args.music_genre)
            run(args, "music_genre_50k", mg, "music_genre", MG_AUDIO + ["popularity"], (tr, te), tmp)
        if "spotify_tracks_114k" in args.tables:
            st, tr, te = tracks_split(args.tracks)
            run(args, "spotify_tracks_114k", st, "track_genre", ST_AUDIO, (tr, te), tmp)


if __name__ == "__main__":
    main()

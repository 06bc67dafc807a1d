#!/usr/bin/python3
"""Tree-engine benchmark: Timbre rf / extra / gbdt against XGBoost (hist), scikit-learn's
RandomForest and HistGradientBoosting, on the same splits, one after the other, 2 threads each.

Splits: music_genre_50k stratified 80/20 seed 42 (train_test_split); spotify_tracks_114k 80/20
grouped by track_id seed 42 (GroupShuffleSplit). Both are written to CSV files that every tool
reads. Prints one table per data set: accuracy, macro-F1, log-loss, train seconds, single-row
predict latency (median of >= 1000 in-process calls), batch throughput over the test set, model
size. Run through tests/bench/trees.sh, which installs the peers and builds Timbre. Timbre trains
with --calibration-fraction 0, on the same rows as the peers (tests/bench/conformal.py measures
the calibrated models).
"""
import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, log_loss

from tables import MG_AUDIO, ST_AUDIO, music_genre_split, numeric, tracks_split, write_split


def latency_us(fn, X, calls):
    t = []
    for i in range(calls):
        row = X[i % len(X)][None, :]
        t0 = time.perf_counter()
        fn(row)
        t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e6


def peer_rows(name, make, xtr, ytr, xte, yte, classes, calls, impute):
    if impute:
        imp = SimpleImputer(strategy="mean").fit(xtr)
        xtr, xte = imp.transform(xtr), imp.transform(xte)
    model = make()
    t0 = time.perf_counter()
    model.fit(xtr, ytr)
    train_s = time.perf_counter() - t0
    if isinstance(model, xgb.XGBClassifier):
        booster = model.get_booster()
        xte32 = xte.astype(np.float32)
        predict = lambda x: booster.inplace_predict(x)  # noqa: E731
        t0 = time.perf_counter()
        proba = booster.inplace_predict(xte32)
        batch_s = time.perf_counter() - t0
        single = latency_us(predict, xte32, calls)
        size = len(booster.save_raw())
    else:
        t0 = time.perf_counter()
        proba = model.predict_proba(xte)
        batch_s = time.perf_counter() - t0
        single = latency_us(model.predict_proba, xte, calls)
        size = len(pickle.dumps(model))
    pred = proba.argmax(axis=1)
    return dict(model=name, accuracy=accuracy_score(yte, pred), macro_f1=f1_score(yte, pred, average="macro"),
                log_loss=log_loss(yte, proba, labels=np.arange(len(classes))), train_s=train_s,
                single_us=single, batch_rows_s=len(xte) / batch_s, bytes=size)


def timbre_row(kind, args, train_csv, test_csv, features, tmp, extra):
    db = os.path.join(tmp, f"timbre-{kind}.db")
    report = os.path.join(tmp, f"report-{kind}.json")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    cmd = [os.path.join(args.build, "trainer/timbre-train"), "--data", train_csv, "--test", test_csv, "--task", "genre",
           "--model", kind, "--threads", str(args.threads), "--db", db, "--report", report, "--log-level", "warn",
           "--features", ",".join(features), "--calibration-fraction", "0", *extra]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    rep = json.load(open(report))
    bench = subprocess.run([os.path.join(args.build, "tests/timbre-predict-bench"), "--db", db, "--data", test_csv,
                            "--calls", str(args.calls), "--threads", str(args.threads)],
                           check=True, capture_output=True, text=True)
    b = json.loads(bench.stdout)
    m = rep["metrics"]
    rounds = rep.get("rounds", rep.get("trees"))  # "trees" in reports before the count was named by unit
    label = f"Timbre {kind}" + (f" ({rounds} trees)" if kind == "gbdt" else "")
    return dict(model=label, accuracy=m["accuracy"], macro_f1=m["macro_f1"], log_loss=m["log_loss"],
                train_s=rep["train_seconds"], single_us=b["single_us_median"], batch_rows_s=b["batch_rows_per_s"],
                bytes=b["model_bytes"])


def print_table(title, rows):
    print(f"\n{title}")
    print(f"{'model':<30}{'accuracy':>9}{'macro-F1':>9}{'log-loss':>9}{'train s':>9}{'1-row us':>10}"
          f"{'rows/s':>11}{'size MB':>9}")
    for r in rows:
        print(f"{r['model']:<30}{r['accuracy']:>9.4f}{r['macro_f1']:>9.4f}{r['log_loss']:>9.4f}{r['train_s']:>9.2f}"
              f"{r['single_us']:>10.1f}{r['batch_rows_s']:>11.0f}{r['bytes'] / 1e6:>9.2f}")
    sys.stdout.flush()


def run_dataset(args, name, df, label, audio, split, tmp, with_pop_rows):
    tr, te = split
    train_csv, test_csv, classes, ytr, yte = write_split(df, label, split, tmp, name)
    results = {}
    for pop in with_pop_rows:
        feats = audio + (["popularity"] if pop else [])
        xtr, xte = numeric(df.iloc[tr], feats), numeric(df.iloc[te], feats)
        rows = []
        t = args.threads
        peers = [
            ("XGBoost hist (300, d6, lr .1)",
             lambda: xgb.XGBClassifier(tree_method="hist", n_estimators=300, max_depth=6, learning_rate=0.1,
                                       n_jobs=t, objective="multi:softprob"), False),
            ("sklearn RandomForest(100,bal)",
             lambda: RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=t, random_state=42),
             True),
            ("sklearn HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=42), False),
        ]
        for kind in args.timbre:
            rows.append(timbre_row(kind, args, train_csv, test_csv, feats, tmp, []))
            print(f"  done: Timbre {kind}", file=sys.stderr)
        for pname, make, impute in peers:
            if args.no_peers:
                break
            if args.skip_xgb_114k and name == "spotify_tracks_114k" and pname.startswith("XGBoost"):
                continue
            rows.append(peer_rows(pname, make, xtr, ytr, xte, yte, classes, args.calls, impute))
            print(f"  done: {pname}", file=sys.stderr)
        title = (f"{name}: {len(tr)} train / {len(te)} test rows, {len(feats)} features "
                 f"({'audio + popularity' if pop else 'audio'}), {len(classes)} genres, {args.threads} threads")
        print_table(title, rows)
        results[f"{name}{'+pop' if pop else ''}"] = rows
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--timbre", default="gbdt,blend,rf,extra")
    ap.add_argument("--only", default="", help="music_genre_50k or spotify_tracks_114k")
    ap.add_argument("--skip-xgb-114k", action="store_true", help="XGBoost takes many minutes on 114 classes")
    ap.add_argument("--json", default="")
    ap.add_argument("--no-peers", action="store_true", help="Timbre only (to compare two builds: --build)")
    args = ap.parse_args()
    args.timbre = [k for k in args.timbre.split(",") if k]
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    tmp = tempfile.mkdtemp(prefix="timbre-trees-")
    print(f"Timbre tree-engine benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"xgboost {xgb.__version__}, scikit-learn {__import__('sklearn').__version__}")
    results = {}
    if args.only in ("", "music_genre_50k"):
        mg, tr, te = music_genre_split(args.music_genre)
        results.update(run_dataset(args, "music_genre_50k", mg, "music_genre", MG_AUDIO, (tr, te), tmp, [True]))
    if args.only in ("", "spotify_tracks_114k"):
        st, tr, te = tracks_split(args.tracks)
        results.update(run_dataset(args, "spotify_tracks_114k", st, "track_genre", ST_AUDIO, (tr, te), tmp,
                                   [False, True]))
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Timbre's random forest against scikit-learn's on the same split of music_genre_50k.

Split: stratified 80/20, seed 42 (scikit-learn's train_test_split), written to two CSV files that
both tools read. Features: the 12 audio columns + popularity; missing values ('?' tempo, -1
duration) mean-imputed on the training rows by both. Both train 100 balanced trees with 2 threads.
Run through tests/bench/rf_vs_sklearn.sh, which installs the peers and builds Timbre.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split

FEATURES = ["acousticness", "danceability", "duration_ms", "energy", "instrumentalness", "key", "liveness",
            "loudness", "mode", "speechiness", "tempo", "valence", "popularity"]
KEYS = {k: i for i, k in enumerate(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])}


def numeric(df):
    x = df[FEATURES].copy()
    x["tempo"] = pd.to_numeric(x["tempo"].replace("?", np.nan))
    x["duration_ms"] = x["duration_ms"].replace(-1.0, np.nan)
    x["key"] = x["key"].map(KEYS)
    x["mode"] = (x["mode"] == "Major").astype(float)
    return x.astype(float).values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="timing runs per tool (median reported)")
    a = ap.parse_args()

    df = pd.read_csv(a.data, dtype={"tempo": str}).dropna(how="all")
    train, test = train_test_split(df, test_size=0.2, stratify=df["music_genre"], random_state=42)
    tmp = tempfile.mkdtemp(prefix="timbre-bench-")
    train_csv, test_csv = os.path.join(tmp, "train.csv"), os.path.join(tmp, "test.csv")
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)

    imp = SimpleImputer(strategy="mean").fit(numeric(train))
    xtr, xte = imp.transform(numeric(train)), imp.transform(numeric(test))
    ytr, yte = train["music_genre"].values, test["music_genre"].values

    sk_times, sk = [], None
    for r in range(a.repeat):
        clf = RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=a.threads, random_state=42)
        t0 = time.perf_counter()
        clf.fit(xtr, ytr)
        sk_times.append(time.perf_counter() - t0)
        sk = clf
    t0 = time.perf_counter()
    proba = sk.predict_proba(xte)
    sk_pred_s = time.perf_counter() - t0
    pred = sk.classes_[proba.argmax(axis=1)]
    sk_row = dict(accuracy=accuracy_score(yte, pred), macro_f1=f1_score(yte, pred, average="macro"),
                  log_loss=log_loss(yte, proba, labels=sk.classes_), train_s=float(np.median(sk_times)),
                  predict_s=sk_pred_s)

    tb_times, rep = [], None
    for r in range(a.repeat):
        report = os.path.join(tmp, "report.json")
        db = os.path.join(tmp, "bench.db")
        subprocess.run([a.trainer, "--data", train_csv, "--test", test_csv, "--task", "genre", "--model", "rf",
                        "--calibration-fraction", "0", "--features", ",".join(FEATURES), "--threads", str(a.threads),
                        "--db", db, "--report", report, "--log-level", "warn"], check=True)
        rep = json.load(open(report))
        tb_times.append(rep["train_seconds"])
    m = rep["metrics"]
    tb_row = dict(accuracy=m["accuracy"], macro_f1=m["macro_f1"], log_loss=m["log_loss"],
                  train_s=float(np.median(tb_times)), predict_s=rep["predict_seconds"])

    print(f"music_genre_50k, stratified 80/20 seed 42: {len(train)} train / {len(test)} test rows, "
          f"{len(FEATURES)} features, {a.threads} threads, median of {a.repeat} training run(s)")
    print(f"{'model':<34}{'accuracy':>9}{'macro-F1':>10}{'log-loss':>10}{'train s':>10}{'predict s':>11}")
    for name, row in (("scikit-learn RandomForest(100,bal)", sk_row), ("Timbre rf (100 trees, balanced)", tb_row)):
        print(f"{name:<34}{row['accuracy']:>9.4f}{row['macro_f1']:>10.4f}{row['log_loss']:>10.4f}"
              f"{row['train_s']:>10.2f}{row['predict_s']:>11.3f}")
    print(f"accuracy difference (Timbre - sklearn): {tb_row['accuracy'] - sk_row['accuracy']:+.4f}")
    print(f"training speed-up (sklearn s / Timbre s): {sk_row['train_s'] / tb_row['train_s']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Conformal benchmark: Timbre's calibrated genre sets (LAC, APS, RAPS; marginal and Mondrian) and
popularity intervals, against scikit-learn RandomForest(100, balanced) + LAC split conformal.

Same train/test splits as trees.py (music_genre_50k stratified 80/20 seed 42; spotify_tracks_114k
80/20 grouped by track_id seed 42), audio features only. Each side holds out 10% of its training
rows (grouped by track, stratified by genre) to calibrate and fits on the rest: Timbre inside
timbre-train (--calibration-fraction 0.1), scikit-learn here. Prints coverage and average set size
on the test rows for alpha in 0.01, 0.05, 0.1, 0.2, and the popularity interval table.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GroupShuffleSplit, train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tables import MG_AUDIO, ST_AUDIO, music_genre_split, numeric, tracks_split  # noqa: E402

ALPHAS = [0.01, 0.05, 0.1, 0.2]


def qhat(scores, alpha):
    n = len(scores)
    r = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    return math.inf if r > n else np.sort(scores)[r - 1]


def sklearn_lac(xtr, ytr, gtr, xte, yte, k, threads):
    idx = np.arange(len(xtr))
    if gtr is None:
        fit, cal = train_test_split(idx, test_size=0.1, stratify=ytr, random_state=42)
    else:
        fit, cal = next(GroupShuffleSplit(n_splits=1, test_size=0.1, random_state=42).split(idx, groups=gtr))
    rf = RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=threads, random_state=42)
    mean = np.nanmean(xtr[fit], axis=0)  # mean imputation, as Timbre's pipeline
    t0 = time.perf_counter()
    rf.fit(np.where(np.isnan(xtr[fit]), mean, xtr[fit]), ytr[fit])
    train_s = time.perf_counter() - t0

    def proba(x):
        x = np.where(np.isnan(x), mean, x)
        p = np.zeros((len(x), k))
        p[:, rf.classes_] = rf.predict_proba(x)
        return p

    pc, pt = proba(xtr[cal]), proba(xte)
    scores = 1 - pc[np.arange(len(cal)), ytr[cal]]
    out = {}
    for a in ALPHAS:
        q = qhat(scores, a)
        sets = (1 - pt) <= q
        out[a] = dict(coverage=float(sets[np.arange(len(yte)), yte].mean()), size=float(sets.sum(1).mean()))
    return out, len(cal), train_s, pt


def timbre(args, tmp, name, train_csv, test_csv, feats, task, flags=()):
    tag = "-".join([task] + [f.strip("-").replace("/", "_") for f in flags if not f.startswith("/")])
    report = os.path.join(tmp, f"{name}-{tag}.json")
    db = os.path.join(tmp, f"{name}-{tag}.db")
    subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", train_csv, "--test", test_csv,
                    "--task", task, "--features", ",".join(feats), "--threads", str(args.threads), "--db", db,
                    "--report", report, "--log-level", "warn", *flags], check=True, stderr=subprocess.DEVNULL)
    return json.load(open(report))


def size_at_coverage(proba, y, coverage):
    """Average LAC set size with the threshold set on the test rows themselves so that exactly
    `coverage` of them are covered: two models compared at one coverage, free of calibration noise
    (an oracle, for comparison only)."""
    scores = 1 - proba[np.arange(len(y)), y]
    q = np.sort(scores)[max(0, math.ceil(coverage * len(y)) - 1)]
    return float(((1 - proba) <= q).sum(1).mean())


def timbre_proba(path, classes):
    return pd.read_csv(path)[[f"p_{c}" for c in classes]].values


def run(args, tmp, name, df, label, audio, tr, te, groups):
    train_csv, test_csv = os.path.join(tmp, f"{name}-train.csv"), os.path.join(tmp, f"{name}-test.csv")
    df.iloc[tr].to_csv(train_csv, index=False)
    df.iloc[te].to_csv(test_csv, index=False)
    classes = np.array(sorted(df[label].unique()))
    index = {c: i for i, c in enumerate(classes)}
    ytr, yte = df[label].iloc[tr].map(index).values, df[label].iloc[te].map(index).values
    xtr, xte = numeric(df.iloc[tr], audio), numeric(df.iloc[te], audio)
    sk, n_cal, sk_train, sk_proba = sklearn_lac(xtr, ytr, None if groups is None else groups[tr], xte, yte,
                                                len(classes), args.threads)
    best = {}
    for config in args.timbre_models.split(";"):
        flags = config.split()
        probs = os.path.join(tmp, f"{name}-{'-'.join(f.strip('-') for f in flags) or 'default'}-proba.csv")
        rep = timbre(args, tmp, name, train_csv, test_csv, audio, "genre",
                     flags + ["--predict", test_csv, "--out", probs, "--proba"])
        proba = timbre_proba(probs, classes)
        conf = rep["conformal"]
        twins = rep.get("twins")
        print(f"\n{name}: {len(tr)} train / {len(te)} test rows, audio features ({len(audio)}), {len(classes)} genres; "
              f"Timbre {rep['model']} {' '.join(flags)} accuracy {rep['metrics']['accuracy']:.4f}, log-loss "
              f"{rep['metrics']['log_loss']:.4f}, calibrated on {conf['calibration_rows']} rows"
              + (f", twins for {100 * twins['test_rate']:.1f}% of the test rows" if twins and twins["kept"] else
                 f", twins dropped ({twins['train_rows_with_twin']} training rows with one, "
                 f"{100 * twins['agreement']:.1f}% agreeing)" if twins else "")
              + f"; scikit-learn RF calibrated on {n_cal}")
        print(f"{'alpha':<7}{'method':<16}{'mondrian':<10}{'coverage':>9}{'avg size':>10}{'empty %':>9}"
              f"{'worst genre':>13}")
        for r in conf["sets"]:
            print(f"{r['alpha']:<7}{r['method']:<16}{'yes' if r['mondrian'] else 'no':<10}{r['coverage']:>9.4f}"
                  f"{r['avg_set_size']:>10.2f}{100 * r['empty_rate']:>9.2f}{r['worst_genre_coverage']:>13.4f}")
        worst_cov = min(r["coverage"] - (1 - r["alpha"]) for r in conf["sets"])
        print(f"lowest coverage minus (1 - alpha) over every Timbre row: {worst_cov:+.4f}")
        for a in ALPHAS:
            b = min((r for r in conf["sets"] if r["alpha"] == a), key=lambda r: r["avg_set_size"])
            if a not in best or b["avg_set_size"] < best[a][0]["avg_set_size"]:
                best[a] = (b, config or "default model", proba if b["method"] == "lac" and not b["mondrian"] else None)
    print()
    for a in ALPHAS:
        print(f"{a:<7}{'sklearn RF LAC':<16}{'no':<10}{sk[a]['coverage']:>9.4f}{sk[a]['size']:>10.2f}")
    for a in ALPHAS:
        b, config, proba = best[a]
        line = (f"alpha {a}: best Timbre ({config}) {b['method']}{' mondrian' if b['mondrian'] else ''} size "
                f"{b['avg_set_size']:.2f} (coverage {b['coverage']:.4f}) vs sklearn RF + LAC "
                f"{sk[a]['size']:.2f} ({sk[a]['coverage']:.4f}): ratio {b['avg_set_size'] / sk[a]['size']:.3f}")
        if proba is not None:  # both LAC: compared again at one coverage, 1 - alpha exactly
            mine, theirs = size_at_coverage(proba, yte, 1 - a), size_at_coverage(sk_proba, yte, 1 - a)
            line += f"; at coverage {1 - a:.2f} exactly (oracle thresholds): {mine:.2f} vs {theirs:.2f}, ratio {mine / theirs:.3f}"
        print(line)
    pop = timbre(args, tmp, name, train_csv, test_csv, audio, "popularity")
    print(f"{name} popularity ({pop['model']}, R2 {pop['metrics']['r2']:.4f}), intervals clipped to [0, 100]:")
    print(f"{'alpha':<7}{'method':<12}{'coverage':>9}{'mean width':>12}")
    for r in pop["conformal"]["intervals"]:
        print(f"{r['alpha']:<7}{r['method']:<12}{r['coverage']:>9.4f}{r['mean_width']:>12.2f}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--timbre-models", default=";--model blend --blend-with mlp",
                    help="';'-separated timbre-train flag sets for the genre sets (empty: the default model)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-conformal-")
    print(f"Timbre conformal benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"scikit-learn {__import__('sklearn').__version__}, {args.threads} threads")
    if args.only in ("", "music_genre_50k"):
        mg, tr, te = music_genre_split(args.music_genre)
        run(args, tmp, "music_genre_50k", mg, "music_genre", MG_AUDIO, tr, te, None)
    if args.only in ("", "spotify_tracks_114k"):
        st, tr, te = tracks_split(args.tracks)
        run(args, tmp, "spotify_tracks_114k", st, "track_genre", ST_AUDIO, tr, te, st["track_id"].values)


if __name__ == "__main__":
    sys.exit(main())

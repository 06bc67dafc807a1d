#!/usr/bin/python3
"""Neural-network benchmark, one run, peers side by side on the same split, 2 threads each.

1. music_genre_50k, audio + popularity, stratified 80/20 seed 42 (as tests/bench/trees.py):
   scikit-learn MLPClassifier((256, 128), early_stopping=True) on mean-imputed, standardized
   inputs against `timbre-train --model mlp` with no tuning flags. Accuracy, macro-F1, train s.
2. Multi-task, audio only (popularity is the second target, so not an input): one network with
   both heads per task (--multitask W) against the single-task networks the same run trains.
3. spotify_tracks_114k, 80/20 grouped by track_id (timbre-train's own split): Genre-Hit@10 of the
   recommendation index over standardized features and over the mlp embedding.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tables import MG_AUDIO, music_genre_split, numeric  # noqa: E402


def timbre(args, tmp, name, cmd):
    db, report = os.path.join(tmp, f"{name}.db"), os.path.join(tmp, f"{name}.json")
    subprocess.run([os.path.join(args.build, "trainer/timbre-train"), *cmd, "--db", db, "--report", report,
                    "--threads", str(args.threads), "--log-level", "warn"], check=True, stderr=subprocess.DEVNULL)
    return json.load(open(report))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--multitask", default="0.3")
    ap.add_argument("--skip-embedding", action="store_true")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    tmp = tempfile.mkdtemp(prefix="timbre-mlp-")
    mg, tr, te = music_genre_split(args.music_genre)
    train_csv, test_csv = os.path.join(tmp, "mg-train.csv"), os.path.join(tmp, "mg-test.csv")
    mg.iloc[tr].to_csv(train_csv, index=False)
    mg.iloc[te].to_csv(test_csv, index=False)

    feats = MG_AUDIO + ["popularity"]
    xtr, xte = numeric(mg.iloc[tr], feats), numeric(mg.iloc[te], feats)
    ytr, yte = mg["music_genre"].iloc[tr].values, mg["music_genre"].iloc[te].values
    t0 = time.perf_counter()
    imp = SimpleImputer(strategy="mean").fit(xtr)
    sc = StandardScaler().fit(imp.transform(xtr))
    sk = MLPClassifier((256, 128), early_stopping=True, random_state=42).fit(sc.transform(imp.transform(xtr)), ytr)
    sk_s = time.perf_counter() - t0
    pred = sk.predict(sc.transform(imp.transform(xte)))
    sk_row = ("sklearn MLPClassifier((256,128))", accuracy_score(yte, pred), f1_score(yte, pred, average="macro"),
              sk_s, sk.n_iter_)
    r = timbre(args, tmp, "mlp", ["--data", train_csv, "--test", test_csv, "--task", "genre", "--model", "mlp",
                                  "--features", ",".join(feats), "--calibration-fraction", "0"])
    tb_row = ("Timbre mlp (defaults)", r["metrics"]["accuracy"], r["metrics"]["macro_f1"], r["train_seconds"],
              r.get("epochs", r.get("trees")))  # "trees" in reports before the count was named by unit
    print(f"\nmusic_genre_50k: {len(tr)} train / {len(te)} test rows, audio + popularity, {args.threads} threads")
    print(f"{'model':<36}{'accuracy':>9}{'macro-F1':>9}{'train s':>9}{'epochs':>8}")
    for row in (sk_row, tb_row):
        print(f"{row[0]:<36}{row[1]:>9.4f}{row[2]:>9.4f}{row[3]:>9.2f}{row[4]:>8}")
    print(f"train time ratio Timbre / sklearn: {tb_row[3] / sk_row[3]:.2f}x")
    sys.stdout.flush()

    audio = ",".join(MG_AUDIO)
    base = ["--data", train_csv, "--test", test_csv, "--model", "mlp", "--features", audio,
            "--calibration-fraction", "0"]
    # One run trains the multi-task networks and, on the same rows, the single-task ones.
    mt = timbre(args, tmp, "multi", base + ["--task", "all", "--multitask", args.multitask])
    g, p = mt["genre"]["single_task"], mt["popularity"]["single_task"]
    print("\nmulti-task on music_genre_50k (audio only, same split): genre head and popularity head")
    print(f"{'network':<36}{'accuracy':>9}{'macro-F1':>9}{'R2':>8}{'RMSE':>8}{'MAE':>8}{'train s':>9}")
    rows = [("mlp genre only", g["metrics"], None, g["train_seconds"]),
            ("mlp popularity only", None, p["metrics"], p["train_seconds"]),
            (f"mlp multi-task (W {args.multitask}), genre-led", mt["genre"]["metrics"], None,
             mt["genre"]["train_seconds"]),
            (f"mlp multi-task (W {args.multitask}), popularity-led", None, mt["popularity"]["metrics"],
             mt["popularity"]["train_seconds"])]
    for name, gm, pm, secs in rows:
        acc = f"{gm['accuracy']:>9.4f}{gm['macro_f1']:>9.4f}" if gm else f"{'':>18}"
        reg = f"{pm['r2']:>8.4f}{pm['rmse']:>8.3f}{pm['mae']:>8.3f}" if pm else f"{'':>24}"
        print(f"{name:<36}{acc}{reg}{secs:>9.2f}")
    sys.stdout.flush()

    if args.skip_embedding:
        return
    print("\nspotify_tracks_114k recommendation index (80/20 grouped by track_id, seed 42)")
    print(f"{'embedding':<36}{'dim':>5}{'Genre-Hit@10':>14}{'train+index s':>15}")
    hits = {}
    for emb in ("standardized", "mlp"):
        t0 = time.perf_counter()
        r = timbre(args, tmp, f"rec-{emb}", ["--data", args.tracks, "--task", "recommend", "--embedding", emb])
        secs = time.perf_counter() - t0
        m = r["metrics"]
        hits[emb] = m["genre_hit_at_10"]
        print(f"{emb:<36}{m['dim']:>5}{hits[emb]:>14.4f}{secs:>15.1f}")
        sys.stdout.flush()
    print(f"mlp / standardized: {hits['mlp'] / hits['standardized']:.2f}x")


if __name__ == "__main__":
    main()

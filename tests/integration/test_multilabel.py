#!/usr/bin/env python3
"""Integration test for multi-label genres: a slice of spotify_tracks_114k (tracks listed under
several genres among them), `timbre-train --multilabel` with an explicit test file, then the real
timbre-serve. The set metrics the trainer reports are recomputed here from the server's answers
(POST /v1/genre with "multilabel": true, by track id), which checks the served model, its stored
threshold and the metric code at once; bad input is refused."""
import csv
import gzip
import json
import os
import random
import shutil
import http.client
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import Client, check, is_error, start_server, test_arguments  # noqa: E402
import test_http  # noqa: E402


def write_slice(src, tmp):
    """About 2,400 distinct tracks (a third listed under several genres), split 80/20 by track id."""
    with gzip.open(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    idc, gc = header.index("track_id"), header.index("track_genre")
    genres_of = {}
    for r in body:
        genres_of.setdefault(r[idc], set()).add(r[gc])
    rng = random.Random(7)
    multi = sorted(t for t, g in genres_of.items() if len(g) > 1)
    single = sorted(t for t, g in genres_of.items() if len(g) == 1)
    keep = rng.sample(multi, 800) + rng.sample(single, 1600)
    rng.shuffle(keep)
    test_ids = set(keep[:480])
    keep = set(keep)
    paths = {name: os.path.join(tmp, name) for name in ("train.csv", "test.csv")}
    with open(paths["train.csv"], "w", newline="") as ftr, open(paths["test.csv"], "w", newline="") as fte:
        wtr, wte = csv.writer(ftr), csv.writer(fte)
        wtr.writerow(header)
        wte.writerow(header)
        for r in body:
            if r[idc] in keep:
                (wte if r[idc] in test_ids else wtr).writerow(r)
    return paths, {t: genres_of[t] for t in test_ids}


def main():
    a = test_arguments()
    data = subprocess.run(["bash", a.find_data, "spotify_tracks_114k.csv.gz"], capture_output=True, text=True)
    if data.returncode != 0:
        print(f"cannot find the data: {data.stderr}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="timbre-ml-")
    try:
        return run(a, data.stdout.strip(), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, src, tmp):
    paths, truth = write_slice(src, tmp)
    db, report = os.path.join(tmp, "ml.db"), os.path.join(tmp, "report.json")
    t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--test", paths["test.csv"], "--task", "genre",
                        "--multilabel", "--hidden", "64,32", "--epochs", "40", "--threads", "2", "--db", db,
                        "--report", report], capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"trainer exit {t.returncode}: {t.stderr[-2000:]}")
    if t.returncode != 0:
        return 1
    rep = json.load(open(report))
    m = rep["metrics"]
    check(rep["task"] == "multilabel" and rep["model"] == "mlp" and rep["n_test"] == len(truth)
          and rep["n_train"] == 1920, f"report {rep['task']} {rep['model']} {rep['n_train']} {rep['n_test']}")
    check(set(m) == {"micro_f1", "macro_f1", "jaccard", "hamming_loss", "any_genre_accuracy", "mean_set_size",
                     "threshold"} and 0 < m["threshold"] < 1 and 0 < m["micro_f1"] < 1, f"set metrics {m}")
    for bad, needle in ((["--multilabel", "--model", "gbdt"], "--model mlp"),
                        (["--multilabel", "--task", "popularity"], "--task genre or all")):
        r = subprocess.run([a.trainer, "--data", paths["train.csv"], *bad], capture_output=True, text=True)
        check(r.returncode == 2 and needle in r.stderr, f"{bad} refused: {r.returncode} {r.stderr!r}")

    proc, port = start_server(a.server, db, tmp)
    check(port is not None, "server started")
    if port is None:
        print(open(proc.log_path).read(), file=sys.stderr)
        return 1
    c = Client(port)
    try:
        s, b, _ = c.request("GET", "/readyz")
        check(s == 200 and b["models"]["multilabel"] and not b["models"]["genre"], f"readyz {b}")
        s, b, _ = c.request("GET", "/v1/models")
        check(s == 200 and any(x["task"] == "multilabel" and x["name"] == "multilabel-mlp" for x in b["models"]),
              f"models list {b}")
        # The metrics again, from the served answers (batches of 100 instances by id).
        ids = sorted(truth)
        answers = {}
        for i in range(0, len(ids), 100):
            s, b, _ = c.post("/v1/genre", {"instances": [{"track_id": t, "multilabel": True} for t in ids[i:i + 100]]})
            check(s == 200, f"batch of sets {s}")
            for t, p in zip(ids[i:i + 100], b["predictions"] if s == 200 else []):
                answers[t] = p
        tp = fp = fn = 0
        jac = 0.0
        for t in ids:
            got, want = set(answers[t]["genres"]), truth[t]
            tp += len(got & want)
            fp += len(got - want)
            fn += len(want - got)
            jac += len(got & want) / len(got | want) if got | want else 1.0
        micro = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        check(abs(micro - m["micro_f1"]) < 1e-9, f"micro-F1 from the server {micro} = the trainer's {m['micro_f1']}")
        check(abs(jac / len(ids) - m["jaccard"]) < 1e-9, f"Jaccard from the server {jac / len(ids)} = {m['jaccard']}")
        check(abs(sum(len(answers[t]["genres"]) for t in ids) / len(ids) - m["mean_set_size"]) < 1e-9,
              "mean set size from the server")
        one = answers[ids[0]]
        check(one["threshold"] == m["threshold"] and all(p["probability"] >= m["threshold"]
                                                          for p in one["probabilities"] if p["genre"] in one["genres"])
              and one["genre"] == one["probabilities"][0]["genre"], f"a set reply {one}")
        probs = [p["probability"] for p in one["probabilities"]]
        check(probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs), "probabilities best first")
        s, b, _ = c.post("/v1/genre", {"features": {"energy": 0.95, "loudness": -3.0}, "multilabel": True})
        check(s == 200 and "tempo" in b["imputed"] and isinstance(b["genres"], list), f"set from features {s} {b}")
        # Errors.
        for body, status, code, field, what in (
                ({"track_id": ids[0], "multilabel": "yes"}, 400, "bad_request", "multilabel", "non-boolean flag"),
                ({"track_id": ids[0], "multilabel": 1}, 400, "bad_request", "multilabel", "numeric flag"),
                ({"track_id": "no-such-track", "multilabel": True}, 404, "not_found", "track_id", "unknown id"),
                ({"features": {"energy": "loud"}, "multilabel": True}, 400, "bad_request", "energy", "bad feature"),
                ({"track_id": ids[0], "multilabel": True, "k": 3}, 400, "bad_request", "k", "unknown key"),
                ({"track_id": ids[0]}, 503, "unavailable", None, "single-genre model absent")):
            s, b, _ = c.post("/v1/genre", body)
            check(is_error(s, b, code, status, field), f"{what}: {s} {b}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    watch_checks(a, paths, tmp)
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed")
    return 1 if test_http.FAILED else 0


def reloads(port):
    c = Client(port)
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    line = next(ln for ln in text.splitlines() if ln.startswith('timbre_reloads_total{outcome="ok"}'))
    return int(line.split()[-1])


def watch_checks(a, paths, tmp):
    """Regression: --watch compared the served models without multilabel against the database's
    with it, so once a multilabel model was published it reloaded every period, forever. Publishing
    genre, popularity, recommend and multilabel in turn must reload exactly four times."""
    db = os.path.join(tmp, "watch.db")
    base = [a.trainer, "--data", paths["train.csv"], "--db", db, "--threads", "2", "--log-level", "warn"]
    t = subprocess.run(base + ["--task", "genre", "--model", "rf", "--trees", "5"], capture_output=True, text=True)
    check(t.returncode == 0, f"trainer: {t.stderr[-500:]}")
    with sqlite3.connect(db) as con:  # the catalog without any model: the server starts with nothing to serve
        con.execute("DELETE FROM models")
    proc, port = start_server(a.server, db, tmp, ("--watch", "1", "--no-access-log"))
    check(port is not None, "server on a database without models")
    if port is None:
        return
    seen = []
    try:
        for flags in (["--task", "genre", "--model", "rf", "--trees", "5"],
                      ["--task", "popularity", "--model", "rf", "--trees", "5"],
                      ["--task", "recommend"],
                      ["--task", "genre", "--multilabel", "--hidden", "16", "--epochs", "3"]):
            t = subprocess.run(base + flags, capture_output=True, text=True, timeout=300)
            check(t.returncode == 0, f"trainer {flags}: {t.stderr[-500:]}")
            time.sleep(3.5)  # three watch periods
            seen.append(reloads(port))
        time.sleep(4)
        seen.append(reloads(port))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        info = [ln for ln in conn.getresponse().read().decode().splitlines() if ln.startswith("timbre_model_info")]
        # Regression: /metrics listed genre, popularity and recommend, not the multilabel model /v1/models shows.
        check(any('task="multilabel"' in ln for ln in info) and len(info) == 4, f"/metrics names all four: {info}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    check(seen == [1, 2, 3, 4, 4], f"one reload per publish, none after (reload counts {seen})")


if __name__ == "__main__":
    sys.exit(main())

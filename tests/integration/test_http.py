#!/usr/bin/env python3
"""Integration test: train on a slice of music_genre_50k with the real trainer, start the real
timbre-serve on a free loopback port, and check every endpoint over HTTP, errors included.
Also checks that predictions served after loading from SQLite equal the trainer's in-memory
predictions bit for bit, and that the server refuses a missing, corrupt or newer database."""
import argparse
import array
import concurrent.futures
import csv
import gzip
import http.client
import json
import math
import os
import shutil
import signal
import socket
import threading
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

PASSED = 0
FAILED = 0


def check(cond, what):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print(f"FAIL: {what}", file=sys.stderr)


class Client:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, raw=None, chunked=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if chunked:
            conn.request(method, path, body=iter([data]), headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return resp.status, parsed, resp.headers

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)


def is_error(status, body, code, expected_status, field=None):
    ok = status == expected_status and isinstance(body, dict) and set(body) == {"error"}
    ok = ok and body["error"].get("code") == code and isinstance(body["error"].get("message"), str)
    if field is not None:
        ok = ok and body["error"].get("field") == field
    return ok


def write_slices(src, tmp):
    """Every 25th row for training (2,000 rows, all 10 genres), another 40 rows to predict."""
    with gzip.open(src, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if any(r)]
    train = [r for i, r in enumerate(body) if i % 25 == 0]
    predict = [r for i, r in enumerate(body) if i % 1250 == 7]
    paths = {}
    for name, part in (("train.csv", train), ("predict.csv", predict)):
        paths[name] = os.path.join(tmp, name)
        with open(paths[name], "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(part)
    return paths, header, predict, train[3]


def feature_value(text):
    """A CSV cell as a client would send it: a number when it is one, else the string."""
    try:
        return float(text)
    except ValueError:
        return text


def start_server(server, db, tmp, extra=(), wrapper=()):
    """The server's stderr (log and access log) goes to proc.log_path: a pipe nobody reads would fill.
    `wrapper`: a command that runs the server (seccomp-exec)."""
    stamp = time.monotonic_ns()
    port_file, log_path = os.path.join(tmp, f"port-{stamp}"), os.path.join(tmp, f"server-{stamp}.log")
    proc = subprocess.Popen([*wrapper, server, "--db", db, "--listen", "127.0.0.1:0", "--port-file", port_file,
                             "--threads", "2", *extra], stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    proc.log_path = log_path
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, None
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, int(open(port_file).read())
        time.sleep(0.05)
    proc.kill()
    return proc, None


def stop_server(proc, timeout=15):
    """SIGTERM, then the exit code; None when it did not exit in time (it is killed)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def train_small(a, train_csv, tmp):
    """A database with every default task, from 10-tree forests on train_csv; its path."""
    db = os.path.join(tmp, "timbre.db")
    t = subprocess.run([a.trainer, "--data", train_csv, "--db", db, "--model", "rf", "--trees", "10",
                        "--threads", "2", "--log-level", "warn"], capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"trainer: {t.stderr[-1000:]}")
    return db


def refuses(server, db, tmp, needle, what, extra=()):
    proc = subprocess.run([server, "--db", db, "--listen", "127.0.0.1:0", *extra], capture_output=True, text=True,
                          timeout=30)
    check(proc.returncode == 1 and needle in proc.stderr, f"{what}: exit {proc.returncode}, stderr {proc.stderr!r}")


def test_arguments(extra=()):
    """The integration tests' common flags, plus the `extra` required flags."""
    ap = argparse.ArgumentParser()
    for flag in ("--trainer", "--server", "--find-data", *extra):
        ap.add_argument(flag, required=True)
    return ap.parse_args()


def with_music_genre(a, prefix, fn):
    """fn(path of music_genre_50k, a scratch directory removed afterwards); 1 when the data is missing."""
    data = subprocess.run(["bash", a.find_data, "music_genre_50k.csv.gz"], capture_output=True, text=True)
    if data.returncode != 0:
        print(f"cannot find the data: {data.stderr}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        return fn(data.stdout.strip(), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    a = test_arguments(("--seccomp-exec",))
    return with_music_genre(a, "timbre-it-", lambda data, tmp: run(a, data, tmp))


def run(a, data, tmp):
    paths, header, predict_rows, catalog_row = write_slices(data, tmp)
    db = os.path.join(tmp, "timbre.db")
    report, preds = os.path.join(tmp, "report.json"), os.path.join(tmp, "preds.csv")

    # --- trainer ---
    t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--model", "rf", "--trees", "20", "--threads", "2",
                        "--cv", "3", "--report", report, "--predict", paths["predict.csv"], "--out", preds,
                        "--proba", "--embedding", "standardized"], capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"trainer exit {t.returncode}: {t.stderr[-2000:]}")
    if t.returncode != 0:
        return 1
    rep = json.load(open(report))
    check(set(rep) == {"genre", "popularity", "recommend"}, f"report has every task: {set(rep)}")
    r = rep["recommend"]
    check(r["embedding"] == "standardized" and "popularity" not in r["features"] and len(r["features"]) == 12,
          f"recommend inputs {r}")
    check(0.0 < r["metrics"]["genre_hit_at_10"] < 1.0 and r["metrics"]["n_queries"] == 400
          and r["metrics"]["n_pool"] == 1600 and r["metrics"]["n_tracks"] == 2000
          and r["metrics"]["index"] == "exact", f"recommend metrics (--index auto: exact under 500,000 tracks) {r}")
    g = rep["genre"]
    for key in ("task", "model", "n_train", "n_test", "n_features", "train_seconds", "predict_seconds", "metrics",
                "cv", "model_id", "version"):
        check(key in g, f"report key {key}")
    check(set(g["metrics"]) == {"accuracy", "micro_f1", "macro_f1", "top3_accuracy", "log_loss"}, "genre metrics")
    ev = g.get("evaluation", {})
    per = ev.get("per_genre", [])
    check(len(per) == 10 and sum(x["support"] for x in per) == 400 and sum(x["rows"] for x in ev["reliability"]) == 400
          and abs(sum(x["recall"] * x["support"] for x in per) / 400 - g["metrics"]["accuracy"]) < 1e-12
          and all(0 < x["share"] <= 1 and x["true"] != x["predicted"] for x in ev["confused"]),
          f"model-card numbers: per-genre recall weighed by support is the accuracy {ev}")
    pe = rep["popularity"].get("evaluation", {})
    check(sum(x["rows"] for x in pe.get("bins", [])) == rep["popularity"]["n_test"] and len(pe.get("sample", [])) == 300,
          f"popularity card numbers {pe.get('bins')}")
    imp = g.get("importances", {})
    means = [x["mean_abs"] for x in imp.get("features", [])]
    check(imp.get("space") == "probability" and 10 <= imp.get("rows", 0) <= 400 and len(means) == 13 and means[0] > 0
          and means == sorted(means, reverse=True), f"global importances (mean |contribution|) {imp}")
    check(set(rep["popularity"]["metrics"]) == {"mse", "rmse", "mae", "r2", "spearman"}, "popularity metrics")
    check(g["n_train"] + g["conformal"]["calibration_rows"] == 1600 and 100 < g["conformal"]["calibration_rows"] < 220
          and g["n_test"] == 400 and g["n_features"] == 13, f"split sizes {g}")
    sets = g["conformal"]["sets"]
    check(len(sets) == 32 and {r["method"] for r in sets} == {"lac", "aps", "aps-randomized", "raps"}
          and all(0.0 <= r["coverage"] <= 1.0 and 0.0 <= r["avg_set_size"] <= 10 for r in sets),
          f"conformal set table {sets[:2]}")
    ivs = rep["popularity"]["conformal"]["intervals"]
    check(len(ivs) == 8 and {r["method"] for r in ivs} == {"absolute", "normalized"}
          and all(0.5 < r["coverage"] <= 1.0 and r["mean_width"] > 0 for r in ivs), f"interval table {ivs[:2]}")
    check(g["twins"]["kept"] is False and g["twins"]["train_rows_with_twin"] == 0, f"no twins here {g['twins']}")
    check(0.3 < g["metrics"]["accuracy"] < 0.8, f"genre accuracy {g['metrics']['accuracy']}")
    check(g["cv"]["folds"] == 3 and 0.3 < g["cv"]["accuracy"]["mean"] < 0.8, "cv reported")
    check(abs(g["metrics"]["micro_f1"] - g["metrics"]["accuracy"]) < 1e-12, "micro-F1 equals accuracy")
    with open(preds, newline="") as f:
        pred_rows = list(csv.DictReader(f))
    check(len(pred_rows) == len(predict_rows), "one prediction per row")
    check(list(pred_rows[0])[:3] == ["track_id", "genre", "popularity"], f"prediction columns {list(pred_rows[0])[:3]}")

    # A malformed file changes nothing in the database.
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write(",".join(header) + "\n" + "1.0,\"unterminated\n")
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    t2 = subprocess.run([a.trainer, "--data", bad, "--db", db], capture_output=True, text=True)
    with sqlite3.connect(db) as con:
        after = con.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    check(t2.returncode == 1 and "bad.csv:2:5: quoted field 2 is never closed" in t2.stderr and before == after,
          f"malformed CSV refused: {t2.returncode} {t2.stderr!r}")
    # A file to label that lacks one of the model's inputs: that input counts as missing.
    nopop = os.path.join(tmp, "nopop.csv")
    with open(paths["predict.csv"], newline="") as f, open(nopop, "w", newline="") as g:
        rows = list(csv.reader(f))
        drop = rows[0].index("popularity")
        csv.writer(g).writerows([r[:drop] + r[drop + 1:] for r in rows])
    t6 = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", os.path.join(tmp, "nopop.db"), "--task", "genre",
                         "--model", "rf", "--trees", "5", "--calibration-fraction", "0", "--predict", nopop, "--out",
                         os.path.join(tmp, "nopop-out.csv")],
                        capture_output=True, text=True, timeout=120)
    with open(os.path.join(tmp, "nopop-out.csv")) as f:
        n_out = sum(1 for _ in f) - 1
    check(t6.returncode == 0 and "count as missing" in t6.stderr and n_out == len(predict_rows),
          f"labelling a file without popularity: {t6.returncode} {t6.stderr[-500:]!r}")
    t3 = subprocess.run([a.trainer, "--data", paths["train.csv"], "--model", "nope"], capture_output=True, text=True)
    check(t3.returncode == 2 and "known models" in t3.stderr, "unknown model refused")
    t4 = subprocess.run([a.trainer], capture_output=True, text=True)
    check(t4.returncode == 2 and "--data is required" in t4.stderr, "missing --data refused")

    # --- server ---
    users = os.path.join(tmp, "users.db")
    proc, port = start_server(a.server, db, tmp, ("--cors-origin", "http://app.example",
                                                  "--cors-origin", "http://other.example", "--user-db", users))
    check(port is not None, "server started")
    if port is None:
        print(open(proc.log_path).read(), file=sys.stderr)
        return 1
    c = Client(port)
    try:
        cors_and_openapi_checks(c)
        serve_checks(c, header, predict_rows, pred_rows, catalog_row)
        recommend_checks(c, db, header, catalog_row)
        recommendations_checks(c, db, header, catalog_row)
        genre_index_checks(a, paths, header, catalog_row, tmp)
        hnsw_index_checks(a, paths, tmp)
        explain_checks(a, c, paths, catalog_row, header, tmp)
        conformal_checks(c, header, catalog_row)
        batch_checks(c, header, catalog_row)
        kserve_checks(c, header, predict_rows)
        metrics_checks(c)
        track_checks(c, db)
        taste_checks(c, db, users)
    finally:
        rc = stop_server(proc)
        check(rc == 0, f"SIGTERM exits 0 (got {rc})")
    taste_limit_checks(a, db, tmp)
    api_key_checks(a, db, tmp)
    access_log_checks(proc.log_path)

    twins_checks(a, paths, header, predict_rows, tmp)
    reload_checks(a, paths, db, tmp)
    limits_checks(a, db, tmp)

    # --- a database with only an uncalibrated genre model: what needs more says so ---
    proc, port = start_server(a.server, os.path.join(tmp, "nopop.db"), tmp)
    check(port is not None, "server on a genre-only database started")
    if port is not None:
        try:
            c = Client(port)
            s, b, _ = c.request("GET", "/readyz")
            check(s == 200 and b["models"] == {"genre": True, "popularity": False, "recommend": False, "multilabel": False}, f"readyz {b}")
            s, b, _ = c.post("/v1/recommend", {"track_id": "x"})
            check(is_error(s, b, "unavailable", 503), f"recommend without an index {s} {b}")
            s, b, _ = c.post("/v1/genre/set", {"features": {"tempo": 120}})
            check(is_error(s, b, "unavailable", 503) and "calibration" in b["error"]["message"],
                  f"genre set without calibration {s} {b}")
            s, b, _ = c.post("/v1/popularity", {"features": {"tempo": 120}, "alpha": 0.1})
            check(is_error(s, b, "unavailable", 503), f"popularity without a model {s} {b}")
            s, b, _ = c.request("GET", "/v1/tracks?q=a&limit=1")
            check(s == 200 and len(b["tracks"]) == 1, f"track search without an index {s} {b}")
            big = socket.create_connection(("127.0.0.1", port), timeout=10)
            big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            check(big.recv(64).startswith(b"HTTP/1.1 431"), "headers over --max-header-bytes: 431")
            big.close()
            # A client that never finishes its request must not hold up a stop.
            slow = socket.create_connection(("127.0.0.1", port), timeout=10)
            slow.sendall(b"POST /v1/genre HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            time.sleep(0.2)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=15)
            check(rc == 0 and time.monotonic() - t0 < 5, f"SIGTERM with a stalled client: exit {rc} "
                  f"after {time.monotonic() - t0:.1f}s")
            slow.close()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)

    # --- gradient boosting, which routes missing values itself: same bit-for-bit contract ---
    served_as_trained(a, tmp, paths, header, predict_rows, "gbdt", ["--rounds", "40"])

    # --- the neural network on principal components: the same bit-for-bit contract ---
    mdb = served_as_trained(a, tmp, paths, header, predict_rows, "mlp",
                            ["--hidden", "32,16", "--epochs", "8", "--pca", "0.9"])
    if mdb:
        with sqlite3.connect(mdb) as con:
            stored = json.loads(con.execute("SELECT params FROM models WHERE task = 'genre'").fetchone()[0])
        check(stored["pca"]["explained_variance"] >= 0.9 and stored["pca"]["components"] < 13
              and stored["hidden"] == [32, 16], f"mlp + pca params {stored}")

    # --- multi-task: both heads on one trunk, compared with the single-task networks on the same rows ---
    trep = os.path.join(tmp, "multitask.json")
    t8 = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", os.path.join(tmp, "mt.db"), "--model", "mlp",
                         "--multitask", "0.5", "--hidden", "16", "--epochs", "4", "--task", "all",
                         "--calibration-fraction", "0", "--threads", "2", "--report", trep],
                        capture_output=True, text=True, timeout=300)
    check(t8.returncode == 0 and "single-task network on the same rows" in t8.stderr,
          f"multitask trainer exit {t8.returncode}: {t8.stderr[-1500:]}")
    if t8.returncode == 0:
        tr = json.load(open(trep))
        check("popularity" not in tr["genre"]["features"], "the multi-task genre network takes no popularity input")
        # Regression (issue 17): the report called the network's epochs "trees" (ops->n_trees
        # returned epochs for the mlp). Each family's count is named by its unit now.
        g = tr["genre"]
        check("trees" not in g and 1 <= g.get("epochs", 0) <= 4, f"mlp counts epochs: {g}")
        with sqlite3.connect(os.path.join(tmp, "mt.db")) as con:
            stored = json.loads(con.execute("SELECT params FROM models WHERE task = 'genre' ORDER BY id DESC").fetchone()[0])
        check(stored.get("epochs_max") == 4 and 1 <= stored.get("epochs_fitted", 0) <= 4 and "trees_kept" not in stored,
              f"mlp params name epochs: {stored}")
        check(set(tr["genre"]["single_task"]["metrics"]) == set(tr["genre"]["metrics"])
              and set(tr["popularity"]["single_task"]["metrics"]) == set(tr["popularity"]["metrics"])
              and tr["genre"]["single_task"]["metrics"] != tr["genre"]["metrics"], "single-task comparison reported")
    t9 = subprocess.run([a.trainer, "--data", paths["train.csv"], "--multitask", "0.5"], capture_output=True, text=True)
    check(t9.returncode == 2 and "--model mlp" in t9.stderr, f"--multitask without mlp refused: {t9.stderr!r}")

    # --- start-up refusals ---
    refuses(a.server, os.path.join(tmp, "missing.db"), tmp, "no such database", "missing database")
    garbage = os.path.join(tmp, "garbage.db")
    with open(garbage, "w") as f:
        f.write("not a database at all, but long enough to look like a header" * 4)
    refuses(a.server, garbage, tmp, "not a valid SQLite database", "garbage database")
    # A copy of the good database spoilt by one statement each.
    for name, sql, needle, what in (
            ("newer", "PRAGMA user_version = 99", "newer than this binary", "newer schema"),
            ("broken", "UPDATE models SET blob = CAST('XXXXnot-a-model' AS BLOB) WHERE task = 'genre' AND published = 1",
             "wrong magic", "corrupt model blob"),
            ("holed", "DELETE FROM index_rows WHERE row = 5", "not numbered", "index with a missing row"),
            ("orphan", "UPDATE index_rows SET track_id = '0000-not-in-catalog' WHERE row = 0", "not in the catalog",
             "index row without a catalog track")):
        spoilt = os.path.join(tmp, f"{name}.db")
        shutil.copy(db, spoilt)
        with sqlite3.connect(spoilt) as con:
            con.execute(sql)
        refuses(a.server, spoilt, tmp, needle, what)
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


def cors_and_openapi_checks(c):
    s, b, h = c.request("GET", "/healthz", headers={"Origin": "http://other.example"})
    check(s == 200 and h.get("Access-Control-Allow-Origin") == "http://other.example" and h.get("Vary") == "Origin",
          f"CORS for a listed origin: {dict(h)}")
    s, b, h = c.request("GET", "/healthz", headers={"Origin": "http://evil.example"})
    check(s == 200 and "Access-Control-Allow-Origin" not in h, "no CORS headers for an unlisted origin")
    s, b, h = c.request("OPTIONS", "/v1/genre", headers={"Origin": "http://app.example",
                                                        "Access-Control-Request-Method": "POST"})
    check(s == 204 and h.get("Access-Control-Allow-Methods") == "POST, OPTIONS"
          and h.get("Access-Control-Allow-Headers") == "Content-Type, Authorization, X-API-Key"
          and h.get("Access-Control-Allow-Origin") == "http://app.example" and h.get("Allow") == "POST, OPTIONS",
          f"preflight {s} {dict(h)}")
    s, b, h = c.request("OPTIONS", "/v1/tracks/abc")
    check(s == 204 and h.get("Allow") == "GET, HEAD, OPTIONS", f"OPTIONS on a parameterized path {s} {dict(h)}")
    s, b, _ = c.request("OPTIONS", "/v1/nothing")
    check(is_error(s, b, "not_found", 404), f"OPTIONS on an unknown path {s} {b}")
    s, b, h = c.post("/v1/genre", {"features": {"tempo": "fast"}}, headers={"Origin": "http://app.example"})
    check(s == 400 and h.get("Access-Control-Allow-Origin") == "http://app.example", "CORS headers on errors too")
    s, b, _ = c.request("GET", "/openapi.json")
    check(s == 200 and b["openapi"].startswith("3.") and "/v1/recommend" in b["paths"]
          and "post" in b["paths"]["/v1/genre/set"], f"openapi.json {s}")
    s, b, _ = c.request("GET", "/healthz", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
    check(s == 200, "request through a proxy")


def batch_checks(c, header, catalog_row):
    col = {name: i for i, name in enumerate(header)}
    tid = catalog_row[col["instance_id"]]
    singles = [{"track_id": tid}, {"features": {"tempo": 120, "energy": 0.9}}, {"features": {"danceability": 0.3}}]
    s, b, _ = c.post("/v1/genre", {"instances": singles})
    expected = [c.post("/v1/genre", one)[1] for one in singles]
    check(s == 200 and b["predictions"] == expected, f"genre batch equals single requests {s}")
    s, b, _ = c.post("/v1/popularity", {"instances": [dict(one, alpha=0.1) for one in singles]})
    expected = [c.post("/v1/popularity", dict(one, alpha=0.1))[1] for one in singles]
    check(s == 200 and b["predictions"] == expected, f"popularity batch with intervals {s}")
    s, b, _ = c.post("/v1/genre/set", {"instances": [dict(one, alpha=0.2) for one in singles]})
    expected = [c.post("/v1/genre/set", dict(one, alpha=0.2))[1] for one in singles]
    check(s == 200 and b["predictions"] == expected, f"genre set batch {s}")
    many = [{"features": {"tempo": 60 + i}} for i in range(1000)]
    s, b, _ = c.post("/v1/genre", {"instances": many})
    check(s == 200 and len(b["predictions"]) == 1000, f"a batch of 1000 rows {s}")
    for body, field, what in (
            ({"instances": many + [{"features": {}}]}, "instances", "1001 rows"),
            ({"instances": []}, "instances", "empty batch"),
            ({"instances": {"features": {}}}, "instances", "instances not a list"),
            ({"instances": singles, "alpha": 0.1}, "alpha", "a key beside instances"),
            ({"instances": [singles[0], {"features": {"tempo": "fast"}}]}, "instances[1].tempo", "bad feature in row 1"),
            ({"instances": [singles[0], singles[1], 7]}, "instances[2]", "a row that is not an object"),
            ({"instances": [{"track_id": tid, "track_id2": 1}]}, "instances[0].track_id2", "unknown key in a row")):
        s, b, _ = c.post("/v1/genre", body)
        check(is_error(s, b, "bad_request", 400, field), f"batch error, {what}: {s} {b}")
    s, b, _ = c.post("/v1/genre", {"instances": [singles[0], {"features": {"tempo": "fast"}}]})
    check(s == 400 and b["error"]["message"].startswith("instances[1]: "), "batch error message names the row")
    s, b, _ = c.post("/v1/genre", {"instances": [{"track_id": "no-such"}]})
    check(is_error(s, b, "not_found", 404, "instances[0].track_id"), f"unknown id in a batch {s} {b}")
    recs = [{"track_id": tid, "k": 3}, {"features": {"energy": 0.9}, "k": 2}]
    s, b, _ = c.post("/v1/recommend", {"instances": recs})
    expected = [c.post("/v1/recommend", one)[1] for one in recs]
    check(s == 200 and b["predictions"] == expected, f"recommend batch {s}")
    s, b, _ = c.post("/v1/recommend", {"instances": [recs[0], {"track_id": tid, "k": 0}]})
    check(is_error(s, b, "bad_request", 400, "instances[1].k"), f"bad k in a recommend batch {s} {b}")
    s, b, _ = c.post("/v1/genre/set", {"instances": [{"track_id": tid, "alpha": 3}]})
    check(is_error(s, b, "bad_request", 400, "instances[0].alpha"), f"bad alpha in a set batch {s} {b}")


KEY_NUMBER = {k: i for i, k in enumerate(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])}


def numeric_value(name, text):
    """A CSV cell as a number for a numeric-only protocol (None = missing)."""
    if text in ("?", ""):
        return None
    if name == "key" and text in KEY_NUMBER:
        return float(KEY_NUMBER[text])
    if name == "mode" and text in ("Major", "Minor"):
        return 1.0 if text == "Major" else 0.0
    return float(text)


def kserve_checks(c, header, predict_rows):
    s, b, _ = c.request("GET", "/v2/health/live")
    check(s == 200 and b == {"live": True}, f"v2 live {s} {b}")
    s, b, _ = c.request("GET", "/v2/health/ready")
    check(s == 200 and b == {"ready": True}, f"v2 ready {s} {b}")
    s, meta, _ = c.request("GET", "/v2/models/genre")
    features = meta["inputs"][0]["parameters"]["features"] if s == 200 else []
    check(s == 200 and meta["name"] == "genre-rf" and meta["versions"] == ["1"] and len(features) == 13
          and meta["inputs"][0]["shape"] == [-1, 13] and meta["outputs"][0]["shape"] == [-1, 10], f"v2 metadata {s} {meta}")
    s, b, _ = c.request("GET", "/v2/models/genre-rf/ready")
    check(s == 200 and b == {"name": "genre-rf", "ready": True}, f"v2 model ready {s} {b}")
    s, b, _ = c.request("GET", "/v2/models/nope")
    check(s == 404 and isinstance(b.get("error"), str), f"v2 unknown model {s} {b}")
    col = {name: i for i, name in enumerate(header)}
    rows = predict_rows[:4]
    data = [[numeric_value(f, r[col[f]]) for f in features] for r in rows]
    s, b, _ = c.post("/v2/models/genre/infer", {"id": "q1", "inputs": [{"name": "input", "shape": [len(rows), 13],
                                                                       "datatype": "FP32", "data": data}]})
    ok = s == 200 and b["model_name"] == "genre-rf" and b["id"] == "q1" and b["outputs"][0]["shape"] == [len(rows), 10]
    if ok:
        probs, labels = b["outputs"][0]["data"], b["outputs"][1]["data"]
        classes = c.request("GET", "/v1/models")[1]["models"][0]["classes"]
        for i, r in enumerate(rows):
            one = c.post("/v1/genre", {"features": {f: feature_value(r[col[f]]) for f in features}})[1]
            ok &= labels[i] == one["genre"]
            for e in one["probabilities"]:
                ok &= abs(probs[i * 10 + classes.index(e["genre"])] - e["probability"]) < 1e-6
    check(ok, f"v2 infer equals /v1/genre: {s} {b if s != 200 else ''}")
    flat = [v for row in data for v in row]
    s, b, _ = c.post("/v2/models/popularity/infer", {"inputs": [{"name": "input", "shape": [len(rows), 13],
                                                               "datatype": "FP64", "data": flat}]})
    check(s == 400, "popularity takes 12 features, not 13")
    pdata = [[numeric_value(f, r[col[f]]) for f in features if f != "popularity"] for r in rows]
    s, b, _ = c.post("/v2/models/popularity/infer", {"inputs": [{"name": "input", "shape": [len(rows), 12],
                                                               "datatype": "FP64", "data": pdata}]})
    check(s == 200 and b["outputs"][0]["name"] == "popularity" and b["outputs"][0]["shape"] == [len(rows)]
          and len(b["outputs"][0]["data"]) == len(rows), f"v2 popularity {s} {b}")
    base = {"name": "input", "shape": [1, 13], "datatype": "FP32", "data": data[0]}
    for body, what in (({"inputs": [dict(base, shape=[1, 12])]}, "wrong shape"),
                       ({"inputs": [dict(base, shape=[1001, 13])]}, "too many rows"),
                       ({"inputs": [dict(base, data=data[0][:-1])]}, "short data"),
                       ({"inputs": [dict(base, data=data[0] + [1.0])]}, "long data"),
                       ({"inputs": [dict(base, data=["x"] * 13)]}, "non-numeric data"),
                       ({"inputs": [dict(base, datatype="INT32")]}, "datatype"),
                       ({"inputs": [base, base]}, "two tensors"),
                       ({"inputs": []}, "no tensor"),
                       ({"inputs": [base], "extra": 1}, "unknown key"),
                       ({}, "no inputs")):
        s, b, _ = c.post("/v2/models/genre/infer", body)
        check(s == 400 and isinstance(b, dict) and isinstance(b.get("error"), str), f"v2 infer {what}: {s} {b}")
    s, b, _ = c.post("/v2/models/nope/infer", {"inputs": [base]})
    check(s == 404 and isinstance(b.get("error"), str), f"v2 infer unknown model {s} {b}")


def metrics_checks(c):
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    check(resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/plain; version=0.0.4"),
          f"metrics {resp.status}")
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    genre_ok = values.get('timbre_requests_total{route="/v1/genre",method="POST",status="200"}', 0)
    check(genre_ok >= 5, f"genre requests counted: {genre_ok}")
    check(values.get('timbre_requests_total{route="/v1/recommend",method="POST",status="400"}', 0) >= 10,
          "recommend 400s counted")
    check(values.get('timbre_requests_total{route="(none)",method="*",status="404"}', 0) >= 1, "unknown routes counted")
    inf = values.get('timbre_request_duration_seconds_bucket{route="/v1/genre",method="POST",le="+Inf"}')
    count = values.get('timbre_request_duration_seconds_count{route="/v1/genre",method="POST"}')
    check(inf is not None and inf == count and count >= genre_ok, f"latency histogram {inf} {count}")
    buckets = [v for k, v in values.items()
               if k.startswith('timbre_request_duration_seconds_bucket{route="/v1/genre",method="POST"')]
    check(buckets == sorted(buckets), "histogram buckets are cumulative")
    check(values.get("timbre_requests_in_flight", 0) >= 1, "in-flight gauge")
    check(any(k.startswith('timbre_model_info{task="genre",kind="rf",name="genre-rf",version="1"') for k in values)
          and any(k.startswith('timbre_model_info{task="recommend"') for k in values), "model versions exposed")
    check(values.get("timbre_process_resident_memory_bytes", 0) > 1e6 and values.get("timbre_catalog_tracks") == 2000,
          "process memory and catalog size")


def access_log_checks(path):
    lines = []
    for line in open(path, encoding="utf-8"):  # strict: an ill-formed byte fails the test
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                check(False, f"access log line is not JSON: {line!r}")
    check(len(lines) > 100 and all({"time", "method", "path", "status", "bytes", "us", "client"} <= set(r)
                                   for r in lines), f"access log: {len(lines)} lines")
    check(any(r["path"] == "/healthz" and r.get("forwarded_for") == "203.0.113.7, 10.0.0.1" and r["client"] == "127.0.0.1"
              for r in lines), "access log records X-Forwarded-For and the client address")
    check(any(r["method"] == "POST" and r["status"] == 400 and r["bytes"] > 0 for r in lines), "access log statuses")
    check(any(r["method"] == "OPTIONS" and r["status"] == 204 and r["bytes"] == 0 for r in lines), "preflights logged")
    check(any(r["path"] == "/v1/tracks/\ufffd\ufffdx" and r["status"] == 404 for r in lines),
          "a path with raw bytes is logged as valid UTF-8")
    check(any(r["path"] == '/v1/tracks/a"b\\c\x01d' and r["status"] == 404 for r in lines),
          "a path with a quote, a backslash and a control byte is logged escaped")
    check(any(r["method"] == "HEAD" and r["status"] == 200 and r["bytes"] == 0 for r in lines), "HEAD logs no body bytes")


def wait_for(fn, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def metric(c, name):
    for line in open_metrics(c):
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def reload_checks(a, paths, db, tmp):
    """Hot reload under load: SIGHUP, a newly published model picked up by --watch, and a broken
    new model refused while the old one keeps serving; no request fails throughout."""
    rdb = os.path.join(tmp, "reload.db")
    shutil.copy(db, rdb)
    proc, port = start_server(a.server, rdb, tmp, ("--watch", "1", "--no-access-log"))
    check(port is not None, "reload server started")
    if port is None:
        return
    c = Client(port)
    statuses, stop = [], threading.Event()

    def load():
        lc = Client(port)
        while not stop.is_set():
            statuses.append(lc.post("/v1/genre", {"features": {"tempo": 100, "energy": 0.5}})[0])

    worker = threading.Thread(target=load)
    worker.start()
    try:
        version = lambda: c.request("GET", "/v1/models")[1]["models"][0]["version"]
        proc.send_signal(signal.SIGHUP)
        check(wait_for(lambda: metric(c, 'timbre_reloads_total{outcome="ok"}') == 1), "SIGHUP reloaded")
        check(version() == 1, "same version after SIGHUP")
        t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", rdb, "--task", "genre", "--model", "rf",
                            "--trees", "5", "--threads", "1", "--log-level", "warn"], capture_output=True, text=True,
                           timeout=120)
        check(t.returncode == 0, f"retrain into the served database: {t.stderr[-500:]}")
        check(wait_for(lambda: version() == 2), "--watch picked up version 2")
        check(any(l.startswith('timbre_model_info{task="genre",kind="rf",name="genre-rf",version="2"')
                  for l in open_metrics(c)), "metrics show version 2")
        with sqlite3.connect(rdb) as con:
            con.execute("UPDATE models SET published = 0 WHERE task = 'genre'")
            con.execute("INSERT INTO models (task, kind, name, version, feature_schema, blob, published) "
                        "VALUES ('genre', 'rf', 'genre-rf', 3, '[]', CAST('XXXXbroken' AS BLOB), 1)")
        check(wait_for(lambda: metric(c, 'timbre_reloads_total{outcome="failed"}') == 1), "broken model refused")
        time.sleep(2.5)  # --watch does not retry the same broken set
        check(metric(c, 'timbre_reloads_total{outcome="failed"}') == 1, "a failed set is not retried")
        check(version() == 2, "version 2 keeps serving after a refused reload")
    finally:
        stop.set()
        worker.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    bad = [s for s in statuses if s != 200]
    check(len(statuses) > 50 and not bad, f"no failed request during reloads: {len(statuses)} sent, {len(bad)} not 200")
    log = open(proc.log_path).read()
    check("reload (a newly published model) refused, still serving the previous models" in log, "refusal logged")


def limits_checks(a, db, tmp):
    """Limits set by flags take effect."""
    proc, port = start_server(a.server, db, tmp, ("--max-k", "5", "--max-batch-rows", "2", "--max-body-bytes", "2048",
                                                  "--no-access-log", "--sched-slice-us", "300"))
    check(port is not None, "server with small limits started")
    if port is None:
        return
    try:
        slices = thread_slices(proc.pid)
        if slices is not None:  # a kernel that takes slice requests (6.12+) and shows them
            check(slices.get("tb-request") == {300000} and 300000 not in slices.get("timbre-serve", set()),
                  f"--sched-slice-us 300: the request threads' slices, and only theirs: {slices}")
        c = Client(port)
        tid = index_from_db(db)[1][3]
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 6})
        check(is_error(s, b, "bad_request", 400, "k") and "1 to 5" in b["error"]["message"], f"--max-k {s} {b}")
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 5})
        check(s == 200 and len(b["tracks"]) == 5, "k at the limit")
        s, b, _ = c.post("/v1/genre", {"instances": [{"features": {}}] * 3})
        check(is_error(s, b, "bad_request", 400, "instances") and "1 to 2" in b["error"]["message"],
              f"--max-batch-rows {s} {b}")
        s, b, _ = c.post("/v1/genre", {"instances": [{"features": {}}] * 2})
        check(s == 200 and len(b["predictions"]) == 2, "batch at the limit")
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "pad": "x" * 3000})
        check(is_error(s, b, "too_large", 413), f"--max-body-bytes {s} {b}")
        s, b, _ = c.post("/v1/genre", {"features": {}, "pad": "x" * 3000})
        check(s == 400 and b["error"]["field"] == "pad", "batch routes keep their own (larger) limit")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    bad = subprocess.run([a.server, "--db", db, "--max-k", "0"], capture_output=True, text=True, timeout=30)
    check(bad.returncode == 2 and "--max-k" in bad.stderr, f"--max-k 0 refused: {bad.stderr!r}")
    bad = subprocess.run([a.server, "--db", db, "--sched-slice-us", "50"], capture_output=True, text=True, timeout=30)
    check(bad.returncode == 2 and "--sched-slice-us" in bad.stderr, f"--sched-slice-us 50 refused: {bad.stderr!r}")
    slice_under_seccomp_checks(a, db, tmp)


def slice_under_seccomp_checks(a, db, tmp):
    """A hardened systemd unit (SystemCallFilter=~@resources) kills a process that calls
    sched_setattr: under a filter the server asks for no slice unless told to."""
    for action, extra, what in (("kill", (), "a killing filter, no flag: no slice asked, the server serves"),
                                ("errno", ("--sched-slice-us", "300"), "a refusing filter and the flag: refused, serves")):
        proc, port = start_server(a.server, db, tmp, ("--no-access-log", *extra), wrapper=(a.seccomp_exec, action))
        try:
            ok = port is not None and Client(port).request("GET", "/healthz")[0] == 200
            slices = thread_slices(proc.pid) if ok else None
            ok = ok and (slices is None or 300000 not in slices.get("tb-request", set()) and 100000 not in
                         slices.get("tb-request", set()))
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=15)
        log = open(proc.log_path).read()
        said = "seccomp filter is in place" if action == "kill" else "the kernel refused a 300 us scheduler slice"
        check(ok and rc == 0 and said in log, f"{what}: port {port}, exit {rc}, log {log[-500:]!r}")
    # The filter is real: asked for a slice explicitly, the process dies of SIGSYS.
    proc, port = start_server(a.server, db, tmp, ("--sched-slice-us", "300"), wrapper=(a.seccomp_exec, "kill"))
    if proc.poll() is None:
        proc.kill()
    check(port is None and proc.wait(timeout=15) == -signal.SIGSYS, "the killing filter kills an explicit slice request")


def thread_slices(pid):
    """{thread name: {scheduler slice in ns}} from /proc, or None where the kernel predates slice
    requests (6.12) or does not show them."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
        if (major, minor) < (6, 12):
            return None
        out = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/sched") as f:
                line = next((l for l in f if l.startswith("se.slice")), None)
            if line is None:
                return None
            out.setdefault(name, set()).add(int(float(line.split(":")[1])))
        return out
    except (OSError, ValueError):
        return None


def open_metrics(c):
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return text.splitlines()


def index_from_db(db):
    """The published index as Python lists, and the catalog rows by id."""
    with sqlite3.connect(db) as con:
        n, dim, blob = con.execute(
            "SELECT v.n_rows, v.dim, v.vectors FROM index_vectors v JOIN models m ON m.id = v.model_id "
            "WHERE m.task = 'recommend' AND m.published = 1").fetchone()
        ids = [r[0] for r in con.execute(
            "SELECT track_id FROM index_rows r JOIN models m ON m.id = r.model_id "
            "WHERE m.task = 'recommend' AND m.published = 1 ORDER BY row")]
        tracks = {r[0]: {"track_name": r[1], "artists": r[2], "genres": json.loads(r[3]), "popularity": r[4]}
                  for r in con.execute("SELECT track_id, track_name, artists, genres, popularity FROM tracks")}
    vec = array.array("f")
    vec.frombytes(blob)
    return [vec[i * dim:(i + 1) * dim] for i in range(n)], ids, tracks



def song_key(t):
    """What the catalog calls one song: the title (the name before " - ", " (" or " [") and the
    artists, ignoring case (core/catalog.c)."""
    name = t["track_name"].lower()
    cut = min([i for i in (name.find(" - ", 1), name.find(" (", 1), name.find(" [", 1)) if i > 0], default=len(name))
    return name[:cut], t["artists"].lower()

def expected_top(vectors, ids, tracks, qv, k, skip):
    """Naive exact top-k by cosine (rows are unit vectors), ties to the smaller id; skip(id) drops rows;
    one track per song."""
    scored = sorted(((-sum(a * b for a, b in zip(v, qv)), i) for i, v in enumerate(vectors)), key=lambda t: t)
    out, songs = [], set()
    for neg, i in scored:
        tid = ids[i]
        t = tracks[tid]
        song = song_key(t)
        if skip(tid) or song in songs:
            continue
        songs.add(song)
        out.append((tid, -neg))
        if len(out) == k:
            break
    return out


def same_ranking(got, want):
    """Equal ids in order, except where neighbouring scores tie (within float32 rounding)."""
    if len(got) != len(want):
        return False
    for (gid, gs), (wid, ws) in zip(got, want):
        if abs(gs - ws) > 1e-5:
            return False
        if gid != wid and not any(abs(ws - s2) < 1e-5 and gid == w2 for w2, s2 in want):
            return False
    return True


def recommend_checks(c, db, header, catalog_row):
    vectors, ids, tracks = index_from_db(db)
    col = {name: i for i, name in enumerate(header)}
    tid = catalog_row[col["instance_id"]]
    row = ids.index(tid)
    me = tracks[tid]
    my_song = song_key(me)

    s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 7})
    want = expected_top(vectors, ids, tracks, vectors[row], 7,
                        lambda t: t == tid or song_key(tracks[t]) == my_song)
    got = [(t["track_id"], t["score"]) for t in b["tracks"]] if s == 200 else []
    check(s == 200 and same_ranking(got, want), f"recommend by id equals a naive scan: {got} vs {want}")
    check(s == 200 and b["track_id"] == tid and b["k"] == 7 and b["model"]["name"] == "recommend-standardized",
          f"recommend reply {s} {b and {k: v for k, v in b.items() if k != 'tracks'}}")
    check(s == 200 and all(set(t) == {"track_id", "track_name", "artists", "genres", "popularity", "score"}
                           for t in b["tracks"]), "recommend track fields")
    check(s == 200 and all(b["tracks"][i]["score"] >= b["tracks"][i + 1]["score"] for i in range(6)), "best first")
    s, b, _ = c.post("/v1/recommend", {"track_id": tid})
    check(s == 200 and len(b["tracks"]) == 10, f"k defaults to 10: {s}")

    # By features: the track's own features find the track itself first (nothing excluded).
    feats = {f: feature_value(catalog_row[col[f]]) for f in ("danceability", "energy", "loudness", "speechiness",
                                                              "acousticness", "instrumentalness", "liveness",
                                                              "valence", "tempo", "duration_ms", "key", "mode")}
    s, b, _ = c.post("/v1/recommend", {"features": feats, "k": 3})
    check(s == 200 and b["tracks"][0]["track_id"] == tid and abs(b["tracks"][0]["score"] - 1.0) < 1e-5,
          f"recommend by own features {s} {b}")
    s, b, _ = c.post("/v1/recommend", {"features": {"energy": 0.9}, "k": 3})
    check(s == 200 and len(b["tracks"]) == 3 and "tempo" in b["imputed"], f"recommend with imputed features {s}")

    # Filters.
    genre = me["genres"][0]
    s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 10, "genres": [genre]})
    check(s == 200 and len(b["tracks"]) == 10 and all(genre in t["genres"] for t in b["tracks"]),
          f"genre filter {s}")
    want = expected_top(vectors, ids, tracks, vectors[row], 10,
                        lambda t: t == tid or genre not in tracks[t]["genres"]
                        or song_key(tracks[t]) == my_song)
    got = [(t["track_id"], t["score"]) for t in b["tracks"]] if s == 200 else []
    check(same_ranking(got, want), "genre-filtered top-10 equals a naive scan")
    s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 10, "min_popularity": 60})
    check(s == 200 and b["tracks"] and all(t["popularity"] >= 60 for t in b["tracks"]), f"min_popularity {s}")
    s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 20, "exclude_same_artist": True})
    mine = set(me["artists"].split(";"))
    check(s == 200 and all(not (set(t["artists"].split(";")) & mine) for t in b["tracks"]), f"exclude artist {s}")

    # Errors.
    for body, status, field, what in (
            ({"track_id": "no-such-track"}, 404, "track_id", "unknown id"),
            ({"track_id": tid, "k": 0}, 400, "k", "k = 0"),
            ({"track_id": tid, "k": 101}, 400, "k", "k over the limit"),
            ({"track_id": tid, "k": 2.5}, 400, "k", "fractional k"),
            ({"track_id": tid, "k": "5"}, 400, "k", "string k"),
            ({"track_id": tid, "genres": ["polka-step"]}, 400, "genres", "unknown genre"),
            ({"track_id": tid, "genres": []}, 400, "genres", "empty genre filter"),
            ({"track_id": tid, "genres": "Rock"}, 400, "genres", "genre filter not a list"),
            ({"track_id": tid, "genres": [3]}, 400, "genres", "genre not a string"),
            ({"track_id": tid, "min_popularity": 150}, 400, "min_popularity", "min_popularity over 100"),
            ({"track_id": tid, "min_popularity": "high"}, 400, "min_popularity", "min_popularity not a number"),
            ({"track_id": tid, "exclude_same_artist": "yes"}, 400, "exclude_same_artist", "non-boolean flag"),
            ({"features": feats, "exclude_same_artist": True}, 400, "exclude_same_artist", "artist without a track"),
            ({"track_id": tid, "limit": 3}, 400, "limit", "unknown key"),
            ({"features": {"popularity": 50}}, 400, "popularity", "popularity is not an embedding input"),
            ({"track_id": 12}, 400, "track_id", "numeric id"),
            ({}, 400, None, "no input")):
        s, b, _ = c.post("/v1/recommend", body)
        check(is_error(s, b, "not_found" if status == 404 else "bad_request", status, field), f"{what}: {s} {b}")
    s, b, _ = c.post("/v1/recommend", {"track_id": tid, "features": feats})
    check(is_error(s, b, "bad_request", 400), f"both inputs {s} {b}")
    s, b, h = c.request("GET", "/v1/recommend")
    check(s == 405 and h.get("Allow") == "POST", f"GET /v1/recommend {s}")

    # Concurrent requests (each runs its own BLAS product) give the sequential answers.
    probe = ids[::40][:48]
    sequential = [c.post("/v1/recommend", {"track_id": t, "k": 5})[1] for t in probe]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda t: c.post("/v1/recommend", {"track_id": t, "k": 5})[1], probe))
    check(parallel == sequential and all(r and len(r["tracks"]) == 5 for r in parallel),
          "concurrent recommendations equal sequential ones")


AUDIO = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness",
         "liveness", "valence", "tempo", "duration_ms", "time_signature", "explicit")


def unit(v):
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def recommendations_checks(c, db, header, catalog_row):
    """GET/POST /v1/recommendations: seeds of each kind against a naive scan, every target_/min_/max_
    parameter, the seed limit, max_per_artist and diversity on the returned lists, and the errors."""
    vectors, ids, tracks = index_from_db(db)
    with sqlite3.connect(db) as con:
        feats = {r[0]: json.loads(r[1]) for r in con.execute("SELECT track_id, features FROM tracks")}
    col = {name: i for i, name in enumerate(header)}
    tid = catalog_row[col["instance_id"]]
    row = ids.index(tid)
    me = tracks[tid]
    song = lambda t: song_key(tracks[t])  # noqa: E731
    get = lambda **q: c.request("GET", "/v1/recommendations?" + urllib.parse.urlencode(q))  # noqa: E731

    # One seed track: the query is its own vector; the track and its song's other releases never answer.
    s, b, _ = get(seed_tracks=tid, limit=7)
    want = expected_top(vectors, ids, tracks, vectors[row], 7, lambda t: t == tid or song(t) == song(tid))
    got = [(t["track_id"], t["score"]) for t in b["tracks"]] if s == 200 else []
    check(s == 200 and same_ranking(got, want), f"seed track equals a naive scan: {got} vs {want}")
    check(s == 200 and b["seeds"] == [{"type": "track", "id": tid}] and b["limit"] == 7 and b["candidates"] >= 7,
          f"seed reply {s} {b and {k: v for k, v in b.items() if k != 'tracks'}}")
    s, b, _ = get(seed_tracks=tid)
    check(s == 200 and len(b["tracks"]) == 20, f"limit defaults to 20 as Spotify's: {s}")

    # A genre seed is the unit mean of its tracks' vectors; seeds combine as the unit mean of theirs.
    genre = me["genres"][0]
    members = [vectors[i] for i, t in enumerate(ids) if genre in tracks[t]["genres"]]
    centroid = unit([sum(v[j] for v in members) for j in range(len(vectors[0]))])
    s, b, _ = get(seed_genres=genre, limit=5)
    want = expected_top(vectors, ids, tracks, centroid, 5, lambda t: False)
    got = [(t["track_id"], t["score"]) for t in b["tracks"]] if s == 200 else []
    check(s == 200 and same_ranking(got, want), f"seed genre equals a naive scan: {got} vs {want}")
    both = unit([a + g for a, g in zip(vectors[row], centroid)])
    s, b, _ = get(seed_tracks=tid, seed_genres=genre, limit=5)
    want = expected_top(vectors, ids, tracks, both, 5, lambda t: t == tid or song(t) == song(tid))
    got = [(t["track_id"], t["score"]) for t in b["tracks"]] if s == 200 else []
    check(s == 200 and same_ranking(got, want) and [x["type"] for x in b["seeds"]] == ["track", "genre"],
          f"track + genre seeds: {got} vs {want}")

    # POST: a feature seed (the track's own features find it first), and one seed of each kind.
    own = {f: feature_value(catalog_row[col[f]]) for f in ("danceability", "energy", "loudness", "speechiness",
                                                            "acousticness", "instrumentalness", "liveness",
                                                            "valence", "tempo", "duration_ms", "key", "mode")}
    s, b, _ = c.post("/v1/recommendations", {"seeds": [{"features": own}], "limit": 3})
    check(s == 200 and b["tracks"][0]["track_id"] == tid and abs(b["tracks"][0]["score"] - 1) < 1e-5
          and b["seeds"][0]["type"] == "features", f"feature seed {s} {b}")
    s, b, _ = c.post("/v1/recommendations", {"seeds": [{"track_id": tid}, {"genre": genre},
                                                       {"features": {"energy": 0.9}}], "limit": 4})
    check(s == 200 and len(b["tracks"]) == 4 and [x["type"] for x in b["seeds"]] == ["track", "genre", "features"]
          and "tempo" in b["seeds"][2]["imputed"], f"three kinds of seeds {s}")

    # Five seeds in all, not six (GET and POST).
    others = [t for t in ids if t != tid][:5]
    s, b, _ = get(seed_tracks=",".join(others[:4]), seed_genres=genre, limit=3)
    check(s == 200 and len(b["seeds"]) == 5, f"five seeds {s}")
    s, b, _ = get(seed_tracks=",".join(others), seed_genres=genre)
    check(is_error(s, b, "bad_request", 400, "seed_genres"), f"six seeds {s} {b}")
    s, b, _ = c.post("/v1/recommendations", {"seeds": [{"track_id": t} for t in others] + [{"genre": genre}]})
    check(is_error(s, b, "bad_request", 400, "seeds"), f"six POST seeds {s} {b}")

    # min_X / max_X filter and target_X ranks, for every audio attribute and popularity.
    value = lambda t, a: tracks[t]["popularity"] if a == "popularity" else feats[t].get(a)  # noqa: E731
    for a in AUDIO + ("popularity",):
        known = sorted(v for v in (value(t, a) for t in ids) if v is not None)
        if not known:  # not in this table: the bounds leave no track
            s, b, _ = get(seed_tracks=tid, **{f"min_{a}": 0, f"max_{a}": 1, f"target_{a}": 0.5})
            check(s == 200 and b["tracks"] == [], f"{a}: absent attribute filters every track {s}")
            continue
        lo, hi = known[len(known) // 4], known[3 * len(known) // 4]
        target = known[len(known) // 2]
        s, b, _ = get(seed_tracks=tid, limit=10, **{f"min_{a}": lo, f"max_{a}": hi, f"target_{a}": target})
        vals = [value(t["track_id"], a) for t in b["tracks"]] if s == 200 else []
        check(s == 200 and vals and all(lo <= v <= hi for v in vals), f"min_/max_{a} bound the list: {s} {vals}")
        mean = sum(known) / len(known)
        std = (sum((v - mean) ** 2 for v in known) / len(known)) ** 0.5 or 1.0
        rel_ok = s == 200 and all(abs(t["relevance"] - (t["score"] - 0.5 * abs(value(t["track_id"], a) - target) / std))
                                  < 1e-4 for t in b["tracks"])
        order_ok = s == 200 and all(b["tracks"][i]["relevance"] >= b["tracks"][i + 1]["relevance"] - 1e-12
                                    for i in range(len(b["tracks"]) - 1))
        check(rel_ok and order_ok, f"target_{a}: relevance = cosine - 0.5 |v - target| / std, best first")
    s, b, _ = c.post("/v1/recommendations", {"seeds": [{"track_id": tid}], "min_popularity": 50, "limit": 5})
    check(s == 200 and all(t["popularity"] >= 50 for t in b["tracks"]), f"POST min_popularity {s}")

    # max_per_artist and diversity, checked on the lists returned.
    s, b, _ = get(seed_tracks=tid, limit=30, max_per_artist=1)
    names = [n for t in b["tracks"] for n in t["artists"].split(";")] if s == 200 else [None]
    check(s == 200 and len(names) == len(set(names)), f"max_per_artist=1: no artist twice {s}")
    vec = dict(zip(ids, vectors))
    spread = lambda lst: sum(sum(x * y for x, y in zip(vec[p["track_id"]], vec[q["track_id"]]))  # noqa: E731
                             for i, p in enumerate(lst) for q in lst[i + 1:]) / max(1, len(lst) * (len(lst) - 1) / 2)
    s0, plain, _ = get(seed_tracks=tid, limit=10)
    s1, diverse, _ = get(seed_tracks=tid, limit=10, diversity=0.6)
    check(s0 == 200 and s1 == 200 and diverse["tracks"][0]["track_id"] == plain["tracks"][0]["track_id"]
          and spread(diverse["tracks"]) < spread(plain["tracks"]),
          "diversity keeps the best first and spreads the rest (lower mean pairwise similarity)")

    # Errors.
    for q, status, field, what in (
            ({"seed_tracks": "no-such-track"}, 404, "seed_tracks", "unknown seed track"),
            ({"seed_genres": "polka-step"}, 400, "seed_genres", "unknown seed genre"),
            ({"seed_tracks": tid, "min_tempo": 150, "max_tempo": 100}, 400, "min_tempo", "min above max"),
            ({"seed_tracks": tid, "limit": 0}, 400, "limit", "limit 0"),
            ({"seed_tracks": tid, "limit": 101}, 400, "limit", "limit over the cap"),
            ({"seed_tracks": tid, "diversity": 1.5}, 400, "diversity", "diversity over 1"),
            ({"seed_tracks": tid, "max_per_artist": 0}, 400, "max_per_artist", "max_per_artist 0"),
            ({"seed_tracks": tid, "target_energy": "high"}, 400, "target_energy", "non-numeric target"),
            ({"seed_tracks": tid, "target_loudness": "nan"}, 400, "target_loudness", "NaN target"),
            ({"seed_tracks": tid, "seed_artists": "x"}, 400, "seed_artists", "unknown parameter"),
            ({"seed_tracks": tid + ",,"}, 400, "seed_tracks", "empty item"),
            ({"limit": 5}, 400, "seeds", "no seeds")):
        s, b, _ = get(**q)
        check(is_error(s, b, "not_found" if status == 404 else "bad_request", status, field), f"GET {what}: {s} {b}")
    for body, status, field, what in (
            ({"seeds": [{"track_id": "no-such-track"}]}, 404, "seeds", "unknown seed track"),
            ({"seeds": []}, 400, "seeds", "empty seeds"),
            ({"seeds": [{"track_id": tid, "genre": genre}]}, 400, "seeds", "two kinds in one seed"),
            ({"seeds": [{"artist": "x"}]}, 400, None, "unknown seed kind"),
            ({"seeds": [{"genre": 3}]}, 400, "seeds", "numeric genre"),
            ({"seeds": [{"track_id": tid}], "min_energy": 0.9, "max_energy": 0.1}, 400, "min_energy", "min above max"),
            ({"seeds": [{"track_id": tid}], "limit": "5"}, 400, "limit", "string limit"),
            ({"seeds": [{"track_id": tid}], "k": 5}, 400, "k", "unknown key"),
            ({"limit": 5}, 400, "seeds", "no seeds")):
        s, b, _ = c.post("/v1/recommendations", body)
        check(is_error(s, b, "not_found" if status == 404 else "bad_request", status, field), f"POST {what}: {s} {b}")


def genre_index_checks(a, paths, header, catalog_row, tmp):
    """The default index where the table has genres: a classifier's genre probabilities beside the
    standardized features, catalog tracks by their known genres, the genre block kept sparse by the
    server. Its report, a by-id ranking equal to a naive scan of the stored vectors, feature queries."""
    db, report = os.path.join(tmp, "genre-index.db"), os.path.join(tmp, "genre-index.json")
    t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--task", "recommend", "--threads", "2",
                        "--report", report, "--log-level", "warn"], capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"genre index trainer: {t.stderr[-1000:]}")
    if t.returncode != 0:
        return
    r = json.load(open(report))
    m = r["metrics"]
    check(r["embedding"] == "genre" and m["dim"] == 10 + 12 and m["n_queries"] == 400
          and all(0.0 <= m[k] <= 1.0 for k in ("genre_hit_at_10", "genre_hit_at_10_other_artists", "coverage_at_10",
                                                "artist_share_at_10")), f"genre index report {r}")
    vectors, ids, tracks = index_from_db(db)
    col = {name: i for i, name in enumerate(header)}
    tid = catalog_row[col["instance_id"]]
    row = ids.index(tid)
    # A catalog track's genre block holds its known genres: equal weights, unit length overall.
    block = [x for x in vectors[row][:10] if x != 0.0]
    check(len(block) == len(tracks[tid]["genres"]) and abs(sum(x * x for x in vectors[row]) - 1.0) < 1e-5,
          f"stored vector of {tid}: genre block {block}")
    proc, port = start_server(a.server, db, tmp, ())
    check(port is not None, "server on the genre index")
    if port is None:
        return
    try:
        c = Client(port)
        me = song_key(tracks[tid])
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 8})
        want = expected_top(vectors, ids, tracks, vectors[row], 8,
                            lambda t: t == tid or song_key(tracks[t]) == me)
        got = [(x["track_id"], x["score"]) for x in b["tracks"]] if s == 200 else []
        check(s == 200 and same_ranking(got, want) and b["model"]["name"] == "recommend-genre",
              f"genre index by id equals a naive scan: {got} vs {want}")
        s, b, _ = c.post("/v1/recommend", {"features": {"energy": 0.9, "danceability": 0.7}, "k": 5})
        check(s == 200 and len(b["tracks"]) == 5 and all(-1.0 <= x["score"] <= 1.0 for x in b["tracks"]),
              f"genre index by features {s}")
        s, b, _ = c.request("GET", "/v1/recommendations?" + urllib.parse.urlencode(
            {"seed_genres": tracks[tid]["genres"][0], "limit": 5}))
        check(s == 200 and len(b["tracks"]) == 5, f"genre index, genre seed {s}")
    finally:
        stop_server(proc)


def hnsw_index_checks(a, paths, tmp):
    """--index hnsw: the approximate graph published with the index, its recall in the report, the
    server answering from it close to a naive scan, filtered queries holding only matching tracks
    (from the graph when its candidates meet the filter, else exactly), the same answers from the
    immutable snapshot a replica serves and from a copy of the database, a blob whose graph bytes were altered refused at start, and a
    corrupt new version refused by a running server that keeps serving the old one."""
    db, report = os.path.join(tmp, "hnsw.db"), os.path.join(tmp, "hnsw.json")
    snapshots = os.path.join(tmp, "hnsw.snapshots")
    t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--task", "recommend", "--index", "hnsw",
                        "--threads", "2", "--report", report, "--log-level", "warn", "--snapshots", snapshots],
                       capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"hnsw trainer: {t.stderr[-1000:]}")
    if t.returncode != 0:
        return
    m = json.load(open(report))["metrics"]
    check(m["index"] == "hnsw" and m["ann_recall_at_10"] >= 0.95 and m["ann_bytes"] > 0, f"hnsw report {m}")
    vectors, ids, tracks = index_from_db(db)
    with sqlite3.connect(db) as con:
        energy = dict(con.execute("SELECT track_id, json_extract(features, '$.energy') FROM tracks"))
    copy = os.path.join(tmp, "hnsw-copy.db")
    shutil.copy(db, copy)
    answers = []
    for served in (db, snapshots, copy):
        proc, port = start_server(a.server, served, tmp, ("--watch", "1"))
        check(port is not None, "server on the hnsw index")
        if port is None:
            return
        try:
            c = Client(port)
            answers.append(hnsw_answers(c, vectors, ids, tracks, energy, check_all=served == db))
            graph, exact = (metric(c, f'timbre_index_bytes{{kind="{k}"}}') for k in ("hnsw", "exact"))
            budget = metric(c, "timbre_memory_budget_bytes")
            check(graph and exact and graph > 0 and exact >= 4 * len(ids) * len(vectors[0]) and budget > 2 ** 28,
                  f"/metrics: index bytes (graph {graph}, exact {exact}) and the budget {budget}")
            if served == copy:
                corrupt_version_refused(c, copy)
        finally:
            stop_server(proc)
    check(len(answers) == 3 and answers[0] == answers[1] == answers[2] and len(answers[0]) == 60,
          "the snapshot and a copy of the database answer as the database, to the last bit of every score")
    refuses(a.server, db, tmp, "over the memory budget of 1 MB", "an index past --memory-budget-mb",
            ("--memory-budget-mb", "1"))
    proc, port = start_server(a.server, db, tmp, ("--exact-index",))
    check(port is not None, "server with --exact-index")
    if port is not None:
        try:
            c = Client(port)
            s, b, _ = c.request("GET", "/v1/models")
            rec = [x for x in b["models"] if x["task"] == "recommend"] if s == 200 else []
            s2, b2, _ = c.post("/v1/recommend", {"track_id": ids[0], "k": 3})
            check(rec and rec[0]["index"]["kind"] == "exact" and s2 == 200 and b2["index"] == "exact"
                  and metric(c, 'timbre_index_bytes{kind="hnsw"}') is None, f"--exact-index leaves the graph out {rec}")
        finally:
            stop_server(proc)
    # Alter one byte of the graph (the blob's last bytes are hnswlib's): its SHA-256 no longer matches.
    with sqlite3.connect(db) as con:
        blob = bytearray(con.execute("SELECT blob FROM models WHERE task = 'recommend'").fetchone()[0])
        blob[-100] ^= 0x5A
        con.execute("UPDATE models SET blob = ? WHERE task = 'recommend'", (bytes(blob),))
    refuses(a.server, db, tmp, "approximate index blob: its SHA-256 does not match", "altered hnsw graph")


def hnsw_answers(c, vectors, ids, tracks, energy, check_all):
    """Unfiltered and filtered answers of the hnsw-served index, checked (all of them when
    check_all) against a naive scan; returns them for comparing two loads."""
    s, b, _ = c.request("GET", "/v1/models")
    rec = [x for x in b["models"] if x["task"] == "recommend"] if s == 200 else []
    check(rec and rec[0]["index"]["kind"] == "hnsw" and rec[0]["index"]["m"] == 16, f"/v1/models index {rec}")
    answers, found, total, paths = [], 0, 0, []
    for tid in ids[::67][:30]:
        row = ids.index(tid)
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 8})
        answers.append(json.dumps(b, sort_keys=True))
        check(s == 200 and b["index"] == "hnsw" and len(b["tracks"]) == 8, f"hnsw answer {s}")
        if check_all and s == 200:
            want = expected_top(vectors, ids, tracks, vectors[row], 8,
                                lambda t, tid=tid: t == tid or song_key(tracks[t]) == song_key(tracks[tid]))
            found += len({x["track_id"] for x in b["tracks"]} & {w for w, _ in want})
            total += len(want)
        # The query's own genre and a popularity floor: the graph's candidates mostly meet them
        # (k 4: in a catalog of 2,000 tracks a wider search goes to the scan, nearest.h).
        genre = tracks[tid]["genres"][0]
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 4, "genres": [genre], "min_popularity": 20})
        answers.append(json.dumps(b, sort_keys=True))
        ok = s == 200 and len(b["tracks"]) == 4 and all(
            genre in tracks[x["track_id"]]["genres"] and (tracks[x["track_id"]]["popularity"] or 0) >= 20
            and x["track_id"] != tid for x in b["tracks"])
        check(ok, f"a filtered hnsw answer holds only matching tracks: {s} {b.get('tracks')}")
        paths.append(b.get("index"))
    if check_all:
        check(found >= 0.9 * total, f"hnsw answers against a naive scan: {found} of {total}")
        check(paths.count("hnsw") >= 20, f"filters met by the graph's candidates: {paths}")
        # A filter that passes a sliver of the catalog: the sample sends it to the exact scan.
        tid = ids[5]
        top = sorted(tracks, key=lambda t: -(tracks[t]["popularity"] or 0))
        floor = tracks[top[min(30, len(top) - 1)]]["popularity"]
        s, b, _ = c.post("/v1/recommend", {"track_id": tid, "k": 5, "min_popularity": floor})
        want = expected_top(vectors, ids, tracks, vectors[ids.index(tid)], 5,
                            lambda t: t == tid or (tracks[t]["popularity"] or 0) < floor
                            or song_key(tracks[t]) == song_key(tracks[tid]))
        got = [(x["track_id"], x["score"]) for x in b["tracks"]] if s == 200 else []
        check(s == 200 and b["index"] == "exact" and same_ranking(got, want), "a narrow filter scans exactly")
        # /v1/recommendations: a seed excluded, an attribute range, one track per artist.
        seed = ids[11]
        s, b, _ = c.request("GET", f"/v1/recommendations?seed_tracks={seed}&min_energy=0.4&max_per_artist=1&limit=10")
        got = b.get("tracks", []) if s == 200 else []
        artists = [a for x in got for a in tracks[x["track_id"]]["artists"].split(";")]
        check(s == 200 and b["index"] in ("hnsw", "exact") and len(got) == 10 and seed not in {x["track_id"] for x in got}
              and all(energy[x["track_id"]] >= 0.4 for x in got) and len(artists) == len(set(artists)),
              f"filtered /v1/recommendations from the hnsw index: {s} {b}")
    return answers


def corrupt_version_refused(c, db):
    """A new version of the index whose graph is corrupt, published into the database a running
    --watch server serves: refused, the old version keeps answering."""
    before = c.post("/v1/recommend", {"track_id": index_from_db(db)[1][3], "k": 4})
    with sqlite3.connect(db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(models)") if r[1] not in ("id", "version", "blob", "published")]
        old, version, blob = con.execute(
            "SELECT id, version, blob FROM models WHERE task = 'recommend' AND published = 1").fetchone()
        blob = bytearray(blob)
        blob[-100] ^= 0x5A
        con.execute("UPDATE models SET published = 0 WHERE id = ?", (old,))
        cur = con.execute(f"INSERT INTO models ({', '.join(cols)}, version, blob, published) "
                          f"SELECT {', '.join(cols)}, ?, ?, 1 FROM models WHERE id = ?", (version + 1, bytes(blob), old))
        new = cur.lastrowid
        con.execute("INSERT INTO index_vectors SELECT ?, n_rows, dim, vectors FROM index_vectors WHERE model_id = ?",
                    (new, old))
        con.execute("INSERT INTO index_rows SELECT ?, row, track_id FROM index_rows WHERE model_id = ?", (new, old))
    check(wait_for(lambda: metric(c, 'timbre_reloads_total{outcome="failed"}') == 1), "corrupt hnsw version refused")
    after = c.post("/v1/recommend", {"track_id": index_from_db(db)[1][3], "k": 4})
    s, b, _ = c.request("GET", "/v1/models")
    rec = [x for x in b["models"] if x["task"] == "recommend"] if s == 200 else []
    check(before[0] == after[0] == 200 and before[1] == after[1] and rec and rec[0]["version"] == version,
          f"the old index keeps serving after a corrupt graph: {rec}")


def explain_checks(a, rf_client, paths, catalog_row, header, tmp):
    """The explain routes: on the rf server, base + the contributions = the served probability; on
    boosting (gbdt genre and popularity models) = the margin, whose softmax is the served
    probability; the genre asked, the top N, batches, a track id; bad requests 400."""
    # A forest explains in probability space: base + contributions = the served probability.
    feats = {"tempo": 128.0, "energy": 0.81, "danceability": 0.66, "loudness": -5.5, "valence": None}
    s, g, _ = rf_client.post("/v1/genre", {"features": feats})
    s2, e, _ = rf_client.post("/v1/genre/explain", {"features": feats})
    x = e["explained"][0] if s2 == 200 else {}
    check(s == s2 == 200 and e["space"] == "probability" and x["genre"] == g["genre"]
          and abs(x["base"] + sum(y["contribution"] for y in x["contributions"]) - x["output"]) < 1e-9
          and abs(x["output"] - g["probabilities"][0]["probability"]) < 1e-9, f"rf genre explanation {s2} {e}")
    db = os.path.join(tmp, "explain.db")
    for task in ("genre", "popularity"):
        t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--task", task, "--model", "gbdt",
                            "--threads", "2", "--log-level", "warn", "--calibration-fraction", "0"],
                           capture_output=True, text=True, timeout=300)
        check(t.returncode == 0, f"gbdt trainer for explanations: {t.stderr[-1000:]}")
    proc, port = start_server(a.server, db, tmp)
    if t.returncode != 0 or port is None:
        check(False, "server on the gbdt models")
        return
    try:
        c = Client(port)
        feats = {"tempo": 128.0, "energy": 0.81, "danceability": 0.66, "loudness": -5.5, "valence": None}
        s, g, _ = c.post("/v1/genre", {"features": feats})
        s2, e, _ = c.post("/v1/genre/explain", {"features": feats, "top": 3})
        ok = s == s2 == 200 and e["space"] == "margin" and len(e["explained"]) == 3
        check(ok, f"genre explain {s2} {e}")
        if not ok:
            return
        margins = []
        for x in e["explained"]:
            total = x["base"] + sum(y["contribution"] for y in x["contributions"])
            margins.append(x["output"])
            check(abs(total - x["output"]) < 1e-9 and len(x["contributions"]) == 13, f"base + contributions {x}")
            mags = [abs(y["contribution"]) for y in x["contributions"]]
            check(mags == sorted(mags, reverse=True), "contributions largest first")
        first = e["explained"][0]
        check(first["genre"] == g["genre"] and abs(first["probability"] - g["probabilities"][0]["probability"]) < 1e-12,
              f"the predicted genre explained first {first['genre']} {g['genre']}")
        probs = [x["probability"] for x in e["explained"]]
        check(probs == sorted(probs, reverse=True), f"top 3 most probable first {probs}")
        valence = [y for y in first["contributions"] if y["feature"] == "valence"]
        check(valence and valence[0]["value"] is None and valence[0].get("imputed") is True, f"missing named {valence}")
        # Differences of margins are differences of log-probabilities.
        check(abs((margins[0] - margins[1]) - math.log(probs[0] / probs[1])) < 1e-5, "margins are log-odds")
        s, one, _ = c.post("/v1/genre/explain", {"features": feats, "genre": e["explained"][2]["genre"]})
        check(s == 200 and one["explained"] == e["explained"][2:3], "a named genre explained as in the top 3")
        s, batch, _ = c.post("/v1/genre/explain", {"instances": [{"features": feats}, {"features": {"tempo": 90}}]})
        check(s == 200 and len(batch["predictions"]) == 2 and batch["predictions"][0]["explained"] == e["explained"][:1],
              f"batch explain {s}")
        s, b, _ = c.post("/v1/genre/explain", {"instances": [{"features": feats}] * 17})
        check(s == 400 and "1 to 16 request objects on this route" in b["error"]["message"], f"explain batch bound {b}")
        col = {name: i for i, name in enumerate(header)}
        s, by_id, _ = c.post("/v1/genre/explain", {"track_id": catalog_row[col["instance_id"]]})
        check(s == 200 and by_id["track_id"] == catalog_row[col["instance_id"]], f"explain by track id {s}")
        for body, field in (({"features": feats, "genre": "Polka"}, "genre"), ({"features": feats, "top": 0}, "top"),
                            ({"features": feats, "top": 2, "genre": "Rock"}, "genre"), ({"features": feats, "x": 1}, None)):
            s, b, _ = c.post("/v1/genre/explain", body)
            check(s == 400 and (field is None or b["error"].get("field") == field), f"bad explain {body}: {s} {b}")
        csv_explain_checks(a, c, db, paths, tmp)
        del feats["valence"]
        s, p, _ = c.post("/v1/popularity", {"features": feats})
        s2, pe, _ = c.post("/v1/popularity/explain", {"features": feats})
        x = pe["explained"][0] if s2 == 200 else {}
        check(s == s2 == 200 and pe["space"] == "value" and abs(x["popularity"] - p["popularity"]) < 1e-12
              and abs(x["base"] + sum(y["contribution"] for y in x["contributions"]) - x["output"]) < 1e-9
              and abs(x["output"] - p["popularity"]) < 1e-3, f"popularity explain {s2} {pe}")
    finally:
        stop_server(proc)


def csv_explain_checks(a, c, db, paths, tmp):
    """timbre-train --predict --explain labels a table with each task's base and contributions,
    the same numbers /v1/genre/explain and /v1/popularity/explain give for that row's features."""
    out = os.path.join(tmp, "explained.csv")
    t = subprocess.run([a.trainer, "--db", db, "--predict", paths["predict.csv"], "--out", out, "--explain",
                        "--log-level", "warn"], capture_output=True, text=True, timeout=120)
    check(t.returncode == 0, f"--predict --explain: {t.stderr[-500:]}")
    if t.returncode != 0:
        return
    with open(out, newline="") as f:
        labelled = list(csv.DictReader(f))
    with open(paths["predict.csv"], newline="") as f:
        source = list(csv.DictReader(f))
    s, models, _ = c.request("GET", "/v1/models")
    inputs = {m["task"]: m["features"] for m in models["models"]}
    worst, compared = 0.0, 0
    for row, src in list(zip(labelled, source))[:5]:
        for task in ("genre", "popularity"):
            feats = {f: feature_value(src[f]) for f in inputs[task] if src.get(f, "") not in ("", "?")}
            s, e, _ = c.post(f"/v1/{task}/explain", {"features": feats})
            if s != 200:
                check(False, f"{task} explain of a labelled row: {s} {e}")
                continue
            x = e["explained"][0]
            if task == "genre":
                check(x["genre"] == row["genre"], f"the labelled genre is the one explained {x['genre']} {row['genre']}")
            worst = max([worst, abs(float(row[f"{task}_base"]) - x["base"])] +
                        [abs(float(row[f"why_{task}_{y['feature']}"]) - y["contribution"]) for y in x["contributions"]])
            compared += 1
    check(compared == 10 and worst < 1e-12, f"--explain columns equal the routes' contributions ({compared}, {worst})")


def conformal_checks(c, header, catalog_row):
    col = {name: i for i, name in enumerate(header)}
    tid = catalog_row[col["instance_id"]]
    s, b, _ = c.post("/v1/genre/set", {"track_id": tid})
    check(s == 200 and b["alpha"] == 0.1 and b["method"] == "lac" and b["guarantee"] == 0.9 and not b["mondrian"]
          and b["size"] == len(b["set"]) >= 1 and isinstance(b["qhat"], float) and not b["alpha_too_small"]
          and b["track_id"] == tid, f"genre set defaults {s} {b}")
    if s == 200:
        probs = [e["probability"] for e in b["set"]]
        check(probs == sorted(probs, reverse=True) and min(probs) >= 1 - b["qhat"] - 1e-12, f"LAC set rule {b}")
    sizes = []
    for alpha in (0.02, 0.05, 0.1, 0.2, 0.5):
        s, b, _ = c.post("/v1/genre/set", {"track_id": tid, "alpha": alpha})
        sizes.append(b["size"] if s == 200 else -1)
    check(sizes == sorted(sizes, reverse=True) and sizes[-1] >= 0, f"sets shrink as alpha grows: {sizes}")
    s, b, _ = c.post("/v1/genre/set", {"track_id": tid, "alpha": 0.001})
    check(s == 200 and b["alpha_too_small"] and b["size"] == 10 and b["qhat"] is None and "note" in b,
          f"alpha too small for the calibration: {s} {b}")
    for method in ("aps", "raps"):
        for mondrian in (False, True):
            s, b, _ = c.post("/v1/genre/set", {"track_id": tid, "method": method, "mondrian": mondrian, "alpha": 0.2})
            check(s == 200 and b["method"] == method and b["mondrian"] == mondrian
                  and (not mondrian or all("qhat" in e for e in b["set"])), f"{method} mondrian={mondrian}: {s} {b}")
    s1, b1, _ = c.post("/v1/genre/set", {"track_id": tid, "method": "aps", "randomized": True, "seed": 7})
    s2, b2, _ = c.post("/v1/genre/set", {"track_id": tid, "method": "aps", "randomized": True, "seed": 7})
    check(s1 == 200 and b1["randomized"] and b1["set"] == b2["set"], "randomized APS is reproducible with a seed")
    feats = {"danceability": 0.5, "energy": 0.9, "popularity": 40}
    s, b, _ = c.post("/v1/genre/set", {"features": feats, "alpha": 0.2, "method": "raps"})
    check(s == 200 and "tempo" in b["imputed"], f"set from features {s}")
    for body, field in (({"track_id": tid, "alpha": 0}, "alpha"), ({"track_id": tid, "alpha": 1}, "alpha"),
                        ({"track_id": tid, "alpha": "0.1"}, "alpha"), ({"track_id": tid, "alpha": -0.5}, "alpha"),
                        ({"track_id": tid, "method": "topk"}, "method"), ({"track_id": tid, "method": 3}, "method"),
                        ({"track_id": tid, "mondrian": "yes"}, "mondrian"),
                        ({"track_id": tid, "randomized": True}, "randomized"),
                        ({"track_id": tid, "seed": 3}, "seed"),
                        ({"track_id": tid, "method": "aps", "randomized": True, "seed": -1}, "seed"),
                        ({"track_id": tid, "k": 3}, "k"), ({"features": {"tempo": "fast"}}, "tempo")):
        s, b, _ = c.post("/v1/genre/set", body)
        check(is_error(s, b, "bad_request", 400, field), f"genre set error {body}: {s} {b}")
    s, b, _ = c.post("/v1/genre/set", {"track_id": "no-such"})
    check(is_error(s, b, "not_found", 404, "track_id"), f"genre set unknown id {s} {b}")

    # Popularity intervals.
    s, b, _ = c.post("/v1/popularity", {"track_id": tid, "alpha": 0.1})
    iv = b.get("interval", {}) if s == 200 else {}
    check(s == 200 and iv.get("method") == "normalized" and 0 <= iv["lower"] <= b["popularity"] <= iv["upper"] <= 100
          and iv["alpha"] == 0.1 and iv["guarantee"] == 0.9 and not iv["alpha_too_small"], f"interval {s} {b}")
    s, b2, _ = c.post("/v1/popularity", {"track_id": tid, "alpha": 0.1, "interval_method": "absolute"})
    check(s == 200 and b2["interval"]["method"] == "absolute" and b2["popularity"] == b["popularity"],
          f"absolute interval {s} {b2}")
    s, b3, _ = c.post("/v1/popularity", {"track_id": tid, "alpha": 0.3, "interval_method": "absolute"})
    check(s == 200 and b3["interval"]["upper"] - b3["interval"]["lower"]
          <= b2["interval"]["upper"] - b2["interval"]["lower"], "wider interval at smaller alpha")
    s, b, _ = c.post("/v1/popularity", {"track_id": tid, "alpha": 0.001})
    check(s == 200 and b["interval"]["alpha_too_small"] and b["interval"]["lower"] == 0
          and b["interval"]["upper"] == 100, f"interval alpha too small {s} {b}")
    s, b, _ = c.post("/v1/popularity", {"track_id": tid})
    check(s == 200 and "interval" not in b, "no interval without alpha")
    for body, field in (({"track_id": tid, "alpha": 2}, "alpha"), ({"track_id": tid, "interval_method": "absolute"},
                                                                  "interval_method"),
                        ({"track_id": tid, "alpha": 0.1, "interval_method": "wide"}, "interval_method"),
                        ({"track_id": tid, "alpha": 0.1, "method": "lac"}, "method")):
        s, b, _ = c.post("/v1/popularity", body)
        check(is_error(s, b, "bad_request", 400, field), f"popularity error {body}: {s} {b}")


def solve(a, b):
    """Gaussian elimination with partial pivoting: a x = b (a: list of rows, b: list)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        for r in range(n):
            if r != col and m[r][col] != 0.0:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def ridge_loo(xs, ys, lam):
    """Ridge with an unpenalized intercept: coefficients (intercept last) and the leave-one-out R²."""
    z = [list(map(float, x)) + [1.0] for x in xs]
    e = len(z[0])
    a = [[sum(r[i] * r[j] for r in z) + (lam if i == j and i < e - 1 else 0.0) for j in range(e)] for i in range(e)]
    beta = solve(a, [sum(r[i] * y for r, y in zip(z, ys)) for i in range(e)])
    mean = sum(ys) / len(ys)
    sse = 0.0
    for r, y in zip(z, ys):
        u = solve(a, r)
        h = sum(p * q for p, q in zip(r, u))
        sse += ((y - sum(p * q for p, q in zip(r, beta))) / (1 - h)) ** 2
    return beta, 1 - sse / sum((y - mean) ** 2 for y in ys)


def taste_checks(c, db, users):
    vectors, ids, tracks = index_from_db(db)
    # Ratings that are a linear function of the embedding: the fit recovers it almost exactly.
    rated = ids[3:1200:40]
    ys = [round(5 + 4 * vectors[ids.index(t)][0] - 3 * vectors[ids.index(t)][4], 6) for t in rated]
    body = {"ratings": [{"track_id": t, "rating": y} for t, y in zip(rated, ys)], "k": 6}
    with sqlite3.connect(users) as con:
        saved_before = con.execute("SELECT COUNT(*) FROM tastes").fetchone()[0]
    s, b, _ = c.post("/v1/taste", body)
    check(s == 200 and b["fit"]["n_ratings"] == len(rated) and b["k"] == 6 and len(b["tracks"]) == 6,
          f"taste reply {s} {b and b.get('fit')}")
    if s == 200:
        lam = b["fit"]["lambda"]
        beta, cv = ridge_loo([vectors[ids.index(t)] for t in rated], ys, lam)
        check(abs(b["fit"]["cv_r2"] - cv) < 1e-6 and cv > 0.9, f"taste cv R² {b['fit']['cv_r2']} vs {cv}")
        check(abs(b["fit"]["intercept"] - beta[-1]) < 1e-6, "taste intercept equals a hand-solved ridge")
        songs = {song_key(tracks[t]) for t in rated}
        unrated = [i for i, t in enumerate(ids) if t not in rated
                   and song_key(tracks[t]) not in songs]
        # Candidates: the 100 nearest unrated rows of each track rated at or above the median.
        srt = sorted(ys)
        median = srt[len(ys) // 2] if len(ys) % 2 else (srt[len(ys) // 2 - 1] + srt[len(ys) // 2]) / 2
        near = set()
        for t, y in zip(rated, ys):
            if y >= median:
                v = vectors[ids.index(t)]
                near |= set(sorted(unrated, key=lambda i: (-sum(p * q for p, q in zip(vectors[i], v)), i))[:100])
        check(b["fit"]["candidates"] == len(near), f"taste candidates {b['fit']['candidates']} vs {len(near)}")
        want = expected_top(vectors, ids, tracks, beta[:-1], 6, lambda t: ids.index(t) not in near)
        got = [(t["track_id"], sum(p * q for p, q in zip(vectors[ids.index(t["track_id"])], beta)))
               for t in b["tracks"]]
        check(same_ranking(got, want), f"taste top-6 equals a naive scan with the hand-solved weights: {got} vs {want}")
        check(all(min(ys) <= t["predicted_rating"] <= max(ys) for t in b["tracks"]), "predictions within the scale")
        check(not set(t["track_id"] for t in b["tracks"]) & set(rated), "rated tracks are not recommended")
    with sqlite3.connect(users) as con:
        check(con.execute("SELECT COUNT(*) FROM tastes").fetchone()[0] == saved_before, "nothing stored unasked")
    # Equal ratings: nothing to learn, the fit says so.
    s, b, _ = c.post("/v1/taste", {"ratings": [{"track_id": t, "rating": 7} for t in rated[:5]]})
    check(s == 200 and b["fit"]["cv_r2"] == 0 and all(t["predicted_rating"] == 7 for t in b["tracks"]),
          f"constant ratings {s} {b and b.get('fit')}")
    taste_owner_checks(c, body, users)
    s, b, _ = c.request("GET", "/v1/taste/bad%20name")
    check(is_error(s, b, "bad_request", 400), f"bad taste name {s} {b}")
    r0 = body["ratings"]
    for bad, status, field, what in (
            ({"ratings": r0[:4]}, 400, "ratings", "fewer than 5 ratings"),
            ({"ratings": "all"}, 400, "ratings", "ratings not a list"),
            ({}, 400, "ratings", "no ratings"),
            ({"ratings": r0 + [{"track_id": "no-such-track", "rating": 3}]}, 404, "ratings[30].track_id", "unknown id"),
            ({"ratings": r0 + [dict(r0[0], rating=1)]}, 400, "ratings[30].track_id", "a track rated twice"),
            ({"ratings": r0[:5] + [{"track_id": ids[900], "rating": "8"}]}, 400, "ratings[5].rating", "string rating"),
            ({"ratings": r0[:5] + [{"track_id": ids[900]}]}, 400, "ratings[5].rating", "missing rating"),
            ({"ratings": r0[:5] + [{"rating": 3}]}, 400, "ratings[5].track_id", "missing track id"),
            ({"ratings": r0[:5] + [{"track_id": ids[900], "rating": 3, "weight": 2}]}, 400, "ratings[5].weight",
             "unknown key in a rating"),
            ({"ratings": r0[:5] + [7]}, 400, "ratings[5]", "rating not an object"),
            ({"ratings": r0, "k": 0}, 400, "k", "k = 0"),
            ({"ratings": r0, "save_as": "a b"}, 400, "save_as", "bad name"),
            ({"ratings": r0, "save_as": 5}, 400, "save_as", "name not a string"),
            ({"ratings": r0, "listener": "x"}, 400, "listener", "unknown key")):
        s, b, _ = c.post("/v1/taste", bad)
        check(is_error(s, b, "not_found" if status == 404 else "bad_request", status, field), f"taste {what}: {s} {b}")
    s, b, _ = c.post("/v1/taste", {"ratings": r0[:5] + [{"track_id": ids[900], "rating": 1e300}]})
    check(is_error(s, b, "bad_request", 400, "ratings[5].rating"), f"huge rating {s} {b}")
    s, _, h = c.request("GET", "/v1/taste")
    check(s == 405 and h.get("Allow") == "POST", f"GET /v1/taste {s}")


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def taste_owner_checks(c, body, users):
    """save_as stores into --user-db; the first save returns the secret that owns the name."""
    s, b, _ = c.post("/v1/taste", dict(body, save_as="it-listener.1"))
    secret = b.get("secret", "") if s == 200 else ""
    check(s == 200 and b.get("saved_as") == "it-listener.1" and secret.startswith("tbs_") and len(secret) == 68,
          f"taste saved, with its secret shown once {s} {b and b.get('saved_as')}")
    s, b, h = c.request("GET", "/v1/taste/it-listener.1")
    check(is_error(s, b, "unauthorized", 401) and h.get("WWW-Authenticate", "").startswith("Bearer"),
          f"reading without the secret: 401 {s} {b}")
    s, b, _ = c.request("GET", "/v1/taste/it-listener.1", headers=bearer("tbs_" + "0" * 64))
    check(is_error(s, b, "forbidden", 403), f"reading with another secret: 403 {s} {b}")
    s, b, _ = c.request("GET", "/v1/taste/it-listener.1", headers=bearer(secret))
    check(s == 200 and b["ratings"] == body["ratings"] and "cv_r2" in b["fit"] and b["updated_at"].endswith("Z"),
          f"saved taste read back by its owner {s} {b and {k: v for k, v in b.items() if k != 'ratings'}}")
    other = dict(body, ratings=body["ratings"][:10], save_as="it-listener.1")
    s, b, _ = c.post("/v1/taste", other)
    check(is_error(s, b, "unauthorized", 401, "save_as"), f"replacing without the secret: 401 {s} {b}")
    s, b, _ = c.post("/v1/taste", other, headers=bearer("tbs_" + "1" * 64))
    check(is_error(s, b, "forbidden", 403, "save_as"), f"replacing with another's secret: 403 {s} {b}")
    s, b, _ = c.post("/v1/taste", other, headers=bearer(secret))
    check(s == 200 and "secret" not in b, f"the owner replaces it (no new secret) {s}")
    s, b, _ = c.request("GET", "/v1/taste/it-listener.1", headers=bearer(secret))
    check(s == 200 and b["ratings"] == other["ratings"], "the replacement is what is read back")
    with sqlite3.connect(users) as con:
        stored = con.execute("SELECT secret_hash FROM tastes WHERE name = 'it-listener.1'").fetchone()[0]
    check(len(stored) == 32 and secret.encode() not in open(users, "rb").read() and secret[4:] != stored.hex(),
          "only a 32-byte hash of the secret is stored")
    s, b, _ = c.request("DELETE", "/v1/taste/it-listener.1")
    check(is_error(s, b, "unauthorized", 401), f"deleting without the secret: 401 {s}")
    s, b, _ = c.request("DELETE", "/v1/taste/it-listener.1", headers=bearer("tbs_" + "2" * 64))
    check(is_error(s, b, "forbidden", 403), f"deleting with another secret: 403 {s}")
    s, b, _ = c.request("DELETE", "/v1/taste/it-listener.1", headers=bearer(secret))
    check(s == 204, f"the owner deletes it: 204 {s} {b}")
    s, b, _ = c.request("GET", "/v1/taste/it-listener.1", headers=bearer(secret))
    check(is_error(s, b, "not_found", 404), f"deleted: 404 {s} {b}")
    s, b, _ = c.request("GET", "/v1/taste/nobody", headers=bearer(secret))
    check(is_error(s, b, "not_found", 404), f"unknown taste {s} {b}")


def taste_limit_checks(a, db, tmp):
    """--max-tastes caps the user database; a locked user database fails a save fast, and never holds
    other requests; without --user-db saving is off with a message that says how to turn it on."""
    users = os.path.join(tmp, "users-capped.db")
    proc, port = start_server(a.server, db, tmp, ("--user-db", users, "--max-tastes", "2", "--no-access-log"))
    check(port is not None, "server with --max-tastes 2")
    if port is None:
        return
    c = Client(port)
    vectors, ids, _ = index_from_db(db)
    body = {"ratings": [{"track_id": t, "rating": float(i % 5)} for i, t in enumerate(ids[10:30])]}
    try:
        got = [c.post("/v1/taste", dict(body, save_as=f"cap-{i}"))[0:2] for i in range(3)]
        check([g[0] for g in got] == [200, 200, 507] and got[2][1]["error"]["code"] == "storage_full",
              f"the third taste is refused at --max-tastes 2: {[(g[0], g[1].get('error')) for g in got]}")
        locker = sqlite3.connect(users, timeout=0, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        result = {}

        def save():
            t = time.monotonic()
            result["save"] = (c.post("/v1/taste", dict(body, save_as="cap-new"))[:2], time.monotonic() - t)

        saver = threading.Thread(target=save)
        saver.start()
        health = []
        while saver.is_alive() or len(health) < 20:
            t = time.monotonic()
            s = c.request("GET", "/healthz")[0]
            health.append((s, time.monotonic() - t))
            if len(health) > 200:
                break
        saver.join()
        locker.execute("ROLLBACK")
        locker.close()
        (s, b), took = result["save"]
        check(s == 503 and b["error"]["code"] == "unavailable" and took < 1.0,
              f"a save while another holds the user database's write lock fails fast: {s} {b} in {took:.3f} s")
        slow = [h for h in health if h[0] != 200 or h[1] > 0.05]
        check(not slow, f"/healthz answers in < 50 ms meanwhile: {slow[:5]} of {len(health)}")
        s, b, _ = c.post("/v1/taste", dict(body, save_as="cap-new"))
        check(s == 507, f"once the lock is gone the cap applies again: {s}")
    finally:
        check(stop_server(proc) == 0, "exit 0")
    proc, port = start_server(a.server, db, tmp, ("--no-access-log",))
    try:
        s, b, _ = Client(port).post("/v1/taste", dict(body, save_as="x"))
        check(is_error(s, b, "not_found", 404, "save_as") and "--user-db" in b["error"]["message"],
              f"without --user-db saving is off, saying how to enable it: {s} {b}")
    finally:
        stop_server(proc)


def new_key(a, scopes):
    out = subprocess.run([a.server, "--new-api-key", scopes], capture_output=True, text=True, check=True).stdout
    key = out.split("not kept anywhere): ")[1].split()[0]
    line = out.split("--api-keys file: ")[1].strip()
    return key, line


def api_key_checks(a, db, tmp):
    """--api-keys: hashed keys with scopes, sent as X-API-Key; health checks never need one."""
    (pk, pline), (fk, fline) = new_key(a, "predict"), new_key(a, "predict,write,admin")
    keys = os.path.join(tmp, "api-keys")
    with open(keys, "w") as f:
        f.write(f"# two keys\n{pline}\n{fline}  # the operator's\n")
    check(pk not in open(keys).read() and fk not in open(keys).read(), "the keys file holds hashes, not keys")
    proc, port = start_server(a.server, db, tmp, ("--api-keys", keys, "--user-db", os.path.join(tmp, "u-keys.db"),
                                                  "--no-access-log"))
    check(port is not None, "server with --api-keys")
    if port is None:
        return
    c = Client(port)
    vectors, ids, _ = index_from_db(db)
    body = {"ratings": [{"track_id": t, "rating": float(i % 5)} for i, t in enumerate(ids[10:30])], "save_as": "k-1"}
    try:
        for path in ("/healthz", "/readyz", "/openapi.json", "/v2/health/live"):
            check(c.request("GET", path)[0] == 200, f"{path} needs no key")
        s, b, _ = c.request("GET", "/v1/models")
        check(is_error(s, b, "unauthorized", 401) and "X-API-Key" in b["error"]["message"], f"no key: 401 {s} {b}")
        s, b, _ = c.request("GET", "/v1/models", headers={"X-API-Key": "tbk_" + "0" * 64})
        check(is_error(s, b, "unauthorized", 401), f"an unknown key: 401 {s} {b}")
        check(c.request("GET", "/v1/models", headers={"X-API-Key": pk})[0] == 200, "a predict key reads the models")
        s, b, _ = c.request("GET", "/metrics", headers={"X-API-Key": pk})
        check(is_error(s, b, "forbidden", 403), f"/metrics with a predict key: 403 {s} {b}")
        check(c.request("GET", "/metrics", headers={"X-API-Key": fk})[0] == 200, "an admin key reads /metrics")
        s, b, _ = c.post("/v1/taste", body, headers={"X-API-Key": pk})
        check(is_error(s, b, "forbidden", 403, "save_as"), f"saving a taste with a predict key: 403 {s} {b}")
        s, b, _ = c.post("/v1/taste", body, headers={"X-API-Key": fk})
        secret = b.get("secret") if s == 200 else None
        check(s == 200 and secret, f"saving with a write key {s}")
        s, b, _ = c.request("DELETE", "/v1/taste/k-1", headers={"X-API-Key": pk, "Authorization": f"Bearer {secret}"})
        check(is_error(s, b, "forbidden", 403), f"deleting with a predict key: 403 {s} {b}")
        s, _, _ = c.request("DELETE", "/v1/taste/k-1", headers={"X-API-Key": fk, "Authorization": f"Bearer {secret}"})
        check(s == 204, f"the owner with a write key deletes it: {s}")
    finally:
        check(stop_server(proc) == 0, "exit 0")
    with open(keys, "w") as f:
        f.write(f"{pline}\npredict,root {'ab' * 32}\n")
    r = subprocess.run([a.server, "--db", db, "--api-keys", keys], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "api-keys" in r.stderr and ":2:" in r.stderr, f"a bad keys file names the line: {r.stderr}")


def track_checks(c, db):
    _, ids, tracks = index_from_db(db)
    tid = ids[17]
    s, b, _ = c.request("GET", f"/v1/tracks/{tid}")
    t = tracks[tid]
    check(s == 200 and b["track_id"] == tid and b["track_name"] == t["track_name"] and b["artists"] == t["artists"]
          and b["genres"] == t["genres"] and "danceability" in b["features"], f"track by id {s} {b}")
    s, b, _ = c.request("GET", "/v1/tracks/no-such-track")
    check(is_error(s, b, "not_found", 404, "track_id"), f"unknown track {s} {b}")
    word = next(w for w in t["track_name"].split() if len(w) >= 3 and w.isascii() and w.isalpha())
    s, b, _ = c.request("GET", f"/v1/tracks?q={word.upper()}&limit=3")
    expected = [i for i, x in tracks.items()
                if word.lower() in x["track_name"].lower() or word.lower() in x["artists"].lower()]
    check(s == 200 and b["total"] == len(expected) and len(b["tracks"]) == min(3, len(expected))
          and b["limit"] == 3, f"search '{word}': {s} {b and b.get('total')} vs {len(expected)}")
    pops = [x["popularity"] for x in b["tracks"]] if s == 200 else []
    check(pops == sorted(pops, reverse=True), f"search results most popular first {pops}")
    s, b, _ = c.request("GET", "/v1/tracks?q=zzqqxxnothing")
    check(s == 200 and b["tracks"] == [] and b["total"] == 0 and b["limit"] == 10, f"no match {s} {b}")
    for path, field in (("/v1/tracks", "q"), ("/v1/tracks?q=", "q"), ("/v1/tracks?q=a&limit=0", "limit"),
                        ("/v1/tracks?q=a&limit=101", "limit"), ("/v1/tracks?q=a&limit=ten", "limit"),
                        ("/v1/tracks?q=a&sort=name", "sort"), ("/v1/tracks?q=" + "a" * 201, "q"),
                        ("/v1/tracks?q=%01", "q")):
        s, b, _ = c.request("GET", path)
        check(is_error(s, b, "bad_request", 400, field), f"{path[:40]}: {s} {b}")
    s, b, h = c.request("POST", "/v1/tracks", body={})
    check(s == 405 and h.get("Allow") == "GET, HEAD", f"POST /v1/tracks {s}")


def served_as_trained(a, tmp, paths, header, predict_rows, kind, flags):
    """Trains `kind` (with `flags`), labelling the predict file in memory, then serves the database and
    requires the same answers over HTTP. Returns the database path, or None when training failed."""
    db, preds = os.path.join(tmp, f"{kind}.db"), os.path.join(tmp, f"{kind}-preds.csv")
    t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--model", kind, *flags, "--threads", "2",
                        "--predict", paths["predict.csv"], "--out", preds, "--proba"],
                       capture_output=True, text=True, timeout=300)
    check(t.returncode == 0, f"{kind} trainer exit {t.returncode}: {t.stderr[-2000:]}")
    if t.returncode != 0:
        return None
    with open(preds, newline="") as f:
        pred_rows = list(csv.DictReader(f))
    proc, port = start_server(a.server, db, tmp)
    check(port is not None, f"{kind} server started")
    if port is not None:
        try:
            exact_checks(Client(port), header, predict_rows, pred_rows, kind)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    return db


def exact_checks(c, header, predict_rows, pred_rows, kind):
    """HTTP predictions equal the trainer's in-memory ones for the same rows, bit for bit."""
    s, b, _ = c.request("GET", "/v1/models")
    genre_model = b["models"][0]
    check(genre_model["kind"] == kind, f"serving {kind}")
    col = {name: i for i, name in enumerate(header)}
    exact_genre = exact_pop = 0
    for row, pred in zip(predict_rows, pred_rows):
        feats = {f: feature_value(row[col[f]]) for f in genre_model["features"]}
        s, b, _ = c.post("/v1/genre", {"features": feats})
        ok = s == 200 and b["genre"] == pred["genre"]
        ok = ok and all(p["probability"] == float(pred["p_" + p["genre"]]) for p in b["probabilities"])
        probs = [p["probability"] for p in b["probabilities"]] if s == 200 else []
        ok = ok and len(probs) == 5 and probs == sorted(probs, reverse=True)
        exact_genre += ok
        del feats["popularity"]
        s, b, _ = c.post("/v1/popularity", {"features": feats})
        exact_pop += s == 200 and b["popularity"] == float(pred["popularity"])
    check(exact_genre == len(pred_rows), f"{kind}: genre over HTTP equals the trainer's ({exact_genre}/{len(pred_rows)})")
    check(exact_pop == len(pred_rows), f"{kind}: popularity over HTTP equals the trainer's ({exact_pop}/{len(pred_rows)})")
    return genre_model


def twins_checks(a, paths, header, predict_rows, tmp):
    """Twins: 300 training rows copied under new ids (same inputs, same genre) make twins that
    agree, so the trainer keeps them; a served row whose inputs match training rows says how many
    ("twins") and carries their genre at (count + 0.1 p) / (count + 0.1); rows never trained on
    have none. (The plain music_genre slice has no twins under other ids: dropped, see run.)"""
    with open(paths["train.csv"], newline="") as f:
        rows = list(csv.reader(f))[1:]
    col = {name: i for i, name in enumerate(header)}
    copies = [list(r) for r in rows[:300]]
    for r in copies:
        r[col["instance_id"]] += "-copy"
    data, db, report = (os.path.join(tmp, n) for n in ("twins.csv", "twins.db", "twins.json"))
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([header] + rows + copies)
    t = subprocess.run([a.trainer, "--data", data, "--db", db, "--task", "genre", "--model", "rf", "--trees", "10",
                        "--threads", "2", "--report", report, "--log-level", "warn"], capture_output=True, text=True,
                       timeout=120)
    check(t.returncode == 0, f"twins trainer exit {t.returncode}: {t.stderr[-1000:]}")
    if t.returncode != 0:
        return
    tw = json.load(open(report))["twins"]
    check(tw["kept"] and tw["agreement"] == 1.0 and 100 < tw["train_rows_with_twin"] <= 600
          and 0.0 < tw["test_rate"] < 1.0 and tw["prior"] == 0.1, f"twins report {tw}")
    proc, port = start_server(a.server, db, tmp, ("--no-access-log",))
    check(port is not None, "twins server started")
    if port is None:
        return
    try:
        c = Client(port)
        feats = c.request("GET", "/v1/models")[1]["models"][0]["features"]
        with_twin = 0
        for r in rows[:60]:
            s, b, _ = c.post("/v1/genre", {"features": {f: feature_value(r[col[f]]) for f in feats}})
            n = b.get("twins", 0) if s == 200 else -1
            if n:
                with_twin += 1
                top = b["probabilities"][0]
                check(top["genre"] == r[col["music_genre"]] and top["probability"] >= n / (n + 0.1) - 1e-12,
                      f"{n} twin(s) answer their genre: {b['probabilities'][:2]} for {r[col['music_genre']]}")
        check(30 < with_twin <= 60, f"{with_twin} of 60 copied rows have twins")
        # An FP32 tensor (Open Inference Protocol) finds the same twins: keys are float-rounded.
        rows8 = rows[:8]
        data = [[numeric_value(f, r[col[f]]) for f in feats] for r in rows8]
        s, b, _ = c.post("/v2/models/genre/infer", {"inputs": [{"name": "input", "shape": [8, len(feats)],
                                                                "datatype": "FP32", "data": data}]})
        classes = c.request("GET", "/v1/models")[1]["models"][0]["classes"]
        ok = s == 200
        for i, r in enumerate(rows8 if ok else []):
            one = c.post("/v1/genre", {"features": {f: feature_value(r[col[f]]) for f in feats}})[1]
            ok &= all(abs(b["outputs"][0]["data"][i * len(classes) + classes.index(e["genre"])] - e["probability"]) < 1e-6
                      for e in one["probabilities"])
        check(ok, f"v2 infer (FP32) equals /v1/genre on rows with twins: {s}")
        unseen = [c.post("/v1/genre", {"features": {f: feature_value(r[col[f]]) for f in feats}})[1]
                  for r in predict_rows]
        check(all("twins" not in b for b in unseen), "rows never trained on have no twin")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def serve_checks(c, header, predict_rows, pred_rows, catalog_row):
    s, b, _ = c.request("GET", "/healthz")
    check(s == 200 and b == {"status": "ok"}, f"healthz {s} {b}")
    s, b, _ = c.request("GET", "/readyz")
    check(s == 200 and b["status"] == "ready" and b["models"] == {"genre": True, "popularity": True, "recommend": True, "multilabel": False},
          f"readyz {b}")
    s, b, _ = c.request("GET", "/v1/models")
    check(s == 200 and [m["task"] for m in b["models"]] == ["genre", "popularity", "recommend"], f"models {s}")
    check(b["models"][2]["tracks"] == 2000 and "genre_hit_at_10" in b["models"][2]["metrics"], "index listed")
    genre_model = b["models"][0]
    pop_model = b["models"][1]
    check(len(genre_model["classes"]) == 10 and "popularity" in genre_model["features"], "genre model inputs")
    check("popularity" not in pop_model["features"] and "accuracy" in genre_model["metrics"], "popularity inputs")
    exact_checks(c, header, predict_rows, pred_rows, "rf")
    col = {name: i for i, name in enumerate(header)}
    # Missing ('?' tempo, -1 duration, omitted, null) are imputed and listed.
    s, b, _ = c.post("/v1/genre", {"features": {"danceability": 0.7, "tempo": "?", "duration_ms": -1,
                                                "energy": None, "key": "F#", "mode": "Minor"}})
    check(s == 200 and {"tempo", "duration_ms", "energy", "loudness"} <= set(b["imputed"])
          and "danceability" not in b["imputed"] and b["model"]["name"] == "genre-rf", f"imputed {s} {b}")

    # By catalog id: the stored row's features give the same answer as sending them.
    tid = catalog_row[col["instance_id"]]
    feats = {f: feature_value(catalog_row[col[f]]) for f in genre_model["features"]}
    s, by_features, _ = c.post("/v1/genre", {"features": feats})
    s, b, _ = c.post("/v1/genre", {"track_id": tid})
    check(s == 200 and b["track_id"] == tid and b["probabilities"] == by_features["probabilities"],
          f"genre by id {s} {b}")
    del feats["popularity"]
    s, by_features, _ = c.post("/v1/popularity", {"features": feats})
    s, b, _ = c.post("/v1/popularity", {"track_id": tid})
    check(s == 200 and b["popularity"] == by_features["popularity"], f"popularity by id {s} {b}")

    # Errors: status, code and the field named.
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"danceability": 0.5', headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400), f"malformed JSON {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {}} trailing', headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400), f"trailing bytes {s} {b}")
    # Replies are UTF-8 JSON whatever the bytes sent: an ill-formed body is refused, and a quoted
    # name cut at its length limit inside a character, or raw bytes from the URL, come back with
    # U+FFFD in their place (the client here decodes strictly: a bad byte would fail is_error).
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"rat\x9cng": 1}}', headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400) and "UTF-8 (byte 18)" in b["error"]["message"], f"ill-formed UTF-8 {s} {b}")
    long_key = "a" + "\u00e9" * 40  # the 64-byte quote ends inside the 32nd e-acute
    s, b, _ = c.post("/v1/genre", {"features": {}, long_key: 1})
    check(is_error(s, b, "bad_request", 400) and b["error"]["field"] == "a" + "\u00e9" * 31 + "\ufffd"
          and b["error"]["message"] == "unknown key '" + "a" + "\u00e9" * 31 + "\ufffd'", f"key cut in a character {s} {b}")
    s, b, _ = c.request("GET", "/v1/tracks/a%22b%5Cc%01d")
    check(is_error(s, b, "not_found", 404) and 'a"b\\c\x01d' in b["error"]["message"], f"escaped bytes in the path {s} {b}")
    s, b, _ = c.request("GET", "/v1/tracks/%FF%FEx")
    check(is_error(s, b, "not_found", 404) and "\ufffd\ufffdx" in b["error"]["message"], f"raw bytes in the path {s} {b}")
    s, b, _ = c.request("GET", "/v1/tracks?q=x&%C3=1")
    check(is_error(s, b, "bad_request", 400, "\ufffd"), f"raw bytes in a query key {s} {b}")
    s, b, _ = c.post("/v1/genre", [1, 2])
    check(is_error(s, b, "bad_request", 400), f"array body {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b"", headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400), f"empty body {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": {"danceability": 0.5}, "extra": 1})
    check(is_error(s, b, "bad_request", 400, "extra"), f"unknown key {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": {"loudnes": -5}})
    check(is_error(s, b, "bad_request", 400, "loudnes"), f"unknown feature {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": {"danceability": "high"}})
    check(is_error(s, b, "bad_request", 400, "danceability"), f"non-numeric feature {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": {"danceability": [0.5]}})
    check(is_error(s, b, "bad_request", 400, "danceability"), f"array feature {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"tempo": 1e999}}', headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400, "tempo"), f"infinite feature {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"tempo": NaN}}', headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400), f"NaN literal {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"tempo": 1, "tempo": 2}}',
                     headers={"Content-Type": "application/json"})
    check(is_error(s, b, "bad_request", 400, "tempo"), f"duplicate feature {s} {b}")
    many = {f"f{i}": 1 for i in range(3000)}
    s, b, _ = c.post("/v1/genre", {"features": many})
    check(is_error(s, b, "bad_request", 400, "features"), f"too many feature keys {s} {b}")
    s, b, _ = c.post("/v1/genre", many)
    check(is_error(s, b, "bad_request", 400), f"too many top-level keys {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": {"tempo": 120}, "track_id": tid})
    check(is_error(s, b, "bad_request", 400), f"both inputs {s} {b}")
    s, b, _ = c.post("/v1/genre", {})
    check(is_error(s, b, "bad_request", 400), f"no input {s} {b}")
    s, b, _ = c.post("/v1/genre", {"features": [1, 2]})
    check(is_error(s, b, "bad_request", 400, "features"), f"features not an object {s} {b}")
    s, b, _ = c.post("/v1/genre", {"track_id": 12})
    check(is_error(s, b, "bad_request", 400, "track_id"), f"numeric track_id {s} {b}")
    s, b, _ = c.post("/v1/genre", {"track_id": "x" * 500})
    check(is_error(s, b, "bad_request", 400, "track_id"), f"long track_id {s} {b}")
    s, b, _ = c.post("/v1/genre", {"track_id": "no-such-track"})
    check(is_error(s, b, "not_found", 404, "track_id"), f"unknown track {s} {b}")
    s, b, _ = c.post("/v1/popularity", {"features": {"popularity": 50}})
    check(is_error(s, b, "bad_request", 400, "popularity"), f"popularity is not an input of itself {s} {b}")
    s, b, h = c.request("GET", "/v1/genre")
    check(is_error(s, b, "method_not_allowed", 405) and h.get("Allow") == "POST", f"GET /v1/genre {s} {b}")
    s, b, h = c.request("POST", "/healthz", raw=b"{}", headers={"Content-Type": "application/json"})
    check(is_error(s, b, "method_not_allowed", 405) and h.get("Allow") == "GET, HEAD", f"POST /healthz {s} {b}")
    # HEAD on a GET route: the GET reply's status and headers, no body.
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("HEAD", "/healthz")
    resp = conn.getresponse()
    check(resp.status == 200 and resp.read() == b"" and resp.headers.get("Content-Type") == "application/json"
          and resp.headers.get("Content-Length") == str(len(json.dumps({"status": "ok"}, separators=(",", ":")))),
          f"HEAD /healthz {resp.status} {dict(resp.headers)}")
    conn.close()
    s, b, h = c.request("HEAD", "/v1/genre")
    check(s == 405 and h.get("Allow") == "POST", f"HEAD on a POST route {s} {dict(h)}")
    s, b, _ = c.request("GET", "/v1/nothing")
    check(is_error(s, b, "not_found", 404), f"unknown route {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {}}', headers={"Content-Type": "text/plain"})
    check(is_error(s, b, "unsupported_media_type", 415), f"wrong content type {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {}}')
    check(is_error(s, b, "unsupported_media_type", 415), f"no content type {s} {b}")
    big = b'{"features": {"tempo": 1' + b" " * (1100 * 1024) + b"}}"
    # A body over the limit: read and dropped, then the 413, so a client that sends it all before
    # reading (as http.client does) gets the reply instead of a reset; ten times, as the reset was
    # a race.
    for _ in range(10):
        try:
            s, b, _ = c.post("/v1/genre", None, raw=big, headers={"Content-Type": "application/json"})
        except OSError as e:
            s, b = 0, repr(e)
        if not is_error(s, b, "too_large", 413):
            break
    check(is_error(s, b, "too_large", 413), f"body over the limit {s} {b}")

    def raw_exchange(head, body_part):
        sock = socket.create_connection(("127.0.0.1", c.port), timeout=30)
        sock.sendall(head + body_part)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            reply += part
        sock.close()
        head, _, text = reply.partition(b"\r\n\r\n")
        return head, (json.loads(text) if text.strip() else None)

    # "Expect: 100-continue": the client waits, so the 413 comes at once, with no 100 Continue.
    head, b = raw_exchange(b"POST /v1/genre HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(big), b"")
    check(head.startswith(b"HTTP/1.1 413") and is_error(413, b, "too_large", 413), f"413 before 100 Continue {head} {b}")
    # A declared length past what is worth reading (16 MiB): the 413 at once, the body unread.
    head, b = raw_exchange(b"POST /v1/genre HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n" % (17 << 20), big[:1024])
    check(head.startswith(b"HTTP/1.1 413") and is_error(413, b, "too_large", 413), f"huge declared body {head} {b}")
    # A chunked body that never ends: the server stops reading it after 16 MiB.
    sock = socket.create_connection(("127.0.0.1", c.port), timeout=30)
    sock.sendall(b"POST /v1/genre HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk, sent, ended = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n", 0, False
    try:
        while sent < (48 << 20):
            sock.sendall(chunk)
            sent += 1 << 20
    except OSError:
        ended = True
    sock.close()
    check(ended, f"an endless chunked body is cut off (sent {sent >> 20} MiB)")
    s, b, _ = c.post("/v1/genre", None, raw=big, headers={"Content-Type": "application/json"}, chunked=True)
    check(is_error(s, b, "too_large", 413), f"chunked body over the limit {s} {b}")
    s, b, _ = c.post("/v1/genre", None, raw=b'{"features": {"tempo": 120}}',
                     headers={"Content-Type": "application/json; charset=utf-8"}, chunked=True)
    check(s == 200, f"chunked body within the limit {s} {b}")

    # Still healthy after all of that.
    s, b, _ = c.request("GET", "/readyz")
    check(s == 200, "still ready")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration test: mutational fuzzing of every JSON route of a real timbre-serve (in CI, the
AddressSanitizer build too). Valid requests are mutated as JSON (values replaced by odd ones, keys
dropped or added, arrays repeated) and as bytes (flips, cuts, stray brackets, ill-formed UTF-8);
every reply must carry a status the API documents and a body that is strict UTF-8 JSON, and the
server must answer throughout and exit 0 on SIGTERM. A fixed seed: a failure reproduces."""
import http.client
import json
import os
import random
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import (check, start_server, stop_server, test_arguments, train_small,  # noqa: E402
                       with_music_genre, write_slices)
import test_http  # noqa: E402

REQUESTS = 10000
STATUSES = {200, 400, 404, 405, 413, 415, 503}
WEIRD = [None, True, False, 0, -1, 1e308, -1e308, 5e-324, 2 ** 63, -2 ** 63, 2 ** 64, "", "x" * 300, "\u0000",
         "\u00e9\u2014\U0001f3b5", [], {}, [[]], {"a": {}}, 0.5, "NaN", "-0", 12345678901234567890, [1] * 50, "?",
         "F#", "Major"]
KEYS = ["features", "track_id", "k", "alpha", "instances", "ratings", "inputs", "shape", "data", "datatype", "id",
        "name", "multilabel", "save_as", "rating", "interval_method", "x"]
SPLICES = [b"[", b"{", b'"', b"\\u", b"\\ud800", b"1e999", b"-", b",", b"}", b"]", b"\x00", b"\xff", b"\xc3",
           b"\xed\xa0\x80", b"NaN", b'{"a":' * 40]


def seeds(ids, features):
    row = [features[f] for f in sorted(features)]
    nopop = {k: v for k, v in features.items() if k != "popularity"}
    return [
        ("/v1/genre", {"features": features}), ("/v1/genre", {"track_id": ids[5]}),
        ("/v1/genre", {"instances": [{"features": features}, {"track_id": ids[7]}]}),
        ("/v1/genre/set", {"features": features, "alpha": 0.1}),
        ("/v1/genre/set", {"instances": [{"features": features, "alpha": 0.05}]}),
        ("/v1/popularity", {"features": nopop, "alpha": 0.1}),
        ("/v1/popularity", {"track_id": ids[3], "alpha": 0.2, "interval_method": "absolute"}),
        ("/v1/recommend", {"track_id": ids[1], "k": 10}), ("/v1/recommend", {"features": nopop, "k": 5}),
        ("/v1/taste", {"ratings": [{"track_id": t, "rating": i % 10} for i, t in enumerate(ids[:20])], "k": 5}),
        ("/v2/models/genre/infer", {"id": "q", "inputs": [{"name": "input", "shape": [2, len(row)],
                                                          "datatype": "FP32", "data": [row, row]}]}),
        ("/v2/models/popularity/infer", {"inputs": [{"name": "input", "shape": [1, len(row) - 1],
                                                    "datatype": "FP64", "data": row[:-1]}]}),
    ]


def mutate_value(rnd, v):
    if isinstance(v, dict) and v and rnd.random() < 0.5:
        v, key = dict(v), rnd.choice(sorted(v))
        op = rnd.random()
        if op < 0.3:
            del v[key]
        elif op < 0.6:
            v[key] = mutate_value(rnd, v[key])
        else:
            v[rnd.choice(KEYS + [key + "_"])] = rnd.choice(WEIRD)
        return v
    if isinstance(v, list) and v and rnd.random() < 0.5:
        v, i = list(v), rnd.randrange(len(v))
        op = rnd.random()
        if op < 0.3:
            del v[i]
        elif op < 0.6:
            v[i] = mutate_value(rnd, v[i])
        elif op < 0.8:
            v.append(rnd.choice(WEIRD))
        else:
            v = v * rnd.choice([2, 10, 300])
        return v
    return rnd.choice(WEIRD) if rnd.random() < 0.7 else v


def mutate_bytes(rnd, b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.random()
        if op < 0.3 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op < 0.5 and b:
            at = rnd.randrange(len(b))
            del b[at:at + rnd.randint(1, 20)]
        elif op < 0.8:
            at = rnd.randint(0, len(b))
            b[at:at] = rnd.choice(SPLICES)
        else:
            b = b[:rnd.randint(0, len(b))]
    return bytes(b)


def main():
    a = test_arguments()
    return with_music_genre(a, "timbre-fuzz-", lambda data, tmp: run(a, data, tmp))


def run(a, data, tmp):
    db = train_small(a, write_slices(data, tmp)[0]["train.csv"], tmp)
    with sqlite3.connect(db) as con:
        ids = [r[0] for r in con.execute("SELECT track_id FROM tracks ORDER BY track_id LIMIT 50")]
        stored = json.loads(con.execute("SELECT features FROM tracks ORDER BY track_id LIMIT 1").fetchone()[0])
    features = {k: v for k, v in stored.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    server, port = start_server(a.server, db, tmp)
    check(port is not None, "server started")
    if port is None:
        return 1
    rnd = random.Random(20261202)
    cases, gets = seeds(ids, features), ["/v1/tracks?q=a&limit=5", f"/v1/tracks/{ids[0]}", "/v1/taste/x",
                                         "/v2/models/genre", "/v1/models", "/readyz"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seen, failures = {}, []
    try:
        for i in range(REQUESTS):
            if rnd.random() < 0.1:
                method, path, raw = "GET", rnd.choice(gets), None
                if rnd.random() < 0.5:
                    path += rnd.choice(["%FF", "%00", "&q=" + "a" * 300, "&limit=-1", "/..", "&%C3=1", "?x=%ED%A0%80"])
            else:
                method, (path, body) = "POST", rnd.choice(cases)
                for _ in range(rnd.randint(1, 3)):
                    body = mutate_value(rnd, body)
                raw = json.dumps(body).encode()
                if rnd.random() < 0.4:
                    raw = mutate_bytes(rnd, raw)
            try:
                conn.request(method, path, body=raw,
                             headers={"Content-Type": "application/json"} if raw is not None else {})
                resp = conn.getresponse()
                status, text = resp.status, resp.read()
            except OSError as e:
                failures.append(f"request {i}: {method} {path} {raw[:200] if raw else ''!r}: {e!r}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if server.poll() is not None:
                    break
                continue
            seen[status] = seen.get(status, 0) + 1
            try:
                reply = json.loads(text.decode("utf-8"))  # strict UTF-8
                ok = status in STATUSES and (status == 200 or "error" in reply)
            except ValueError:
                ok = False
            if not ok:
                failures.append(f"request {i}: {method} {path} {raw[:200] if raw else ''!r} -> {status} {text[:200]!r}")
    finally:
        rc = stop_server(server, 30)
    for f in failures[:10]:
        print(f, file=sys.stderr)
    check(not failures, f"{len(failures)} of {REQUESTS} fuzzed requests got no documented, UTF-8 JSON reply")
    check(seen.get(200, 0) > REQUESTS // 20 and seen.get(400, 0) > REQUESTS // 4,
          f"the mutations reach both the models and the checks: {seen}")
    check(rc == 0, f"the server exits 0 on SIGTERM after the fuzzing (got {rc}): "
                   f"{open(server.log_path, encoding='utf-8', errors='replace').read()[-2000:]}")
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed; statuses {seen}")
    return 1 if test_http.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

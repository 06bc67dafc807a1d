"""Drives tests/bench/recommend_http.sh: trains the recommendation index of spotify_tracks_114k with
each embedding given (default: standardized, the old default, and genre, the new one), serves
each with its own timbre-serve (2 threads) and runs wrk (2 threads, 32 connections) on
POST /v1/recommend by track id and by features, the indexes in turn within each round (rounds
interleave, medians reported). Prints each index's Genre-Hit@10 beside its rates and the ratio
of every rate to the first index's."""
import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import free_port, wait_http, wrk  # noqa: E402

FEATURES = {"danceability": 0.652, "energy": 0.941, "key": 10, "loudness": -5.2, "mode": 0, "speechiness": 0.0748,
            "acousticness": 0.00468, "instrumentalness": 0.0792, "liveness": 0.115, "valence": 0.759,
            "tempo": 120.9, "duration_ms": 250000, "time_signature": 4, "explicit": 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--embeddings", default="standardized,genre")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-rec-http-")
    kinds = [k for k in args.embeddings.split(",") if k]
    servers, reports = {}, {}
    try:
        for kind in kinds:
            db, report = os.path.join(tmp, f"{kind}.db"), os.path.join(tmp, f"{kind}.json")
            subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", args.tracks, "--db", db,
                            "--task", "recommend", "--embedding", kind, "--report", report, "--log-level", "warn"],
                           check=True)
            reports[kind] = json.load(open(report))["metrics"]
            track = sqlite3.connect(db).execute("SELECT track_id FROM tracks LIMIT 1 OFFSET 1000").fetchone()[0]
            port = free_port()
            proc = subprocess.Popen([os.path.join(args.build, "server/timbre-serve"), "--db", db, "--listen",
                                     f"127.0.0.1:{port}", "--threads", "2", "--no-access-log", "--log-level", "warn"])
            servers[kind] = (proc, f"http://127.0.0.1:{port}/v1/recommend", track)
            if not wait_http(port, "/healthz"):
                sys.exit(f"timbre-serve on the {kind} index did not start")
        bodies = {"by id": lambda t: json.dumps({"track_id": t, "k": 10}),
                  "by features": lambda t: json.dumps({"features": FEATURES, "k": 10})}
        for kind, (proc, url, track) in servers.items():  # warm-up, not reported
            wrk(proc.pid, url, bodies["by id"](track), 2, 32)
        runs = {(k, q): [] for k in kinds for q in bodies}
        for _ in range(args.rounds):
            for q, body in bodies.items():
                for kind, (proc, url, track) in servers.items():
                    runs[(kind, q)].append(wrk(proc.pid, url, body(track), args.seconds, 32))
        print(f"\nPOST /v1/recommend, spotify_tracks_114k ({reports[kinds[0]]['n_tracks']} tracks), timbre-serve "
              f"2 threads, wrk 2 threads 32 connections, {args.seconds} s a row, medians of {args.rounds} rounds")
        print(f"{'index':<14}{'dim':>5}{'Hit@10':>8}{'query':>13}{'req/s':>9}{'ratio':>7}{'p99 us':>8}"
              f"{'server us/req':>15}{'non-2xx':>8}")
        for q in bodies:
            base = statistics.median(r["rps"] for r in runs[(kinds[0], q)])
            for kind in kinds:
                rs = runs[(kind, q)]
                rps = statistics.median(r["rps"] for r in rs)
                print(f"{kind:<14}{reports[kind]['dim']:>5}{reports[kind]['genre_hit_at_10']:>8.4f}{q:>13}"
                      f"{rps:>9.0f}{rps / base:>7.2f}{statistics.median(r['p99_us'] for r in rs):>8.0f}"
                      f"{statistics.median(r['server_us'] for r in rs):>15.1f}{sum(r['non2xx'] for r in rs):>8}")
        print("per round (req/s): " + "; ".join(f"{k} {q}: " + "/".join(f"{r['rps']:.0f}" for r in v)
                                                 for (k, q), v in runs.items()))
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()

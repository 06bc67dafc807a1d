"""Drives tests/bench/ab.sh: trains one database with A's trainer (B's copy of it is migrated by
B's trainer when B's schema is newer: the same models either way), then alternates wrk runs
against server A and server B (each started fresh for its run, 2 threads, no access log, default
limits) and prints every run and the median ratio B/A."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sqlite3
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "http"))
from run import GENRE_BODY, free_port, wait_http, wrk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--trainer-a", required=True)
    ap.add_argument("--trainer-b", required=True)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--route", default="/v1/genre")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-ab-")
    dbs = {"A": os.path.join(tmp, "a.db"), "B": os.path.join(tmp, "b.db")}
    subprocess.run([args.trainer_a, "--data", args.music_genre, "--db", dbs["A"], "--log-level", "warn"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with sqlite3.connect(dbs["A"]) as con:  # one file, WAL folded in, before copying it
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(dbs["A"], dbs["B"])
    subprocess.run([args.trainer_b, "models", "--db", dbs["B"], "list"], check=True, stdout=subprocess.DEVNULL)
    body = GENRE_BODY if args.route.startswith("/v1/genre") else ""
    rates = {"A": [], "B": []}
    for r in range(args.rounds):
        for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
            port = free_port()
            proc = subprocess.Popen([args.a if side == "A" else args.b, "--db", dbs[side], "--listen", f"127.0.0.1:{port}",
                                     "--threads", "2", "--no-access-log", "--log-level", "warn"])
            try:
                if not wait_http(port, "/healthz"):
                    sys.exit(f"server {side} did not start")
                wrk(proc.pid, f"http://127.0.0.1:{port}{args.route}", body, 1, args.connections)  # warm-up
                res = wrk(proc.pid, f"http://127.0.0.1:{port}{args.route}", body, args.seconds, args.connections)
            finally:
                proc.terminate()
                proc.wait()
            rates[side].append(res["rps"])
            print(f"round {r + 1} {side}: {res['rps']:.0f} req/s, p99 {res['p99_us'] / 1000:.2f} ms, "
                  f"server {res['server_us']:.1f} us/request, errors {res['errors']}, non-2xx {res['non2xx']}")
    ratios = [b / a for a, b in zip(rates["A"], rates["B"])]
    print(json.dumps({"route": args.route, "connections": args.connections, "A_rps": rates["A"],
                      "B_rps": rates["B"], "median_A": statistics.median(rates["A"]),
                      "median_B": statistics.median(rates["B"]), "ratios_B_over_A": [round(x, 3) for x in ratios],
                      "median_ratio": round(statistics.median(ratios), 3)}))


if __name__ == "__main__":
    main()

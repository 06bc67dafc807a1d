"""Drives tests/bench/http.sh: trains both servers' models on music_genre_50k, starts timbre-serve
(2 threads) and FastAPI + uvicorn (2 workers), and runs wrk (2 threads) against each, one after the
other: saturation (32 connections) and a paced run at about half of each server's own saturation
rate. Every request runs the model (no caching on either side)."""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GENRE_BODY = ('{"features": {"acousticness": 0.00468, "danceability": 0.652, "duration_ms": 250000, "energy": 0.941, '
              '"instrumentalness": 0.792, "key": 10, "liveness": 0.115, "loudness": -5.201, "mode": 0, '
              '"speechiness": 0.0748, "tempo": 100.889, "valence": 0.759, "popularity": 27}}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1"):
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def wrk(url, body, seconds, connections, pace_ms=0):
    env = dict(os.environ, BODY=body, PACE_MS=str(pace_ms))
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(HERE, "post.lua"), url], env=env, capture_output=True, text=True, check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    r["connections"], r["pace_ms"] = connections, pace_ms
    return r


def paced(url, body, seconds, saturation_rps, connections):
    """Each connection waits pace ms between requests: about half the saturation rate in total."""
    pace = max(1, round(1000.0 * connections / (saturation_rps / 2.0)))
    return wrk(url, body, seconds, connections, pace)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are reported")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-http-")
    db, peer_model = os.path.join(tmp, "timbre.db"), os.path.join(tmp, "peer.pkl")
    subprocess.run([os.path.join(args.build, "models/timbre-train"), "--data", args.music_genre, "--db", db,
                    "--log-level", "warn"], check=True)
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "train_peer.py"), args.music_genre, peer_model,
                    os.path.dirname(HERE)], check=True)
    track = json.loads(subprocess.run(["/usr/bin/python3", "-c", f"import sqlite3; print('\"' + sqlite3.connect('{db}')"
                                       ".execute('SELECT track_id FROM tracks LIMIT 1 OFFSET 100').fetchone()[0] + '\"')"],
                                      capture_output=True, text=True, check=True).stdout)
    tport, fport = free_port(), free_port()
    timbre = subprocess.Popen([os.path.join(args.build, "server/timbre-serve"), "--db", db, "--listen",
                               f"127.0.0.1:{tport}", "--threads", "2", "--no-access-log", "--log-level", "warn"])
    fastapi = subprocess.Popen(["/usr/bin/python3", "-m", "uvicorn", "fastapi_app:app", "--workers", "2", "--port",
                                str(fport), "--log-level", "warning", "--no-access-log"], cwd=HERE,
                               env=dict(os.environ, TIMBRE_BENCH_MODEL=peer_model), stdout=subprocess.DEVNULL)
    try:
        if not wait_http(tport, "/healthz") or not wait_http(fport, "/docs"):
            sys.exit("a server did not start")
        s = args.seconds
        t_url, f_url = f"http://127.0.0.1:{tport}", f"http://127.0.0.1:{fport}"
        rec_body = json.dumps({"track_id": track, "k": 10})
        # Warm both servers first (not reported): FastAPI's first seconds ran at half its later rate
        # (workers paging in the pickled forest), which flattered the first round's ratio.
        wrk(t_url + "/v1/genre", GENRE_BODY, 3, 32)
        wrk(f_url + "/v1/genre", GENRE_BODY, 5, 32)
        rounds = []
        for _ in range(args.rounds):  # interleaved, so a noisy minute touches every row alike
            rows = [("timbre-serve", "GET /healthz", wrk(t_url + "/healthz", "", s, 32)),
                    ("timbre-serve", "POST /v1/genre", wrk(t_url + "/v1/genre", GENRE_BODY, s, 32)),
                    ("timbre-serve", "POST /v1/recommend", wrk(t_url + "/v1/recommend", rec_body, s, 32)),
                    ("FastAPI+uvicorn", "POST /v1/genre", wrk(f_url + "/v1/genre", GENRE_BODY, s, 32))]
            t_sat, f_sat = rows[1][2]["rps"], rows[3][2]["rps"]
            rows.append(("timbre-serve", "POST /v1/genre, ~half rate",
                         paced(t_url + "/v1/genre", GENRE_BODY, s, t_sat, 32)))
            rows.append(("FastAPI+uvicorn", "POST /v1/genre, ~half rate",
                         paced(f_url + "/v1/genre", GENRE_BODY, s, f_sat, 8)))
            # The floor of the machine and the HTTP layer: the bare route at the same pace.
            rows.append(("timbre-serve", "GET /healthz, same pace",
                         wrk(t_url + "/healthz", "", s, 32, rows[4][2]["pace_ms"])))
            rounds.append(rows)
    finally:
        timbre.send_signal(signal.SIGTERM)
        fastapi.send_signal(signal.SIGTERM)
        timbre.wait(timeout=30)
        fastapi.wait(timeout=30)
    print(f"HTTP benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; wrk 2 threads, {args.seconds} s a row; "
          "timbre-serve 2 threads (gbdt genre model), FastAPI + uvicorn 2 workers (scikit-learn RF(100))")
    header = (f"{'server':<17}{'route':<30}{'conns':>6}{'pace ms':>8}{'req/s':>11}{'p50 us':>9}{'p99 us':>9}"
              f"{'non-2xx':>8}{'errors':>7}")
    for n, rows in enumerate(rounds):
        print(f"round {n + 1} of {len(rounds)}\n{header}")
        for server, route, r in rows:
            print(f"{server:<17}{route:<30}{r['connections']:>6}{r['pace_ms']:>8}{r['rps']:>11.0f}{r['p50_us']:>9}"
                  f"{r['p99_us']:>9}{r['non2xx']:>8}{r['errors']:>7}")
        t_sat, f_sat = rows[1][2]["rps"], rows[3][2]["rps"]
        print(f"/v1/genre: timbre-serve {t_sat:.0f} req/s = {t_sat / f_sat:.0f}x FastAPI's {f_sat:.0f}; "
              f"{100 * t_sat / rows[0][2]['rps']:.0f}% of timbre-serve's /healthz rate; "
              f"p99 at ~half rate {rows[4][2]['p99_us'] / 1000:.2f} ms (/healthz at the same pace: "
              f"{rows[6][2]['p99_us'] / 1000:.2f} ms)")
    if len(rounds) > 1:
        med = lambda i, key: statistics.median(r[i][2][key] for r in rounds)  # noqa: E731
        print(f"medians of {len(rounds)} rounds: /v1/genre {med(1, 'rps'):.0f} req/s, FastAPI {med(3, 'rps'):.0f}, "
              f"ratio of the rounds {statistics.median(r[1][2]['rps'] / r[3][2]['rps'] for r in rounds):.0f}x; "
              f"/healthz {med(0, 'rps'):.0f}; p99 at ~half rate {med(4, 'p99_us') / 1000:.2f} ms "
              f"(/healthz same pace {med(6, 'p99_us') / 1000:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())

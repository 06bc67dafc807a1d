"""Drives tests/bench/http.sh: trains both servers' models on music_genre_50k, starts timbre-serve
(2 threads) and FastAPI + uvicorn (2 workers), and runs wrk (2 threads) against each, one after the
other: saturation (32 connections) and a paced run at about half of each server's own saturation
rate. Every request runs the model (no caching on either side). A bare libmicrohttpd server with
the same threads (tests/bench/http/bare_mhd.c) gives the ceiling of the HTTP layer on this machine
with this client; each row also says how much CPU the server (all its processes) and wrk spent
per request, as wrk shares the cores with the server under test."""
import argparse
import json
import os
import resource
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


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root):
    """User + system CPU seconds of root and every process below it (uvicorn's workers)."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo.extend(p for p, (ppid, _) in stats.items() if ppid == pid)
    return total / TICK


def wrk(server_pid, url, body, seconds, connections, pace_ms=0):
    env = dict(os.environ, BODY=body, PACE_MS=str(pace_ms))
    cpu0, child0 = tree_cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(HERE, "post.lua"), url], env=env, capture_output=True, text=True, check=True)
    cpu1, child1 = tree_cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    r["connections"], r["pace_ms"] = connections, pace_ms
    n = max(1, r["requests"])
    r["server_us"] = 1e6 * (cpu1 - cpu0) / n
    r["wrk_us"] = 1e6 * (child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime) / n
    return r


def paced(server_pid, url, body, seconds, saturation_rps, connections):
    """Each connection waits pace ms between requests: about half the saturation rate in total."""
    pace = max(1, round(1000.0 * connections / (saturation_rps / 2.0)))
    return wrk(server_pid, url, body, seconds, connections, pace)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are reported")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-http-")
    db, peer_model = os.path.join(tmp, "timbre.db"), os.path.join(tmp, "peer.pkl")
    subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", args.music_genre, "--db", db,
                    "--log-level", "warn"], check=True)
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "train_peer.py"), args.music_genre, peer_model,
                    os.path.dirname(HERE)], check=True)
    track = json.loads(subprocess.run(["/usr/bin/python3", "-c", f"import sqlite3; print('\"' + sqlite3.connect('{db}')"
                                       ".execute('SELECT track_id FROM tracks LIMIT 1 OFFSET 100').fetchone()[0] + '\"')"],
                                      capture_output=True, text=True, check=True).stdout)
    tport, fport, bport = free_port(), free_port(), free_port()
    bare = subprocess.Popen([os.path.join(args.build, "tests/timbre-bare-mhd-bench"), str(bport), "2"])
    timbre = subprocess.Popen([os.path.join(args.build, "server/timbre-serve"), "--db", db, "--listen",
                               f"127.0.0.1:{tport}", "--threads", "2", "--no-access-log", "--log-level", "warn"])
    fastapi = subprocess.Popen(["/usr/bin/python3", "-m", "uvicorn", "fastapi_app:app", "--workers", "2", "--port",
                                str(fport), "--log-level", "warning", "--no-access-log"], cwd=HERE,
                               env=dict(os.environ, TIMBRE_BENCH_MODEL=peer_model), stdout=subprocess.DEVNULL)
    try:
        if not all(wait_http(p, path) for p, path in ((tport, "/healthz"), (fport, "/docs"), (bport, "/"))):
            sys.exit("a server did not start")
        s = args.seconds
        t_url, f_url, b_url = (f"http://127.0.0.1:{p}" for p in (tport, fport, bport))
        tp, fp, bp = timbre.pid, fastapi.pid, bare.pid
        rec_body = json.dumps({"track_id": track, "k": 10})
        # Warm both servers first (not reported): FastAPI's first seconds ran at half its later rate
        # (workers paging in the pickled forest), which flattered the first round's ratio.
        wrk(tp, t_url + "/v1/genre", GENRE_BODY, 3, 32)
        wrk(fp, f_url + "/v1/genre", GENRE_BODY, 5, 32)
        rounds = []
        for _ in range(args.rounds):  # interleaved, so a noisy minute touches every row alike
            rows = {"bare": ("bare libmicrohttpd", "GET /healthz", wrk(bp, b_url + "/healthz", "", s, 32)),
                    "healthz": ("timbre-serve", "GET /healthz", wrk(tp, t_url + "/healthz", "", s, 32)),
                    "genre": ("timbre-serve", "POST /v1/genre", wrk(tp, t_url + "/v1/genre", GENRE_BODY, s, 32)),
                    "recommend": ("timbre-serve", "POST /v1/recommend",
                                  wrk(tp, t_url + "/v1/recommend", rec_body, s, 32)),
                    "peer": ("FastAPI+uvicorn", "POST /v1/genre", wrk(fp, f_url + "/v1/genre", GENRE_BODY, s, 32))}
            rows["genre_paced"] = ("timbre-serve", "POST /v1/genre, ~half rate",
                                   paced(tp, t_url + "/v1/genre", GENRE_BODY, s, rows["genre"][2]["rps"], 32))
            rows["peer_paced"] = ("FastAPI+uvicorn", "POST /v1/genre, ~half rate",
                                  paced(fp, f_url + "/v1/genre", GENRE_BODY, s, rows["peer"][2]["rps"], 8))
            # The floor of the machine and the HTTP layer: the bare route at the same pace.
            rows["healthz_paced"] = ("timbre-serve", "GET /healthz, same pace",
                                     wrk(tp, t_url + "/healthz", "", s, 32, rows["genre_paced"][2]["pace_ms"]))
            rounds.append(rows)
    finally:
        for p in (timbre, fastapi, bare):
            p.send_signal(signal.SIGTERM)
        for p in (timbre, fastapi, bare):
            p.wait(timeout=30)
    print(f"HTTP benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; wrk 2 threads, {args.seconds} s a row; "
          "timbre-serve 2 threads (gbdt genre model), FastAPI + uvicorn 2 workers (scikit-learn RF(100))")
    header = (f"{'server':<19}{'route':<28}{'conns':>6}{'pace ms':>8}{'req/s':>11}{'p50 us':>9}{'p99 us':>9}"
              f"{'non-2xx':>8}{'errors':>7}{'server cpu us/req':>18}{'wrk cpu us/req':>15}")
    for n, rows in enumerate(rounds):
        print(f"round {n + 1} of {len(rounds)}\n{header}")
        for server, route, r in rows.values():
            print(f"{server:<19}{route:<28}{r['connections']:>6}{r['pace_ms']:>8}{r['rps']:>11.0f}{r['p50_us']:>9}"
                  f"{r['p99_us']:>9}{r['non2xx']:>8}{r['errors']:>7}{r['server_us']:>18.1f}{r['wrk_us']:>15.1f}")
        v = {key: row[2] for key, row in rows.items()}
        print(f"/v1/genre: timbre-serve {v['genre']['rps']:.0f} req/s = {v['genre']['rps'] / v['peer']['rps']:.0f}x "
              f"FastAPI's {v['peer']['rps']:.0f}; {100 * v['genre']['rps'] / v['healthz']['rps']:.0f}% of its /healthz "
              f"rate, {100 * v['genre']['rps'] / v['bare']['rps']:.0f}% of bare libmicrohttpd's; server CPU per "
              f"request {v['peer']['server_us'] / v['genre']['server_us']:.0f}x less than FastAPI's; "
              f"p99 at ~half rate {v['genre_paced']['p99_us'] / 1000:.2f} ms (/healthz at the same pace: "
              f"{v['healthz_paced']['p99_us'] / 1000:.2f} ms)")
    if len(rounds) > 1:
        med = lambda key, f: statistics.median(f(r[key][2]) for r in rounds)  # noqa: E731
        ratio = statistics.median(r["genre"][2]["rps"] / r["peer"][2]["rps"] for r in rounds)
        cpu_ratio = statistics.median(r["peer"][2]["server_us"] / r["genre"][2]["server_us"] for r in rounds)
        rps = lambda r: r["rps"]  # noqa: E731
        print(f"medians of {len(rounds)} rounds: /v1/genre {med('genre', rps):.0f} req/s, FastAPI "
              f"{med('peer', rps):.0f}, ratio of the rounds {ratio:.0f}x (server CPU per request: {cpu_ratio:.0f}x "
              f"less); /healthz {med('healthz', rps):.0f}, bare libmicrohttpd {med('bare', rps):.0f} "
              f"({med('bare', rps) / med('peer', rps):.0f}x FastAPI's); p99 at ~half rate "
              f"{med('genre_paced', lambda r: r['p99_us']) / 1000:.2f} ms "
              f"(/healthz same pace {med('healthz_paced', lambda r: r['p99_us']) / 1000:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())

"""Drives tests/bench/recommend_scale.sh: trains spotify_tracks_114k's recommendation index (the
default embedding), then for each catalog size runs timbre-scale-bench (real vectors jittered into
that many rows: the exact scan, Timbre's HNSW graph, filtered searches) and the peers on the same
vectors (python3-hnswlib, FAISS IndexHNSWFlat; scale_peers.py, one process each), all on one thread.
At --http-rows it also publishes the catalog with its graph and times POST /v1/recommend by random
track id over HTTP (timbre-serve 2 threads, wrk 1 thread 4 connections), with the graph and with
--exact-index. Prints the tables for docs/performance.md; the raw results go to WORK/summary.json."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "http"))
from run import free_port, wait_http  # noqa: E402


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS")}


def wrk_run(url, rows, seconds, pace_ms=0):
    env = dict(os.environ, TRACK_ROWS=str(rows), TRACK_PREFIX="scale", PACE_MS=str(pace_ms))
    r = subprocess.run(["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", "-s", os.path.join(HERE, "http", "post.lua"),
                        url], env=env, capture_output=True, text=True, check=True)
    return json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])


def http_run(build, db, rows, seconds, extra):
    """Serves db, waits for it; wrk at saturation (4 connections), then paced at about half that
    rate (a p99 not made of queueing); the load time and the server's memory."""
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(build, "server/timbre-serve"), "--db", db, "--listen", f"127.0.0.1:{port}",
                             "--threads", "2", "--no-access-log", "--log-level", "warn", *extra])
    try:
        if not wait_http(port, "/readyz", seconds=1800):
            sys.exit("timbre-serve on the scaled catalog did not start")
        out = {"load_seconds": round(time.monotonic() - t0, 1), **peak_rss(proc.pid)}
        url = f"http://127.0.0.1:{port}/v1/recommend"
        wrk_run(url, rows, 3)  # warm-up
        out["saturated"] = wrk_run(url, rows, seconds)
        pace = max(1, round(1000.0 * 4 / (out["saturated"]["rps"] / 2.0)))
        out["paced"] = wrk_run(url, rows, seconds, pace)
        out["paced"]["pace_ms"] = pace
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def http_sizes(args, rows, catalog):
    runs = {"hnsw": http_run(args.build, catalog, rows, args.seconds, [])}
    for ef in [e for e in args.http_ef.split(",") if e]:
        runs[f"hnsw ef {ef}"] = http_run(args.build, catalog, rows, args.seconds, ["--hnsw-ef", ef])
    runs["exact"] = http_run(args.build, catalog, rows, args.seconds, ["--exact-index"])
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--rows", default="1000000,5000000")
    ap.add_argument("--http-rows", type=int, default=1000000)
    ap.add_argument("--faiss-rows", default="1000000", help="sizes FAISS builds at (its build is the slowest)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--http-ef", default="", help="also serve with these --hnsw-ef values")
    ap.add_argument("--http-only", action="store_true", help="only the HTTP runs, on WORK/HTTP_ROWS/catalog.db")
    ap.add_argument("--work", default=None, help="keep the files here (default: a scratch directory, removed)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="timbre-scale-")
    os.makedirs(work, exist_ok=True)
    summary = {"sizes": []}
    if args.http_only:
        runs = http_sizes(args, args.http_rows, os.path.join(work, str(args.http_rows), "catalog.db"))
        json.dump(runs, open(os.path.join(work, "http.json"), "w"), indent=1)
        http_report(runs)
        return
    try:
        base = os.path.join(work, "base.db")
        if not os.path.exists(base):
            subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", args.tracks, "--db", base,
                            "--task", "recommend", "--threads", "2", "--log-level", "warn"], check=True)
        for rows in [int(r) for r in args.rows.split(",") if r]:
            d = os.path.join(work, str(rows))
            os.makedirs(d, exist_ok=True)
            cmd = [os.path.join(args.build, "tests/timbre-scale-bench"), "--db", base, "--rows", str(rows),
                   "--queries", str(args.queries), "--out", d, "--ef", args.ef]
            catalog = os.path.join(d, "catalog.db")
            if rows == args.http_rows:
                shutil.copy(base, catalog)
                cmd += ["--out-db", catalog]
            print(f"timbre-scale-bench, {rows} rows ...", file=sys.stderr, flush=True)
            size = {"timbre": json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)}
            dim = size["timbre"]["dim"]
            faiss = str(rows) in args.faiss_rows.split(",")
            for peer in ("hnswlib", "faiss") if faiss else ("hnswlib",):
                print(f"{peer}, {rows} rows ...", file=sys.stderr, flush=True)
                size[peer] = json.loads(subprocess.run(
                    ["/usr/bin/python3", os.path.join(HERE, "scale_peers.py"), "--dir", d, "--dim", str(dim),
                     "--peer", peer, "--ef", args.ef], capture_output=True, text=True, check=True).stdout)
            os.remove(os.path.join(d, "vectors.f32"))
            if rows == args.http_rows:
                print(f"HTTP, {rows} rows ...", file=sys.stderr, flush=True)
                size["http"] = http_sizes(args, rows, catalog)
            summary["sizes"].append(size)
            with open(os.path.join(work, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1)
            report(size)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def report(size):
    t, h = size["timbre"], size["hnswlib"]
    f = size.get("faiss", {"build_seconds": float("nan"), "rss_bytes": float("nan"),
                           "sweep": [{"recall": float("nan"), "qps": float("nan")} for _ in t["hnsw"]]})
    mb = 1 << 20
    print(f"\n{t['rows']:,} rows × {t['dim']} values (spotify_tracks_114k's {t['real_rows']:,} real vectors jittered, "
          f"noise {t['sigma']:.4f} a value), {t['queries']} queries, k {t['k']}, one thread; exact scan "
          f"{t['exact_ms']:.2f} ms a query")
    print(f"build: Timbre {t['build_seconds']} s, hnswlib {h['build_seconds']} s ({h['build_seconds'] / t['build_seconds']:.2f}×), "
          f"FAISS {f['build_seconds']} s ({f['build_seconds'] / t['build_seconds']:.2f}×); memory added: Timbre "
          f"{t['graph_rss_bytes'] / mb:.0f} MB, hnswlib {h['rss_bytes'] / mb:.0f} MB, FAISS {f['rss_bytes'] / mb:.0f} MB")
    print("| ef | Timbre recall | Timbre q/s | hnswlib recall | hnswlib q/s | ratio | FAISS recall | FAISS q/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for a, b, c in zip(t["hnsw"], h["sweep"], f["sweep"]):
        print(f"| {a['ef']} | {a['recall']:.4f} | {a['qps']:,.0f} | {b['recall']:.4f} | {b['qps']:,.0f} | "
              f"{a['qps'] / b['qps']:.2f} | {c['recall']:.4f} | {c['qps']:,.0f} | {a['qps'] / c['qps']:.2f} |")
    print(f"| filter (ef {t.get('filtered_ef', 64)}) | share passing | recall | from the graph | ms | exact ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for x in t["filtered"]:
        print(f"| {x['filter']} | {x['pass_share']:.4f} | {x['recall']:.4f} | {x['from_graph']:.3f} | {x['ms']:.3f} | "
              f"{x['exact_ms']:.3f} |")
    if "http" in size:
        http_report(size["http"])
    sys.stdout.flush()


def http_report(runs):
    mb = 1 << 20
    print("| POST /v1/recommend by id | load | req/s | p50 ms | p99 ms | paced req/s | p50 ms | p99 ms | load s | "
          "peak RSS MB | RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, r in runs.items():
        a, b = r["saturated"], r["paced"]
        print(f"| {k} | 4 connections | {a['rps']:,.0f} | {a['p50_us'] / 1e3:.2f} | {a['p99_us'] / 1e3:.2f} | "
              f"{b['rps']:,.0f} | {b['p50_us'] / 1e3:.2f} | {b['p99_us'] / 1e3:.2f} | {r['load_seconds']} | "
              f"{r['VmHWM'] / mb:.0f} | {r['VmRSS'] / mb:.0f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

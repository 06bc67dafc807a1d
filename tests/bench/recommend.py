"""Timbre's recommendation index against FAISS IndexFlatIP, one run, same vectors and queries.

Timbre trains the index (timbre-train --task recommend: 80/20 split grouped by track_id, seed 42),
which reports Genre-Hit@10 and the build time; timbre-recommend-bench then times Timbre's search
in-process (C) and FAISS is timed on the very vectors Timbre stored (read from SQLite) with the
same query rows. Agreement: the share of queries whose top-k ids are identical, and where they
differ, whether only equal scores (ties) explain it.
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import faiss
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-rec-")
    db, report = os.path.join(tmp, "rec.db"), os.path.join(tmp, "report.json")
    subprocess.run([os.path.join(args.build, "trainer/timbre-train"), "--data", args.tracks, "--task", "recommend",
                    "--db", db, "--report", report, "--threads", str(args.threads), "--log-level", "warn"],
                   check=True)
    rep = json.load(open(report))
    m = rep["metrics"]
    out = subprocess.run([os.path.join(args.build, "tests/timbre-recommend-bench"), "--db", db, "--queries",
                          str(args.queries), "--calls", str(args.calls), "--k", str(args.k), "--threads",
                          str(args.threads)], check=True, capture_output=True, text=True)
    tb = json.loads(out.stdout)

    con = sqlite3.connect(db)
    n, dim, blob = con.execute(
        "SELECT v.n_rows, v.dim, v.vectors FROM index_vectors v JOIN models m ON m.id = v.model_id "
        "WHERE m.task = 'recommend' AND m.published = 1").fetchone()
    vec = np.frombuffer(blob, dtype="<f4").reshape(n, dim)
    stride = tb["query_stride"]
    queries = np.ascontiguousarray(vec[np.arange(tb["queries"]) * stride])
    index = faiss.IndexFlatIP(dim)
    index.add(vec)
    # Single queries with 1 thread and with all: the faster counts (FAISS may not gain from threads
    # on one query).
    single = {}
    for nt in sorted({1, args.threads}):
        faiss.omp_set_num_threads(nt)
        lat = []
        for c in range(args.calls):
            q = queries[c % len(queries)][None, :]
            t0 = time.perf_counter()
            index.search(q, args.k)
            lat.append(time.perf_counter() - t0)
        single[nt] = float(np.median(lat)) * 1e6
    faiss_single = min(single.values())
    faiss.omp_set_num_threads(args.threads)
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter()
        D, I = index.search(queries, args.k)
        best = min(best, time.perf_counter() - t0)
    faiss_qps = len(queries) / best

    same = ties = 0
    for qi, ours in enumerate(tb["hits"]):
        theirs = I[qi].tolist()
        if ours == theirs:
            same += 1
            continue
        # Differences explained by equal scores: the k-th score ties with a swapped-in row.
        qv = queries[qi].astype(np.float64)
        s_ours = vec[ours].astype(np.float64) @ qv
        s_theirs = vec[theirs].astype(np.float64) @ qv
        if np.allclose(np.sort(s_ours), np.sort(s_theirs), atol=1e-6):
            ties += 1
    recall = np.mean([len(set(o) & set(I[i].tolist())) / args.k for i, o in enumerate(tb["hits"])])

    print(f"Timbre recommendation index vs FAISS {faiss.__version__} IndexFlatIP, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.threads} threads")
    print(f"spotify_tracks_114k: index of {n} tracks x {dim} values (standardized audio features, L2-normalized)")
    print(f"Genre-Hit@10: {m.get('genre_hit_at_10', float('nan')):.4f} ({m.get('n_queries', 0)} test tracks "
          f"querying {m.get('n_pool', 0)} training tracks); index built in {m['build_seconds']:.3f} s")
    print(f"{'':32}{'Timbre':>12}{'FAISS':>12}{'ratio':>10}")
    print(f"{'single query top-10, median us':32}{tb['single_us_median']:12.1f}{faiss_single:12.1f}"
          f"{tb['single_us_median'] / faiss_single:10.3f}")
    print(f"{'  (Timbre with a plain C scan)':32}{tb['single_loop_us_median']:12.1f}")
    print(f"{'  (FAISS by thread count)':32}{'':12}" + "  ".join(f"{t} thr {u:.1f}" for t, u in single.items()))
    print(f"{'batch of %d queries, queries/s' % len(queries):32}{tb['batch_qps']:12.0f}{faiss_qps:12.0f}"
          f"{tb['batch_qps'] / faiss_qps:10.2f}")
    print(f"top-10 identical to FAISS: {same}/{len(queries)} queries; differing only by tied scores: {ties}; "
          f"recall vs FAISS {recall:.4f}")


if __name__ == "__main__":
    sys.exit(main())

"""The peers of tests/bench/recommend_scale.sh on the same vectors: python3-hnswlib (Debian 0.6.2)
and FAISS's IndexHNSWFlat, each with M 16 and ef_construction 200 as Timbre's graph, built and
queried on one thread. Reads DIR/vectors.f32, queries.f32 and truth.u32 (timbre-scale-bench's)
and prints one JSON object: build time, resident memory the index added, recall@k and queries/s
at each ef. One peer per process, so one's memory does not hide the other's.
  /usr/bin/python3 scale_peers.py --dir DIR --dim 128 --peer hnswlib|faiss [--ef 16,32,64,128,256]"""
import argparse
import json
import os
import time

import numpy as np


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall(found, truth):
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--peer", choices=("hnswlib", "faiss"), required=True)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    x = np.fromfile(os.path.join(a.dir, "vectors.f32"), dtype=np.float32).reshape(-1, a.dim)
    q = np.fromfile(os.path.join(a.dir, "queries.f32"), dtype=np.float32).reshape(-1, a.dim)
    truth = np.fromfile(os.path.join(a.dir, "truth.u32"), dtype=np.uint32).reshape(len(q), a.k)
    efs = [int(e) for e in a.ef.split(",")]
    out = {"peer": a.peer, "rows": len(x)}
    rss0 = resident_bytes()
    t0 = time.perf_counter()
    if a.peer == "hnswlib":
        import hnswlib
        index = hnswlib.Index(space="ip", dim=a.dim)
        index.init_index(max_elements=len(x), M=16, ef_construction=200, random_seed=42)
        index.add_items(x, np.arange(len(x)), num_threads=1)
        out["version"] = getattr(hnswlib, "__version__", "0.6.2")
    else:
        import faiss
        faiss.omp_set_num_threads(1)
        index = faiss.IndexHNSWFlat(a.dim, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        index.add(x)
        out["version"] = faiss.__version__
    out["build_seconds"] = round(time.perf_counter() - t0, 1)
    out["rss_bytes"] = resident_bytes() - rss0
    out["sweep"] = []
    for ef in efs:
        t0 = time.perf_counter()
        if a.peer == "hnswlib":
            index.set_ef(ef)
            found, _ = index.knn_query(q, k=a.k, num_threads=1)
        else:
            index.hnsw.efSearch = ef
            _, found = index.search(q, a.k)
        t = time.perf_counter() - t0
        out["sweep"].append({"ef": ef, "recall": round(recall(found, truth), 4), "qps": round(len(q) / t, 1)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()

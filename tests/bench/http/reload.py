"""Drives tests/bench/reload.sh: trains a database (the default models), serves it with --watch 1,
runs wrk on POST /v1/genre and, a third of the way in, publishes a new genre model (a small
forest) into the same database; then checks wrk's counts and what the server says it serves."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import GENRE_BODY, free_port, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=30)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-reload-")
    db, train = os.path.join(tmp, "timbre.db"), os.path.join(args.build, "trainer/timbre-train")
    subprocess.run([train, "--data", args.music_genre, "--db", db, "--log-level", "warn"], check=True)
    port = free_port()
    server = subprocess.Popen([os.path.join(args.build, "server/timbre-serve"), "--db", db, "--listen",
                               f"127.0.0.1:{port}", "--threads", "2", "--watch", "1", "--no-access-log"])
    failures = []
    try:
        if not wait_http(port, "/healthz"):
            sys.exit("the server did not start")
        before = json.loads(get(port, "/v1/models"))["models"]
        genre_before = next(m for m in before if m["task"] == "genre")
        env = dict(os.environ, BODY=GENRE_BODY, PACE_MS="0")
        load = subprocess.Popen(["wrk", "-t2", "-c16", f"-d{args.seconds}s", "--latency", "-s",
                                 os.path.join(HERE, "post.lua"), f"http://127.0.0.1:{port}/v1/genre"],
                                env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(args.seconds / 3)
        t0 = time.monotonic()
        subprocess.run([train, "--data", args.music_genre, "--db", db, "--task", "genre", "--model", "rf",
                        "--trees", "20", "--log-level", "warn"], check=True)
        published_s = time.monotonic() - t0
        seen_s = None
        while load.poll() is None:
            if seen_s is None:
                now = next(m for m in json.loads(get(port, "/v1/models"))["models"] if m["task"] == "genre")
                if now["id"] != genre_before["id"]:
                    seen_s = time.monotonic() - t0
            time.sleep(0.2)
        out = load.stdout.read()
        r = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
        after = next(m for m in json.loads(get(port, "/v1/models"))["models"] if m["task"] == "genre")
        metrics = get(port, "/metrics")
        info = re.search(r'timbre_model_info\{task="genre",[^}]*name="([^"]+)",version="(\d+)",id="(\d+)"\}', metrics)
        reloads = re.search(r'timbre_reloads_total\{outcome="ok"\} (\d+)', metrics)
        failed = re.search(r'timbre_reloads_total\{outcome="failed"\} (\d+)', metrics)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"reload under load, {time.strftime('%Y-%m-%d')}: wrk -t2 -c16 {args.seconds} s on POST /v1/genre, "
          f"timbre-serve --watch 1")
    print(f"  wrk: {r['requests']} requests ({r['rps']:.0f}/s), {r['non2xx']} non-2xx, {r['errors']} socket errors, "
          f"p99 {r['p99_us'] / 1000:.2f} ms")
    print(f"  before: genre model {genre_before['name']} id {genre_before['id']}; the trainer published in "
          f"{published_s:.1f} s; the server served the new one "
          f"{'%.1f s after the trainer started' % seen_s if seen_s is not None else 'never, during the run'}")
    print(f"  after: /v1/models genre {after['name']} id {after['id']}; /metrics timbre_model_info "
          f"{info.groups() if info else None}; reloads ok {reloads.group(1) if reloads else None}, "
          f"failed {failed.group(1) if failed else None}")
    if r["non2xx"] or r["errors"]:
        failures.append("wrk saw failed requests")
    if after["id"] == genre_before["id"]:
        failures.append("/v1/models still shows the old genre model")
    if not info or info.group(3) != str(after["id"]):
        failures.append("/metrics does not show the new genre model")
    if not reloads or reloads.group(1) == "0":
        failures.append("no reload counted")
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Drives tests/bench/replicas.sh (see there)."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "http"))
from run import GENRE_BODY, free_port, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def nginx_conf(tmp, listen, ports):
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    upstream timbre {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://timbre;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            # Predictions change nothing: a POST may go to the next replica too.
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
""")
    return path


def serve(build, snap, port, tmp, i):
    log = open(os.path.join(tmp, f"replica-{i}.log"), "a")
    return subprocess.Popen([os.path.join(build, "server/timbre-serve"), "--db", snap, "--listen", f"127.0.0.1:{port}",
                             "--threads", "1", "--watch", "1", "--no-access-log", "--drain-timeout", "10"],
                            stderr=log, stdout=subprocess.DEVNULL)


def snapshot_of(port):
    out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/v1/models"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)["snapshot"]["file"]
    except (ValueError, KeyError, TypeError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--music-genre", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--sync", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="timbre-replicas-")
    db, shared = os.path.join(tmp, "work.db"), os.path.join(tmp, "shared")
    train = [os.path.join(args.build, "trainer/timbre-train"), "--data", args.music_genre, "--db", db, "--snapshots",
             shared, "--log-level", "warn", "--task", "genre"]
    subprocess.run(train, check=True)
    ports, snaps, procs = [free_port() for _ in range(3)], [], []
    for i, port in enumerate(ports):
        snaps.append(os.path.join(tmp, f"local-{i}"))
        subprocess.run(["sh", args.sync, shared, snaps[i]], check=True)
        procs.append(serve(args.build, snaps[i], port, tmp, i))
    for port in ports:
        if not wait_http(port, "/readyz"):
            sys.exit("a replica did not start")
    listen = free_port()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proxy = subprocess.Popen([nginx, "-c", nginx_conf(tmp, listen, ports)], stdout=subprocess.DEVNULL)
    if not wait_http(listen, "/healthz"):
        sys.exit("nginx did not start")
    first = snapshot_of(ports[0])
    events = []

    def script():
        time.sleep(args.seconds * 0.15)
        t = time.monotonic()
        subprocess.run(train + ["--model", "rf", "--trees", "20"], check=True)
        events.append(f"published a new genre model in {time.monotonic() - t:.1f} s")
        for i in range(3):
            time.sleep(args.seconds * 0.05)
            subprocess.run(["sh", args.sync, shared, snaps[i]], check=True, capture_output=True)
            events.append(f"copied to replica {i}")
        time.sleep(args.seconds * 0.1)
        t = time.monotonic()
        procs[1].send_signal(signal.SIGTERM)
        rc = procs[1].wait()
        events.append(f"replica 1 drained and exited {rc} in {time.monotonic() - t:.2f} s")
        procs[1] = serve(args.build, snaps[1], ports[1], tmp, 1)
        ok = wait_http(ports[1], "/readyz")
        events.append(f"replica 1 restarted ({'ready' if ok else 'NOT ready'})")

    driver = threading.Thread(target=script)
    driver.start()
    env = dict(os.environ, BODY=GENRE_BODY, PACE_MS="0")
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{args.seconds}s", "-s", os.path.join(HERE, "http", "post.lua"),
                          f"http://127.0.0.1:{listen}/v1/genre"], env=env, capture_output=True, text=True, check=True)
    driver.join()
    time.sleep(2.5)
    result = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))[7:])
    final = [snapshot_of(p) for p in ports]
    proxy.send_signal(signal.SIGQUIT)
    proxy.wait()
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait()
    for e in events:
        print(e)
    print(f"wrk through nginx, {args.seconds} s: {result['requests']} requests, {result['rps']:.0f} req/s, "
          f"p99 {result['p99_us'] / 1000:.2f} ms, non-2xx {result['non2xx']}, socket errors {result['errors']}")
    print(f"snapshots served: before {first}, after {final}")
    ok = result["non2xx"] == 0 and result["errors"] == 0 and len(set(final)) == 1 and final[0] != first
    print("OK" if ok else "FAILED")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

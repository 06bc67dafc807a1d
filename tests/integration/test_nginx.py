#!/usr/bin/env python3
"""Integration test: deploy/nginx/timbre.conf in a real nginx on loopback in front of a real
timbre-serve. Requests and health checks through the proxy, the forwarded client address in the
server's access log, the body limit at the proxy, and a model reload (retraining into the served
database, picked up by --watch) under a continuous load through nginx with no failed request."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import (Client, check, start_server, test_arguments, train_small, wait_for, with_music_genre,  # noqa: E402
                       write_slices)
import test_http  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_config(template, tmp, listen, upstream):
    site = open(template).read()
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    os.chmod(tmp, 0o777)  # worker processes (nobody when started as root) write temp files here
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{site}
}}
""")
    return conf


def main():
    a = test_arguments(("--nginx-conf",))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        print("nginx is not installed (bash deploy/install-deps.sh --with-test-tools)", file=sys.stderr)
        return 1
    return with_music_genre(a, "timbre-nginx-", lambda data, tmp: run(a, nginx, data, tmp))


def run(a, nginx, data, tmp):
    paths, _, _, _ = write_slices(data, tmp)
    db = train_small(a, paths["train.csv"], tmp)
    server, port = start_server(a.server, db, tmp, ("--watch", "1"))
    check(port is not None, "server started")
    if port is None:
        return 1
    listen = free_port()
    proxy = subprocess.Popen([nginx, "-c", nginx_config(a.nginx_conf, tmp, listen, port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        c = Client(listen)
        check(wait_for(lambda: _ok(c, "/healthz")), "nginx answers")
        s, b, _ = c.request("GET", "/healthz")
        check(s == 200 and b == {"status": "ok"}, f"healthz through nginx {s} {b}")
        s, b, _ = c.request("GET", "/readyz")
        check(s == 200 and b["status"] == "ready", f"readyz through nginx {s} {b}")
        direct = Client(port)
        body = {"features": {"tempo": 120, "energy": 0.8, "danceability": 0.6}}
        s, b, _ = c.post("/v1/genre", body)
        check(s == 200 and b == direct.post("/v1/genre", body)[1], "genre through nginx equals the direct answer")
        s, b, _ = c.post("/v1/genre", {"features": {"tempo": "fast"}})
        check(s == 400 and b["error"]["field"] == "tempo", "errors pass through unchanged")
        s, _, _ = c.post("/v1/genre", None, raw=b'{"x": "' + b"a" * (1100 * 1024) + b'"}',
                         headers={"Content-Type": "application/json"})
        check(s == 413, f"the proxy's body limit: {s}")
        # Reload under load through the proxy.
        statuses, stop = [], threading.Event()

        def load():
            lc = Client(listen)
            while not stop.is_set():
                statuses.append(lc.post("/v1/genre", body)[0])

        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(0.5)
            t = subprocess.run([a.trainer, "--data", paths["train.csv"], "--db", db, "--task", "genre", "--model",
                                "rf", "--trees", "5", "--threads", "1", "--log-level", "warn"], capture_output=True,
                               text=True, timeout=120)
            check(t.returncode == 0, "retrained")
            check(wait_for(lambda: c.request("GET", "/v1/models")[1]["models"][0]["version"] == 2),
                  "new version visible through nginx")
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join()
        bad = [s for s in statuses if s != 200]
        check(len(statuses) > 20 and not bad, f"reload through nginx: {len(statuses)} requests, {len(bad)} not 200")
    finally:
        proxy.send_signal(signal.SIGQUIT)  # graceful
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    log = [json.loads(l) for l in open(server.log_path) if l.startswith("{")]
    check(any(r.get("forwarded_for") == "127.0.0.1" and r["path"] == "/v1/genre" for r in log),
          "the server logs the client address nginx forwarded")
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed")
    return 1 if test_http.FAILED else 0


def _ok(c, path):
    try:
        return c.request("GET", path)[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())

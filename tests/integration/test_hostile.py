#!/usr/bin/env python3
"""Integration test: a real timbre-serve against hostile clients and a rolling deploy, over
loopback from several client addresses (127.0.0.2-6).

- Past the connection limit, the admitted keep-alive clients keep their rate and a fresh client is
  answered or refused at once (libmicrohttpd's own loop stalled there).
- Drip-feeding clients are cut off by the request deadline while probes keep getting answers.
- SIGTERM drains: every request fully sent before it gets its whole reply, /readyz says 503,
  new connections are refused, exit 0 within --drain-timeout.
- Ambiguous framing gets 400 and a closed connection; early replies keep the connection.
- Overload sheds with 503 + Retry-After; the per-client rate limit answers 429 + Retry-After."""
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import (check, feature_value, start_server, stop_server, test_arguments,  # noqa: E402
                       train_small, with_music_genre, write_slices)
import test_http  # noqa: E402

ADDRS = [f"127.0.0.{i}" for i in range(2, 7)]
LEFTOVER = {}  # socket -> bytes read past the last response (pipelined replies)


def features_of(header, row):
    skip = {"instance_id", "artist_name", "track_name", "obtained_date", "music_genre", "popularity"}
    return {k: feature_value(v) for k, v in zip(header, row) if k not in skip}


def post_bytes(path, body, extra=b""):
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n").encode() + extra + b"\r\n" + data


def read_response(sock, timeout=5.0):
    """One HTTP/1.1 response: (status, headers dict (lower-case), body bytes), or None on EOF/reset."""
    sock.settimeout(timeout)
    buf = LEFTOVER.pop(sock, b"")
    try:
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return None
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        no_body = status in (204, 304) or 100 <= status < 200
        while not no_body and len(rest) < n:
            d = sock.recv(65536)
            if not d:
                return None
            rest += d
        LEFTOVER[sock] = rest[n:] if not no_body else rest
        return status, headers, rest[:n] if not no_body else b""
    except (ConnectionError, socket.timeout, OSError):
        return None


def closed_by_peer(sock, timeout=2.0):
    """True when the server closed the connection (EOF or reset) within timeout."""
    if LEFTOVER.get(sock):
        return False
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False


def connect(port, source="127.0.0.1"):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls between requests
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def exchange(port, raw, source="127.0.0.1"):
    s = connect(port, source)
    try:
        s.sendall(raw)
    except OSError:
        return s, None
    return s, read_response(s)


def exchange_on(s, raw):
    try:
        s.sendall(raw)
    except OSError:
        return None
    return read_response(s)


# --- connection limit -------------------------------------------------------------------------

def keepalive_load(port, n_clients, seconds, request):
    """n_clients keep-alive clients over ADDRS, each sending `request` again as soon as its reply
    is in. Returns (200 replies per second over the measured window, clients refused, fresh
    probe latencies in seconds)."""
    sel = selectors.DefaultSelector()
    clients = []
    for i in range(n_clients):
        s = socket.socket()
        s.setblocking(False)
        s.bind((ADDRS[i % len(ADDRS)], 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        c = {"sock": s, "buf": b"", "out": request, "ok": 0, "dead": False}
        clients.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
    probes = []
    stop = threading.Event()

    def probe():
        stop.wait(1.0)  # once the load's connections are in: the limit is reached
        while not stop.is_set():
            t = time.monotonic()
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                r = read_response(s, 5)
                s.close()
                probes.append((time.monotonic() - t, r[0] if r else "closed"))
            except OSError as e:
                probes.append((time.monotonic() - t, f"refused ({e.__class__.__name__})"))
            stop.wait(0.5)

    prober = threading.Thread(target=probe)
    start = time.monotonic()
    measure_from, measure_to = start + 1.5, start + 1.5 + seconds
    counted = 0
    prober.start()
    while time.monotonic() < measure_to:
        for key, ev in sel.select(0.2):
            c = key.data
            s = c["sock"]
            try:
                if ev & selectors.EVENT_WRITE:
                    n = s.send(c["out"])
                    c["out"] = c["out"][n:]
                    if not c["out"]:
                        sel.modify(s, selectors.EVENT_READ, c)
                    continue
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                c["dead"] = True
                sel.unregister(s)
                s.close()
                continue
            c["buf"] += d
            while b"\r\n\r\n" in c["buf"]:
                head, rest = c["buf"].split(b"\r\n\r\n", 1)
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) < n:
                    break
                c["buf"] = rest[n:]
                status = int(head.split(b" ", 2)[1])
                if status == 200:
                    c["ok"] += 1
                    now = time.monotonic()
                    if measure_from <= now < measure_to:
                        counted += 1
                    c["out"] = request
                    sel.modify(s, selectors.EVENT_WRITE, c)
                else:  # a refusal: 503 or 429 and a close
                    c["dead"] = True
    stop.set()
    prober.join()
    refused = sum(1 for c in clients if c["dead"] and c["ok"] == 0)
    for c in clients:
        c["sock"].close()
    sel.close()
    return counted / seconds, refused, probes


def connection_limit_checks(a, db, tmp, genre_request):
    server, port = start_server(a.server, db, tmp, ["--no-access-log", "--max-connections", "1024"])
    check(port is not None, "server starts for the connection-limit test")
    if port is None:
        return
    try:
        under, refused_under, _ = keepalive_load(port, 1000, 4, genre_request)
        over, refused_over, probes = keepalive_load(port, 1100, 4, genre_request)
        print(f"connection limit 1024: 1000 clients {under:.0f} req/s ({refused_under} refused); "
              f"1100 clients {over:.0f} req/s ({refused_over} refused); probes {probes}")
        check(refused_under == 0, f"under the limit nobody is refused ({refused_under})")
        check(refused_over >= 50, f"past the limit the extra clients are refused ({refused_over} of 76)")
        check(over >= 0.5 * under, f"past the limit the admitted clients keep at least half the rate: "
                                   f"{over:.0f} against {under:.0f} req/s")
        check(probes and all(t < 1.0 for t, _ in probes),
              f"a fresh client is answered or refused within 1 s: {probes}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        except OSError as e:
            text = f"no answer: {e}"
        refused_metric = [ln for ln in text.splitlines() if ln.startswith(
            'timbre_connections_refused_total{reason="connection_limit"}')]
        check(refused_metric and int(refused_metric[0].split()[-1]) >= refused_over,
              f"refusals are counted on /metrics: {refused_metric}")
    finally:
        rc = stop_server(server, 30)
    check(rc == 0, f"exit 0 after the connection-limit test ({rc})")
    log = open(server.log_path, encoding="utf-8", errors="replace").read()
    lines = [ln for ln in log.splitlines() if "refused" in ln and "connection limit" in ln]
    check(0 < len(lines) <= 16, f"refusals are logged at most once a second ({len(lines)} lines)")


# --- request deadline -------------------------------------------------------------------------

def drip_checks(a, db, tmp, seconds=30, n=1000, deadline=5):
    server, port = start_server(a.server, db, tmp, ["--no-access-log", "--request-timeout", str(deadline)])
    check(port is not None, "server starts for the drip test")
    if port is None:
        return
    slow_request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 4000
    conns = []  # [socket, opened at, bytes sent]
    lifetimes, got_408, refused, probe_times = [], 0, 0, []
    sel = selectors.DefaultSelector()

    def open_one(i):
        s = socket.socket()
        s.bind((ADDRS[i % len(ADDRS)], 0))
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        c = [s, time.monotonic(), 0]
        sel.register(s, selectors.EVENT_READ, c)
        conns.append(c)

    try:
        for i in range(n):
            open_one(i)
        start = time.monotonic()
        next_drip = next_probe = start
        opened = n
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            if now >= next_drip:
                for c in list(conns):
                    try:
                        c[0].send(slow_request[c[2]:c[2] + 1])
                        c[2] += 1
                    except OSError:
                        pass
                next_drip += 1.0
            if now >= next_probe:
                t = time.monotonic()
                try:
                    pc = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    pc.request("GET", "/healthz")
                    status = pc.getresponse().status
                    pc.close()
                except OSError:
                    status = None
                probe_times.append((time.monotonic() - t, status))
                next_probe += 1.0
            for key, _ in sel.select(0.05):
                c = key.data
                try:
                    d = c[0].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if d.startswith((b"HTTP/1.1 503", b"HTTP/1.1 429")):
                    # refused at accept: the server had not yet reaped the ones it had just cut off
                    refused += 1
                else:
                    got_408 += d.startswith(b"HTTP/1.1 408")
                    lifetimes.append(time.monotonic() - c[1])
                sel.unregister(c[0])
                c[0].close()
                conns.remove(c)
                open_one(opened)  # keep the pressure on
                opened += 1
        end = time.monotonic()
        overdue = [time.monotonic() - c[1] for c in conns if end - c[1] > deadline + 2.5]
    finally:
        for c in conns:
            c[0].close()
        rc = stop_server(server, 30)
    slow_probes = [p for p in probe_times if p[1] != 200 or p[0] > 0.1]
    print(f"drip: {len(lifetimes)} slow connections closed (lifetime {min(lifetimes or [0]):.2f}-"
          f"{max(lifetimes or [0]):.2f} s, {got_408} with a 408; {refused} refused at accept); {len(probe_times)} probes, "
          f"slowest {max(p[0] for p in probe_times) * 1000:.1f} ms")
    check(len(lifetimes) >= n, f"every drip-feeding connection is closed by the deadline ({len(lifetimes)})")
    check(lifetimes and max(lifetimes) < deadline + 2.5,
          f"...within the deadline ({deadline} s) plus the sweep's granularity: {max(lifetimes or [0]):.2f} s")
    check(not overdue, f"no drip-feeding connection outlives the deadline: {overdue[:5]}")
    check(got_408 == len(lifetimes), f"they are told 408 ({got_408} of {len(lifetimes)})")
    check(len(probe_times) >= seconds - 1 and not slow_probes,
          f"a probe every second gets 200 within 100 ms throughout: {slow_probes[:5]}")
    check(rc == 0, f"exit 0 after the drip test ({rc})")


# --- drain -----------------------------------------------------------------------------------

def drain_checks(a, db, tmp, batch_request):
    server, port = start_server(a.server, db, tmp, ["--drain-timeout", "10"])
    check(port is not None, "server starts for the drain test")
    if port is None:
        return
    results = []  # (sent before the signal, reply status or None, body complete)
    lock = threading.Lock()
    signalled = threading.Event()
    signal_at = [None]
    stop = threading.Event()

    def client(i):
        s = connect(port, ADDRS[i % len(ADDRS)])
        while not stop.is_set():
            try:
                s.sendall(batch_request)
            except OSError:
                break
            sent = time.monotonic()
            r = read_response(s, 10)
            before = signal_at[0] is None or sent < signal_at[0]
            ok = r is not None and r[0] == 200 and json.loads(r[2]).get("predictions") is not None
            with lock:
                results.append((before, r[0] if r else None, ok))
            if r is None or r[1].get("connection", "").lower() == "close":
                break
        s.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    ready = connect(port)
    time.sleep(1.0)
    ready.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
    r_before = read_response(ready)
    signal_at[0] = time.monotonic()
    server.send_signal(signal.SIGTERM)
    signalled.set()
    time.sleep(0.05)
    ready.sendall(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
    r_during = read_response(ready)
    try:
        fresh = socket.create_connection(("127.0.0.1", port), timeout=2)
        fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r_fresh = read_response(fresh, 2)
        fresh.close()
    except OSError as e:
        r_fresh = f"refused ({e.__class__.__name__})"
    try:
        rc = server.wait(timeout=12)
    except subprocess.TimeoutExpired:
        server.kill()
        rc = None
    exit_after = time.monotonic() - signal_at[0]
    stop.set()
    for t in threads:
        t.join()
    sent_before = [x for x in results if x[0]]
    lost = [x for x in sent_before if not x[2]]
    print(f"drain: {len(sent_before)} requests sent before SIGTERM, {len(lost)} without a whole reply; "
          f"{len(results) - len(sent_before)} after; exit {rc} after {exit_after:.2f} s; fresh client: {r_fresh}")
    check(len(sent_before) >= 8 * 3, f"the clients were busy before the signal ({len(sent_before)} requests)")
    check(not lost, f"every request fully sent before SIGTERM gets its whole reply: {lost[:5]}")
    check(r_before is not None and r_before[0] == 200, f"/readyz 200 before the signal: {r_before}")
    check(r_during is not None and r_during[0] == 503 and r_during[1].get("connection") == "close",
          f"/readyz 503 (and Connection: close) during the drain: {r_during}")
    check(isinstance(r_fresh, str) or r_fresh is None or r_fresh[0] == 503,
          f"a new connection during the drain is refused: {r_fresh}")
    check(rc == 0 and exit_after < 10, f"exit 0 within the drain timeout: {rc} after {exit_after:.2f} s")
    log = open(server.log_path, encoding="utf-8", errors="replace").read()
    aborted = [ln for ln in log.splitlines() if '"aborted":true' in ln and '"status":200' in ln]
    check(not aborted, f"no reply aborted by the drain: {aborted[:3]}")


# --- framing and early replies -----------------------------------------------------------------

# Malformed enough that libmicrohttpd answers its own (HTML) 400 before our checks run.
MHD_REFUSES = {"Content-Length not a number"}


def framing_checks(port):
    cases = {
        "Content-Length with Transfer-Encoding":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "two differing Content-Length":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"Content-Length: 3\r\n\r\n{}x",
        "two Transfer-Encoding":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "space before the colon":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length : 2\r\n\r\n{}",
        "bare CR": b"GET /healthz HTTP/1.1\r\nHost: t\rX-Smuggled: 1\r\n\r\n",
        "HTTP/1.1 without Host": b"GET /healthz HTTP/1.1\r\n\r\n",
        "two Host": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "Content-Length not a number":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: +2\r\n\r\n{}",
        "Transfer-Encoding other than chunked":
            b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked"
            b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    }
    for name, raw in cases.items():
        s, r = exchange(port, raw)
        try:
            body = json.loads(r[2]) if r and r[2] else {}
        except ValueError:
            body = {"not JSON": r[2][:100]}
        ours = name not in MHD_REFUSES
        check(r is not None and r[0] == 400 and (not ours or body.get("error", {}).get("code") == "bad_framing"),
              f"{name}: 400 bad_framing, got {r}")
        LEFTOVER.pop(s, None)
        check(r is not None and r[1].get("connection") == "close" and closed_by_peer(s),
              f"{name}: the connection is closed after the 400")
        s.close()
    # Early replies keep the connection: preflight then POST, 404 then GET, 415 with a body then GET.
    def on_one_connection(*requests):
        """Sends each request on one connection in turn; the replies (None from the first lost on)."""
        s, out = connect(port), []
        try:
            for raw in requests:
                s.sendall(raw)
                out.append(read_response(s))
        except OSError:
            pass
        s.close()
        return out + [None] * (len(requests) - len(out))
    r1, r2 = on_one_connection(
        b"OPTIONS /v1/genre HTTP/1.1\r\nHost: t\r\nOrigin: https://a.example\r\n"
        b"Access-Control-Request-Method: POST\r\n\r\n", post_bytes("/v1/genre", {"track_id": "nope"}))
    check(r1 is not None and r1[0] == 204 and "connection" not in r1[1], f"preflight: 204, kept open: {r1}")
    check(r2 is not None and r2[0] == 404 and b"not_found" in r2[2],
          f"the POST after a preflight on the same connection is answered (404: no such track): {r2}")
    r3 = r4 = None
    s = connect(port)
    try:
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")  # pipelined
        r3 = read_response(s)
        r4 = read_response(s)
    except OSError:
        pass
    s.close()
    check(r3 is not None and r3[0] == 404 and r4 is not None and r4[0] == 200,
          f"a pipelined request behind a 404 is answered: {r3}, {r4}")
    r5, r6 = on_one_connection(
        b"POST /v1/genre HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    check(r5 is not None and r5[0] == 415 and r6 is not None and r6[0] == 200,
          f"a 415 with its body read keeps the connection: {r5}, {r6}")
    # Headers just under --max-header-bytes (8192) are served; over it, a JSON 431 and a close.
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: "
    s, r = exchange(port, head + b"a" * (8150 - len(head)) + b"\r\n\r\n")
    check(r is not None and r[0] == 200, f"8,154 bytes of request line and headers under the 8 KiB limit: 200, got {r}")
    s.close()
    s, r = exchange(port, head + b"a" * 9000 + b"\r\n\r\n")
    check(r is not None and r[0] == 431 and b"headers_too_large" in r[2] and closed_by_peer(s),
          f"9 KB of headers: a JSON 431 and a close, got {r}")
    s.close()


def float32_checks(port, header, row):
    feats = features_of(header, row)
    feats["tempo"] = 1e308
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path, body in (("/v1/recommend", {"features": feats, "k": 5}), ("/v1/genre", {"features": feats})):
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        reply = json.loads(r.read())
        check(r.status == 400 and reply["error"].get("field") == "tempo",
              f"{path} with tempo 1e308 (beyond float32): 400 naming it, got {r.status} {reply}")
    c.request("GET", "/v2/models/genre")
    meta = json.loads(c.getresponse().read())
    d = len(meta["inputs"][0]["shape"]) and meta["inputs"][0]["shape"][-1]
    data = [0.5] * d
    data[0] = 1e308
    c.request("POST", "/v2/models/genre/infer", json.dumps(
        {"inputs": [{"name": "features", "shape": [1, d], "datatype": "FP32", "data": data}]}),
        {"Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read()
    check(r.status == 400, f"a V2 FP32 tensor holding 1e308: 400, got {r.status} {text[:200]}")


# --- overload and rate limit -----------------------------------------------------------------

def overload_checks(a, db, tmp, batch_request):
    server, port = start_server(a.server, db, tmp, ["--no-access-log", "--threads", "1", "--shed-after-ms", "5"])
    check(port is not None, "server starts for the overload test")
    if port is None:
        return
    statuses, retry = {}, set()
    try:
        for _ in range(5):  # a round sends 30 batches at once; one thread takes them in turn
            socks = [connect(port) for _ in range(30)]
            for s in socks:
                s.sendall(batch_request)
            for s in socks:
                r = read_response(s, 30)
                st = r[0] if r else None
                statuses[st] = statuses.get(st, 0) + 1
                if st == 503:
                    retry.add(r[1].get("retry-after"))
                    check(b"overloaded" in r[2], f"the 503 says why: {r[2][:200]}")
                s.close()
            if statuses.get(503):
                break
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        shed = [ln for ln in text.splitlines() if ln.startswith('timbre_requests_rejected_total{reason="overload"}')]
    finally:
        rc = stop_server(server, 30)
    print(f"overload: statuses {statuses}, Retry-After {retry}, metric {shed}")
    check(statuses.get(503, 0) > 0 and statuses.get(200, 0) > 0 and set(statuses) <= {200, 503},
          f"past --shed-after-ms some requests get 503 at once, the rest 200: {statuses}")
    check(retry == {"1"}, f"the 503s carry Retry-After: 1 ({retry})")
    check(shed and int(shed[0].split()[-1]) == statuses.get(503, 0), f"shed requests are counted: {shed}")
    check(rc == 0, f"exit 0 after the overload test ({rc})")


def rate_limit_checks(a, db, tmp):
    server, port = start_server(a.server, db, tmp, ["--no-access-log", "--rate-limit", "1", "--rate-burst", "5",
                                                     "--trusted-proxy", "127.0.0.1", "--max-connections-per-ip", "4"])
    check(port is not None, "server starts for the rate-limit test")
    if port is None:
        return
    try:
        def burst(source, n, path="/v1/models", xff=None):
            s = connect(port, source)
            out = []
            for _ in range(n):
                extra = f"X-Forwarded-For: {xff}\r\n" if xff else ""
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
                r = read_response(s)
                out.append((r[0], r[1].get("retry-after")) if r else None)
            s.close()
            return out
        direct = burst("127.0.0.2", 8)
        check([x[0] for x in direct] == [200] * 5 + [429] * 3 and all(x[1] and int(x[1]) >= 1 for x in direct[5:]),
              f"a client's burst of 5 passes, then 429 with Retry-After: {direct}")
        probes = burst("127.0.0.2", 10, "/healthz")
        check(all(x[0] == 200 for x in probes), f"health checks are never rate-limited: {probes}")
        spoof = burst("127.0.0.2", 1, xff="198.51.100.9")
        check(spoof[0][0] == 429, f"X-Forwarded-For from an untrusted peer changes nothing: {spoof}")
        proxied = burst("127.0.0.1", 7, xff="203.0.113.5, 198.51.100.7")
        check([x[0] for x in proxied] == [200] * 5 + [429] * 2,
              f"behind a trusted proxy the forwarded client has its own bucket: {proxied}")
        other = burst("127.0.0.1", 3, xff="198.51.100.8")
        check([x[0] for x in other] == [200] * 3, f"...and another forwarded client its own: {other}")
        held = [connect(port, "127.0.0.3") for _ in range(4)]
        answered = [exchange_on(s, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") for s in held]
        fifth, r5 = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "127.0.0.3")
        check(all(r and r[0] == 200 for r in answered) and r5 is not None and r5[0] == 429 and
              b"too_many_connections" in r5[2] and r5[1].get("retry-after") == "1" and closed_by_peer(fifth),
              f"--max-connections-per-ip 4: the fifth connection gets 429 and a close: {r5}")
        fifth.close()
        held.pop().close()
        time.sleep(0.3)
        sixth, r6 = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "127.0.0.3")
        check(r6 is not None and r6[0] == 200, f"...and once one closes, a new one is admitted: {r6}")
        for s in held + [sixth]:
            s.close()
        time.sleep(2.2)
        again = burst("127.0.0.2", 2)
        check([x[0] for x in again] == [200, 200], f"the bucket refills at --rate-limit per second: {again}")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        limited = [ln for ln in text.splitlines()
                   if ln.startswith('timbre_requests_rejected_total{reason="rate_limit"}')]
        check(limited and int(limited[0].split()[-1]) == 6, f"429s are counted on /metrics: {limited}")
    finally:
        rc = stop_server(server, 30)
    check(rc == 0, f"exit 0 after the rate-limit test ({rc})")


def main():
    a = test_arguments()
    return with_music_genre(a, "timbre-hostile-", lambda data, tmp: run(a, data, tmp))


def run(a, data, tmp):
    paths, header, predict_rows, catalog_row = write_slices(data, tmp)
    db = train_small(a, paths["train.csv"], tmp)
    feats = features_of(header, catalog_row)
    genre_request = post_bytes("/v1/genre", {"features": feats})
    batch_request = post_bytes("/v1/genre", {"instances": [{"features": feats}] * 1000})
    only = set(os.environ.get("TB_HOSTILE_ONLY", "").split(",")) - {""}

    def want(name):
        return not only or name in only

    if want("framing"):
        server, port = start_server(a.server, db, tmp)
        check(port is not None, "server starts for the framing test")
        if port is not None:
            try:
                framing_checks(port)
                float32_checks(port, header, catalog_row)
            finally:
                check(stop_server(server) == 0, "exit 0 after the framing test")
    if want("limit"):
        connection_limit_checks(a, db, tmp, genre_request)
    if want("drain"):
        drain_checks(a, db, tmp, batch_request)
    if want("overload"):
        overload_checks(a, db, tmp, batch_request)
    if want("rate"):
        rate_limit_checks(a, db, tmp)
    if want("drip"):
        drip_checks(a, db, tmp)
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed")
    return 1 if test_http.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

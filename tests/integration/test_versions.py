#!/usr/bin/env python3
"""Integration test: immutable snapshots and versions. A real trainer publishes into a working
database and a snapshot directory; a real timbre-serve serves the directory.

- A 0444 snapshot in a 0555 directory, served by a user who owns neither: nothing is created.
- kill -9 of the trainer at 20 random moments of a multi-task publish: the served snapshot is
  entirely the old set or entirely the new one, the databases pass integrity_check.
- pin under load switches the served version with zero failed requests; unpin switches back.
- prune keeps N versions per task and the file shrinks; a snapshot whose checksum is off is refused.
- --predict without --data labels a table with the served versions, as the training run would."""
import gzip
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import check, start_server, stop_server, test_arguments, with_music_genre  # noqa: E402
import test_http  # noqa: E402

NOBODY = 65534


def write_table(src, path, every):
    with gzip.open(src, "rt", encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for i, line in enumerate(f):
            if i == 0 or i % every == 0:
                out.write(line)


def train(a, data, db, snaps, *extra, timeout=300):
    return subprocess.run([a.trainer, "--data", data, "--db", db, "--snapshots", snaps, "--model", "rf", "--trees", "3",
                           "--threads", "2", "--log-level", "warn", *extra], capture_output=True, text=True,
                          timeout=timeout)


def models_cmd(a, db, snaps, *args):
    return subprocess.run([a.trainer, "models", "--db", db, "--snapshots", snaps, *args], capture_output=True, text=True,
                          timeout=120)


def served_versions(path):
    """{task: version} of the published rows of a snapshot file or (WAL and all) a working database."""
    snapshot = os.path.basename(path).startswith("snapshot-")
    con = sqlite3.connect(f"file:{path}?immutable=1" if snapshot else path, uri=snapshot)
    try:
        return dict(con.execute("SELECT task, version FROM models WHERE published = 1").fetchall())
    finally:
        con.close()


def integrity(path, immutable=False):
    con = sqlite3.connect(f"file:{path}?immutable=1" if immutable else path, uri=immutable)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def current(snaps):
    with open(os.path.join(snaps, "CURRENT")) as f:
        name, sha = f.read().split()
    return os.path.join(snaps, name), sha


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def get_json(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return r.status, body


def genre_of(port):
    _, body = get_json(port, "/v1/models")
    g = next((m for m in body["models"] if m["task"] == "genre"), None)
    return (g["id"], g["pinned"]) if g else (None, None)


def read_only_checks(a, snaps, tmp):
    os.chmod(tmp, 0o711)  # the scratch directory is root's: let the server's user pass through it
    ro = os.path.join(tmp, "ro")
    shutil.copytree(snaps, ro)
    for name in os.listdir(ro):
        os.chmod(os.path.join(ro, name), 0o444)
    os.chmod(ro, 0o555)
    before = sorted(os.listdir(ro))
    wrapper = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    scratch = os.path.join(tmp, "scratch")  # for the port file, which that user writes
    os.makedirs(scratch, exist_ok=True)
    os.chmod(scratch, 0o777)
    proc, port = start_server(a.server, ro, scratch, ("--watch", "1"), wrapper=wrapper)
    try:
        ok = port is not None and get_json(port, "/readyz")[0] == 200
        status, models = get_json(port, "/v1/models") if ok else (None, {})
        time.sleep(1.5)  # a watch period: it reads CURRENT and writes nothing
    finally:
        rc = stop_server(proc)
    log = open(proc.log_path).read()
    check(ok and rc == 0, f"a 0444 snapshot in a 0555 directory serves as uid {NOBODY}: port {port}, exit {rc}, "
                          f"log {log[-600:]}")
    check(models.get("snapshot", {}).get("file") == os.path.basename(current(snaps)[0]),
          f"/v1/models names the snapshot served: {models.get('snapshot')}")
    check(sorted(os.listdir(ro)) == before, f"nothing created beside the snapshot: {sorted(os.listdir(ro))}")
    os.chmod(ro, 0o755)


PUBLISH_STARTS = "recommend: Genre-Hit"  # the trainer's last line before it publishes


def start_trainer(a, data, db, snaps):
    """A trainer run at info level; returns (process, seconds from start to its publish)."""
    proc = subprocess.Popen([a.trainer, "--data", data, "--db", db, "--snapshots", snaps, "--model", "rf", "--trees",
                             "3", "--threads", "2", "--log-level", "info"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if PUBLISH_STARTS in line:
            break
    return proc


def kill_checks(a, data, db, snaps, rounds=20):
    proc = start_trainer(a, data, db, snaps)
    t0 = time.monotonic()
    proc.stderr.read()
    rc = proc.wait()
    publish = time.monotonic() - t0
    check(rc == 0, "a full run")
    rng = random.Random(20261204)
    outcomes = {"old": 0, "new": 0}
    for i in range(rounds):
        served_before = served_versions(current(snaps)[0])
        db_before = served_versions(db)
        proc = start_trainer(a, data, db, snaps)
        if i % 4 == 3:  # the moment the pointer has moved: the publish's tail
            for line in proc.stderr:
                if "snapshot:" in line:
                    break
        else:  # spread over the publish: tasks, catalog, commit, snapshot file, pointer
            time.sleep((i + rng.random()) / rounds * publish)
        proc.send_signal(signal.SIGKILL)
        proc.stderr.close()
        proc.wait()
        path, sha = current(snaps)
        served, stored = served_versions(path), served_versions(db)
        bumped = {t: v + 1 for t, v in db_before.items()}
        check(integrity(db) == "ok" and integrity(path, True) == "ok", f"kill {i}: integrity_check ok")
        check(sha256(path) == sha, f"kill {i}: the served snapshot matches its checksum")
        check(stored in (db_before, bumped), f"kill {i}: the database's published set is all old or all new: "
                                             f"{db_before} -> {stored}")
        check(served in (served_before, stored), f"kill {i}: the served set is entirely the old one or entirely the "
                                                 f"new one: {served_before} -> {served} (database {stored})")
        outcomes["old" if served == served_before else "new"] += 1
        outcomes["committed"] = outcomes.get("committed", 0) + (stored != db_before)
    print(f"kill -9 at {rounds} moments of a {publish * 1000:.0f} ms publish: served set old {outcomes['old']}, "
          f"new {outcomes['new']}; the database's transaction had committed in {outcomes.get('committed', 0)}")
    check(outcomes["old"] and outcomes["new"], f"the kills landed on both sides of the pointer's move: {outcomes}")


def pin_checks(a, db, snaps, tmp, body):
    proc, port = start_server(a.server, snaps, tmp, ("--watch", "1", "--no-access-log"))
    check(port is not None, "server on the snapshot directory")
    if port is None:
        return
    statuses, errors, stop = {}, [], threading.Event()

    def load():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                c.request("POST", "/v1/genre", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def wait_genre(want, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if genre_of(port) == want:
                return True
            time.sleep(0.2)
        return False

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        latest, _ = genre_of(port)
        with sqlite3.connect(db) as con:
            older = con.execute("SELECT MIN(id) FROM models WHERE task = 'genre'").fetchone()[0]
        for t in threads:
            t.start()
        time.sleep(1)
        r = models_cmd(a, db, snaps, "pin", "genre", str(older))
        check(r.returncode == 0, f"models pin genre {older}: {r.stderr}")
        check(wait_genre((older, True)), f"the server serves the pinned version within the watch: {genre_of(port)}")
        listed = models_cmd(a, db, snaps, "list").stdout
        check(any(ln.split()[0] == str(older) and "pinned" in ln for ln in listed.splitlines()),
              f"models list marks it pinned: {listed}")
        time.sleep(1)
        r = models_cmd(a, db, snaps, "unpin", "genre")
        check(r.returncode == 0, f"models unpin genre: {r.stderr}")
        check(wait_genre((latest, False)), f"unpinned, the published version serves again: {genre_of(port)}")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join()
        rc = stop_server(proc)
    total = sum(statuses.values())
    print(f"pin/unpin under load: {total} requests, statuses {statuses}, errors {len(errors)}")
    check(total > 200 and set(statuses) == {200} and not errors,
          f"zero non-2xx and zero errors while the version changed: {statuses} {errors[:3]}")
    check(rc == 0, f"exit 0 ({rc})")
    bad = models_cmd(a, db, snaps, "pin", "popularity", str(older))
    check(bad.returncode == 1 and "not popularity" in bad.stderr, f"pinning another task's model is refused: {bad.stderr}")
    bad = models_cmd(a, db, snaps, "rm", str(latest))
    check(bad.returncode == 1 and "published, pinned or absent" in bad.stderr, f"rm of the published version refused")


def pin_on_database_file_checks(a, db, snaps, tmp):
    """Regression: a server given the database file (not the snapshot directory) kept serving the
    published version of a pinned task while /v1/models called it pinned."""
    proc, port = start_server(a.server, db, tmp, ("--watch", "1", "--no-access-log"))
    check(port is not None, "server on the database file")
    if port is None:
        return
    try:
        latest, _ = genre_of(port)
        with sqlite3.connect(db) as con:
            older = con.execute("SELECT MIN(id) FROM models WHERE task = 'genre'").fetchone()[0]
        check(models_cmd(a, db, snaps, "pin", "genre", str(older)).returncode == 0, "pin on the database")
        deadline, got = time.monotonic() + 10, None
        while time.monotonic() < deadline and (got := genre_of(port)) != (older, True):
            time.sleep(0.2)
        check(got == (older, True), f"a server on the database file serves the pinned version: {got}, want "
                                    f"{(older, True)}")
        check(models_cmd(a, db, snaps, "unpin", "genre").returncode == 0, "unpin on the database")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (got := genre_of(port)) != (latest, False):
            time.sleep(0.2)
        check(got == (latest, False), f"...and the published one once unpinned: {got}")
    finally:
        check(stop_server(proc) == 0, "exit 0")


def prune_checks(a, db, snaps):
    size_before = os.path.getsize(db)
    files_before = [f for f in os.listdir(snaps) if f.startswith("snapshot-")]
    r = models_cmd(a, db, snaps, "prune", "--keep", "2")
    check(r.returncode == 0, f"models prune --keep 2: {r.stderr}")
    with sqlite3.connect(db) as con:
        per_task = dict(con.execute("SELECT task, COUNT(*) FROM models GROUP BY task").fetchall())
    size_after = os.path.getsize(db)
    files_after = [f for f in os.listdir(snaps) if f.startswith("snapshot-")]
    print(f"prune --keep 2: {size_before} -> {size_after} bytes, versions per task {per_task}, "
          f"snapshot files {len(files_before)} -> {len(files_after)}")
    check(per_task and all(n == 2 for n in per_task.values()), f"two versions per task are left: {per_task}")
    check(size_after < size_before, f"the file is smaller: {size_before} -> {size_after}")
    check(len(files_after) == 2 and os.path.basename(current(snaps)[0]) in files_after,
          f"two snapshot files are left, the current among them: {files_after}")
    check(integrity(db) == "ok", "integrity_check after prune")


def label_checks(a, small, tmp):
    """--predict without --data labels with the served versions: the same file the training run's
    own --predict writes, from the database or its snapshot directory; bad input leaves no file."""
    db, snaps = os.path.join(tmp, "label.db"), os.path.join(tmp, "label-snaps")
    during, after, from_snap = (os.path.join(tmp, f"{n}.csv") for n in ("during", "after", "from-snap"))
    r = train(a, small, db, snaps, "--predict", small, "--out", during, "--proba")
    check(r.returncode == 0, f"training with --predict: {r.stderr[-300:]}")
    for source, out in ((db, after), (snaps, from_snap)):
        r = subprocess.run([a.trainer, "--db", source, "--predict", small, "--out", out, "--proba", "--log-level", "warn"],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0 and open(out).read() == open(during).read(),
              f"labelling from {os.path.basename(source)} without --data equals the training run's own: {r.stderr[-300:]}")
    bad = os.path.join(tmp, "bad.csv")
    with open(small) as f:
        head, first = f.readline(), f.readline()
    cols = head.strip().split(",")
    row = first.strip().split(",")
    row[cols.index("tempo")] = "fast"
    with open(bad, "w") as f:
        f.write(head + first + ",".join(row) + "\n")
    out = os.path.join(tmp, "bad-out.csv")
    r = subprocess.run([a.trainer, "--db", db, "--predict", bad, "--out", out], capture_output=True, text=True)
    check(r.returncode == 1 and "bad.csv:3" in r.stderr and "'fast'" in r.stderr and not os.path.exists(out),
          f"a bad cell: exit 1 naming the line and the value, no output file: {r.returncode} {r.stderr[-300:]}")
    r = subprocess.run([a.trainer, "--db", os.path.join(tmp, "nothing.db"), "--predict", small, "--out", out],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "no such database" in r.stderr, f"no database: a clear error: {r.stderr[-300:]}")


def corrupt_checks(a, snaps, tmp):
    bad = os.path.join(tmp, "bad-snaps")
    shutil.copytree(snaps, bad)
    path, _ = current(bad)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 16)
    r = subprocess.run([a.server, "--db", bad, "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "SHA-256" in r.stderr, f"a snapshot that does not match its checksum is refused: "
                                                       f"{r.returncode} {r.stderr[-300:]}")


def main():
    a = test_arguments()
    return with_music_genre(a, "timbre-versions-", lambda data, tmp: run(a, data, tmp))


def run(a, src, tmp):
    small, big = os.path.join(tmp, "small.csv"), os.path.join(tmp, "big.csv")
    write_table(src, small, 25)
    write_table(src, big, 1)
    db, snaps = os.path.join(tmp, "work.db"), os.path.join(tmp, "snaps")
    for _ in range(2):
        r = train(a, small, db, snaps)
        check(r.returncode == 0, f"trainer: {r.stderr[-500:]}")
    names = sorted(os.listdir(snaps))
    check(names == ["CURRENT", "snapshot-000001.db", "snapshot-000002.db"], f"one snapshot per publish: {names}")
    path, sha = current(snaps)
    check(sha256(path) == sha and oct(os.stat(path).st_mode & 0o777) == "0o444",
          "the snapshot matches its checksum and is read-only")
    con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    kept = con.execute("SELECT COUNT(*), COUNT(DISTINCT task) FROM models").fetchone()
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    check(kept == (3, 3) and mode == "delete", f"a snapshot holds only what it serves, in one file: {kept} {mode}")
    read_only_checks(a, snaps, tmp)
    body = json.dumps({"features": {"danceability": 0.6, "energy": 0.7, "tempo": 120.0, "loudness": -6.0}})
    pin_checks(a, db, snaps, tmp, body)
    pin_on_database_file_checks(a, db, snaps, tmp)
    kill_checks(a, big, os.path.join(tmp, "kill.db"), os.path.join(tmp, "kill-snaps"))
    prune_checks(a, db, snaps)
    corrupt_checks(a, snaps, tmp)
    label_checks(a, small, tmp)
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed")
    return 1 if test_http.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

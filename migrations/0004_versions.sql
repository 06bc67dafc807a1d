-- Versions you can pin and snapshots replicas copy. A pin makes a task serve that model (a
-- rollback) instead of its published one until unpinned. Each snapshot written from the
-- trainer's database is recorded here; a snapshot file holds only what it serves, marked
-- published, and its pins (so a server can say a version is pinned).
CREATE TABLE pins (
    task     TEXT    PRIMARY KEY CHECK (task IN ('genre', 'popularity', 'recommend', 'multilabel')),
    model_id INTEGER NOT NULL REFERENCES models (id)
);

CREATE TABLE snapshots (
    seq         INTEGER PRIMARY KEY,
    file        TEXT    NOT NULL,             -- name within the snapshot directory
    sha256      TEXT    NOT NULL,             -- of the whole file, hex
    fingerprint TEXT    NOT NULL,             -- what it serves: "task:id;" (tb_store_format_fingerprint)
    bytes       INTEGER NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

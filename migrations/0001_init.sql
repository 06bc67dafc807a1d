-- Models and the track catalog. Applied by core/migrate.c inside one transaction with
-- PRAGMA user_version = 1.

CREATE TABLE models (
    id             INTEGER PRIMARY KEY,
    task           TEXT    NOT NULL CHECK (task IN ('genre', 'popularity')),
    kind           TEXT    NOT NULL,                 -- model family: 'rf', ...
    name           TEXT    NOT NULL,                 -- e.g. 'genre-rf'; versions count per name
    version        INTEGER NOT NULL CHECK (version >= 1),
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    params         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    metrics        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
    feature_schema TEXT    NOT NULL CHECK (json_valid(feature_schema)),  -- JSON array of input names
    class_names    TEXT    CHECK (class_names IS NULL OR json_valid(class_names)),
    blob           BLOB    NOT NULL,                 -- self-contained: pipeline + model + labels
    published      INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    UNIQUE (name, version)
);

-- At most one published model per task: publishing swaps the flag inside one transaction.
CREATE UNIQUE INDEX models_one_published ON models (task) WHERE published = 1;

CREATE TABLE tracks (
    track_id    TEXT PRIMARY KEY,
    track_name  TEXT NOT NULL DEFAULT '',
    artists     TEXT NOT NULL DEFAULT '',
    genres      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(genres)),   -- JSON array, every genre listed
    popularity  REAL,
    features    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(features))  -- JSON object of raw values
) WITHOUT ROWID;

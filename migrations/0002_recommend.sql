-- Recommendation indexes. A models row with task 'recommend' holds the embedding function (its
-- blob: pipeline + embedder); the vectors and their row order live in the two tables below.
-- SQLite cannot change a CHECK constraint in place, so models is rebuilt (ids kept) to allow the
-- new task.

CREATE TABLE models_new (
    id             INTEGER PRIMARY KEY,
    task           TEXT    NOT NULL CHECK (task IN ('genre', 'popularity', 'recommend')),
    kind           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    params         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    metrics        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
    feature_schema TEXT    NOT NULL CHECK (json_valid(feature_schema)),
    class_names    TEXT    CHECK (class_names IS NULL OR json_valid(class_names)),
    blob           BLOB    NOT NULL,
    published      INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
    UNIQUE (name, version)
);
INSERT INTO models_new (id, task, kind, name, version, created_at, params, metrics, feature_schema, class_names,
                        blob, published)
    SELECT id, task, kind, name, version, created_at, params, metrics, feature_schema, class_names, blob, published
    FROM models;
DROP TABLE models;
ALTER TABLE models_new RENAME TO models;
CREATE UNIQUE INDEX models_one_published ON models (task) WHERE published = 1;

-- One row per index: n_rows L2-normalized float32 vectors of dim values, little-endian, row-major.
CREATE TABLE index_vectors (
    model_id INTEGER PRIMARY KEY REFERENCES models (id),
    n_rows   INTEGER NOT NULL CHECK (n_rows >= 1),
    dim      INTEGER NOT NULL CHECK (dim >= 1),
    vectors  BLOB    NOT NULL CHECK (length(vectors) = 4 * n_rows * dim)
);

-- The track of each vector row (rows ascend with track_id; details are in tracks).
CREATE TABLE index_rows (
    model_id INTEGER NOT NULL REFERENCES models (id),
    row      INTEGER NOT NULL CHECK (row >= 0),
    track_id TEXT    NOT NULL,
    PRIMARY KEY (model_id, row)
) WITHOUT ROWID;

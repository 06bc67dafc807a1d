-- Multi-label genre models (task 'multilabel': one probability per genre, a set by threshold) and
-- saved listener tastes. models is rebuilt (ids kept) to allow the new task, as in 0002; this runs
-- before foreign keys are switched on, so the tables that reference models keep their rows.

CREATE TABLE models_new (
    id             INTEGER PRIMARY KEY,
    task           TEXT    NOT NULL CHECK (task IN ('genre', 'popularity', 'recommend', 'multilabel')),
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

-- Listener tastes saved by POST /v1/taste with "save_as": the ratings given and the fit they
-- produced (penalty, cross-validated R², the index it was fitted against). Written only on request.
CREATE TABLE tastes (
    name           TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    index_model_id INTEGER NOT NULL REFERENCES models (id),
    ratings        TEXT    NOT NULL CHECK (json_valid(ratings)),
    fit            TEXT    NOT NULL CHECK (json_valid(fit)),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

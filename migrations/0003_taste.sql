-- Listener tastes saved by POST /v1/taste with "save_as": the ratings given and the fit they
-- produced (penalty, cross-validated R², the index it was fitted against). Written only on request.
CREATE TABLE tastes (
    name           TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    index_model_id INTEGER NOT NULL REFERENCES models (id),
    ratings        TEXT    NOT NULL CHECK (json_valid(ratings)),
    fit            TEXT    NOT NULL CHECK (json_valid(fit)),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

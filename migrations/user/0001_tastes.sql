-- The user database (timbre-serve --user-db): listener data, apart from the models. A saved
-- taste belongs to whoever holds the secret its first save returned; only a BLAKE2b hash of the
-- secret is kept. Applied by core/migrate.c like the model database's, tracked by user_version.
CREATE TABLE tastes (
    name          TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    secret_hash   BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    index_name    TEXT    NOT NULL,                  -- the recommendation index it was fitted on
    index_version INTEGER NOT NULL,
    ratings       TEXT    NOT NULL CHECK (json_valid(ratings)),
    fit           TEXT    NOT NULL CHECK (json_valid(fit)),
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

/* Every limit on what a client controls, in one place; error messages name the limit. */
#ifndef TB_SERVER_LIMITS_H
#define TB_SERVER_LIMITS_H

#include <stddef.h>

#define TB_MAX_BODY_BYTES (64 * 1024)     /* default: JSON request body of a single-track route */
#define TB_MAX_BATCH_BODY_BYTES (1024 * 1024) /* default: body of a route that takes batches */
/* A body over its route's limit is still read, up to this many bytes, and dropped before the 413
 * goes out: a server that answers and closes with the body unread makes the kernel reset the
 * connection, which can destroy the 413 before the client reads it. Past this, answer and close. */
#define TB_MAX_DROPPED_BODY_BYTES (16u << 20)
#define TB_MAX_BATCH_ROWS 1000            /* default: instances in one batch */
#define TB_MAX_TRACK_ID_BYTES 128         /* a track id in a request */
#define TB_MAX_FEATURE_NAME_BYTES 64      /* a key inside "features" */
#define TB_MAX_KEYS 256                   /* keys in one JSON object of a request */
#define TB_MAX_STRING_VALUE_BYTES 32      /* a string feature value such as "F#" or "Major" */
#define TB_TOP_GENRES 5                   /* probabilities listed in a genre reply */
/* Instances in an explain batch: a deep forest's explanation takes ~0.45 s (music_genre_50k's
 * rf), so a batch holds a request thread for seconds, not minutes. */
#define TB_MAX_EXPLAIN_ROWS 16
#define TB_DEFAULT_ALPHA 0.1               /* conformal sets when "alpha" is not given */
#define TB_DEFAULT_K 10                   /* recommendations when "k" is not given */
#define TB_MAX_K 100                      /* default: most recommendations one request may ask for */
#define TB_MAX_K_CEILING 10000            /* --max-k at most */
#define TB_MAX_GENRE_FILTER 64            /* genres in a recommendation filter */
#define TB_MAX_SEEDS 5                    /* seeds of a /v1/recommendations request, as Spotify's API */
#define TB_MAX_TASTE_RATINGS 1000         /* ratings in one taste request */
#define TB_MAX_SEARCH_BYTES 200           /* the q of a track search */
#define TB_DEFAULT_SEARCH_LIMIT 10
#define TB_MAX_SEARCH_LIMIT 100
#define TB_DEFAULT_HEADER_BYTES 8192      /* request line + headers (per-connection buffer) */
#define TB_DEFAULT_CONNECTION_LIMIT 1024
#define TB_DEFAULT_PER_IP_LIMIT 256
#define TB_DEFAULT_CONNECTION_TIMEOUT_S 30 /* keep-alive idle */
#define TB_DEFAULT_REQUEST_TIMEOUT_S 10   /* a whole request from its first byte: 100 KB/s for a full batch */
#define TB_DEFAULT_SHED_AFTER_MS 500      /* queueing behind other requests before a 503 */
#define TB_DEFAULT_DRAIN_TIMEOUT_S 20     /* SIGTERM to exit, at most */
#define TB_HEADER_BUFFER_SLACK 8192       /* per-connection buffer above --max-header-bytes (http.c) */
#define TB_MAX_TRUSTED_PROXIES 16         /* --trusted-proxy addresses */
#define TB_MAX_RATE_CLIENTS 65536         /* token buckets kept; past it clients share one */
#define TB_DEFAULT_SLICE_US 100           /* request threads' scheduler slice (server/slice.h) */

/* The limits an operator sets with flags (timbre-serve --help); defaults above. */
typedef struct tb_limits {
    size_t max_body;        /* bytes, routes that take one request (TB_BODY_SINGLE) */
    size_t max_batch_body;  /* bytes, routes that take batches (TB_BODY_BATCH) */
    size_t max_batch_rows;  /* instances in a batch, rows of a V2 tensor */
    size_t max_k;           /* recommendations per request */
    size_t max_tastes;      /* tastes the user database keeps */
} tb_limits;

#define TB_DEFAULT_MAX_TASTES 10000
#define TB_LIMITS_DEFAULT {TB_MAX_BODY_BYTES, TB_MAX_BATCH_BODY_BYTES, TB_MAX_BATCH_ROWS, TB_MAX_K, TB_DEFAULT_MAX_TASTES}

#endif

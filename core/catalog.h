/* The track catalog held in memory by the server: every stored track's id, name, artists, genres
 * and popularity, sorted by id, for look-ups, text search and recommendation filters. Built once
 * from the store, then read-only and shared by every request thread. */
#ifndef TB_CATALOG_H
#define TB_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "audio_features.h"
#include "status.h"
#include "store.h"

typedef struct tb_catalog_track {
    const char *id, *name, *artists; /* artists separated by ';' as in the source tables */
    const char *folded;              /* ASCII-lowercased "name\nartists", for search */
    double popularity;               /* NaN when unknown */
    uint64_t song;                   /* hash of the folded title + artists: releases of one song share it */
    uint32_t title_len;              /* the title: folded name up to " - ", " (" or " [" (a remaster,
                                        a live take, a feature credit is the same song) */
    uint32_t genre_start;            /* genres: genre_ids[genre_start .. + n_genres) */
    uint16_t n_genres;
    float audio[TB_MAX_AUDIO_FEATURES]; /* tb_audio_features' values as stored; NaN when absent */
} tb_catalog_track;

typedef struct tb_catalog {
    size_t n;
    tb_catalog_track *tracks;  /* ascending id */
    size_t n_genres;
    char **genres;             /* vocabulary, ascending */
    uint16_t *genre_ids;
    char *text;                /* every string above lives here */
    /* Standard deviation over the tracks of each audio value and of popularity (1 when none
     * varies): the unit in which a request's target for it is measured. */
    double audio_scale[TB_MAX_AUDIO_FEATURES], popularity_scale;
} tb_catalog;

tb_status tb_catalog_load(tb_store *store, tb_catalog **ret);
tb_catalog *tb_catalog_free(tb_catalog *c);

/* Index of the track with this id, or -1. */
long tb_catalog_find(const tb_catalog *c, const char *id);
/* Index of the genre in the vocabulary, or -1. */
long tb_catalog_genre(const tb_catalog *c, const char *name);
/* Whether track t lists genre g. */
int tb_catalog_has_genre(const tb_catalog *c, size_t t, size_t g);
/* Whether two ';'-separated artist lists name one artist in common (exact names; NULL: none). */
int tb_artists_overlap(const char *a, const char *b);
/* Whether tracks a and b share at least one artist (exact names, ';'-separated). */
int tb_catalog_share_artist(const tb_catalog *c, size_t a, size_t b);
/* Whether a and b are the same song: the same title (the name before " - ", " (" or " [") and the
 * same artists, ignoring ASCII case. */
int tb_catalog_same_song(const tb_catalog *c, size_t a, size_t b);

/* Tracks whose name or artists contain `query` (ASCII case-insensitive), most popular first, ties
 * by id; at most `limit` indices written to out. Returns how many were written; *ret_total (may be
 * NULL) gets the number of matches. Needs `limit` slots of out. */
size_t tb_catalog_search(const tb_catalog *c, const char *query, size_t limit, size_t *out, size_t *ret_total);

#endif

/* The in-memory track catalog. */
#include "catalog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* While loading, strings are offsets into a growing buffer; pointers are set once it stops moving. */
typedef struct loading_track {
    size_t id, name, artists, folded, genres; /* offsets into text */
    double popularity;
    float audio[TB_MAX_AUDIO_FEATURES];
} loading_track;

typedef struct loader {
    char *text;
    size_t len, cap;
    loading_track *rows;
    size_t n, rows_cap;
} loader;

/* Appends s[0..n) and a NUL; s NULL reserves the n bytes for the caller to fill. */
static int append(loader *l, const char *s, size_t n, size_t *ret_off) {
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 1 << 16;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *p = realloc(l->text, cap);
        if (!p)
            return -1;
        l->text = p;
        l->cap = cap;
    }
    if (s)
        memcpy(l->text + l->len, s, n);
    l->text[l->len + n] = '\0';
    *ret_off = l->len;
    l->len += n + 1;
    return 0;
}

static char fold(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch; }

static tb_status visit(void *ctx, const char *id, const char *name, const char *artists, const char *genres,
                       double popularity, const double *audio) {
    loader *l = ctx;
    if (l->n == l->rows_cap) {
        size_t cap = l->rows_cap ? l->rows_cap * 2 : 1024;
        loading_track *p = realloc(l->rows, cap * sizeof *p);
        if (!p)
            return tb_error(TB_NOMEM, "out of memory loading the catalog");
        l->rows = p;
        l->rows_cap = cap;
    }
    loading_track *t = &l->rows[l->n];
    size_t nn = strlen(name), na = strlen(artists);
    if (append(l, id, strlen(id), &t->id) || append(l, name, nn, &t->name) || append(l, artists, na, &t->artists) ||
        append(l, genres, strlen(genres), &t->genres) || append(l, NULL, nn + 1 + na, &t->folded))
        return tb_error(TB_NOMEM, "out of memory loading the catalog");
    char *f = l->text + t->folded;
    memcpy(f, name, nn);
    f[nn] = '\n';
    memcpy(f + nn + 1, artists, na);
    for (size_t i = 0; i < nn + 1 + na; i++)
        f[i] = fold(f[i]);
    t->popularity = popularity;
    for (size_t a = 0; a < TB_MAX_AUDIO_FEATURES; a++)
        t->audio[a] = a < tb_n_audio_features ? (float)audio[a] : NAN;
    l->n++;
    return TB_OK;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Length of the title in a folded "name\nartists": the name up to its first " - ", " (" or " ["
 * after at least one character. */
static uint32_t title_length(const char *folded) {
    const char *nl = strchr(folded, '\n');
    size_t n = nl ? (size_t)(nl - folded) : strlen(folded);
    for (size_t i = 1; i + 1 < n; i++)
        if (folded[i] == ' ' && ((folded[i + 1] == '-' && i + 2 < n && folded[i + 2] == ' ') || folded[i + 1] == '(' ||
                                 folded[i + 1] == '['))
            return (uint32_t)i;
    return (uint32_t)n;
}

static const char *artists_of(const char *folded) {
    const char *nl = strchr(folded, '\n');
    return nl ? nl + 1 : "";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

tb_catalog *tb_catalog_free(tb_catalog *c) {
    if (!c)
        return NULL;
    free(c->tracks);
    free(c->genres);
    free(c->genre_ids);
    free(c->text);
    free(c);
    return NULL;
}

/* Standard deviation of the known values of one column of the catalog (1 when it does not vary). */
static double scale_of(const tb_catalog *c, size_t a) {
    double s = 0.0, s2 = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        double v = a < TB_MAX_AUDIO_FEATURES ? (double)c->tracks[i].audio[a] : c->tracks[i].popularity;
        if (!isnan(v)) {
            s += v;
            s2 += v * v;
            n++;
        }
    }
    double var = n ? s2 / (double)n - (s / (double)n) * (s / (double)n) : 0.0;
    return var > 1e-12 ? sqrt(var) : 1.0;
}

static void set_scales(tb_catalog *c) {
    for (size_t a = 0; a < TB_MAX_AUDIO_FEATURES; a++)
        c->audio_scale[a] = scale_of(c, a);
    c->popularity_scale = scale_of(c, TB_MAX_AUDIO_FEATURES);
}

tb_status tb_catalog_load(tb_store *store, tb_catalog **ret) {
    loader l = {0};
    tb_status st = tb_store_scan_tracks(store, visit, &l);
    tb_catalog *c = calloc(1, sizeof *c);
    char **all = NULL;
    size_t n_all = 0;
    if (st == TB_OK && !c)
        st = tb_error(TB_NOMEM, "out of memory");
    if (st != TB_OK)
        goto fail;
    c->text = l.text;
    l.text = NULL;
    c->n = l.n;
    c->tracks = tb_calloc_n(l.n ? l.n : 1, sizeof *c->tracks);
    /* Every genre occurrence: split each track's 0x1f-joined list in place. */
    size_t n_occ = 0;
    for (size_t i = 0; i < l.n; i++) {
        const char *g = c->text + l.rows[i].genres;
        if (*g)
            n_occ++;
        for (; *g; g++)
            n_occ += *g == '\x1f';
    }
    all = tb_malloc_n(n_occ ? n_occ : 1, sizeof *all);
    c->genre_ids = tb_malloc_n(n_occ ? n_occ : 1, sizeof *c->genre_ids);
    c->genres = tb_malloc_n(n_occ ? n_occ : 1, sizeof *c->genres);
    if (!c->tracks || !all || !c->genre_ids || !c->genres) {
        st = tb_error(TB_NOMEM, "out of memory loading the catalog");
        goto fail;
    }
    for (size_t i = 0; i < l.n; i++) {
        char *g = c->text + l.rows[i].genres;
        tb_catalog_track *t = &c->tracks[i];
        t->genre_start = (uint32_t)n_all;
        while (*g) {
            char *end = strchr(g, '\x1f');
            all[n_all++] = g;
            if (!end)
                break;
            *end = '\0';
            g = end + 1;
        }
        t->n_genres = (uint16_t)(n_all - t->genre_start);
        t->id = c->text + l.rows[i].id;
        t->name = c->text + l.rows[i].name;
        t->artists = c->text + l.rows[i].artists;
        t->folded = c->text + l.rows[i].folded;
        t->popularity = l.rows[i].popularity;
        memcpy(t->audio, l.rows[i].audio, sizeof t->audio);
        t->title_len = title_length(t->folded);
        t->song = hash_str(artists_of(t->folded));
        for (uint32_t j = 0; j < t->title_len; j++)
            t->song = (t->song ^ (unsigned char)t->folded[j]) * 1099511628211ULL;
    }
    set_scales(c);
    /* The vocabulary: distinct genre names, sorted. */
    memcpy(c->genres, all, n_all * sizeof *all);
    qsort(c->genres, n_all, sizeof *c->genres, cmp_str);
    for (size_t i = 0; i < n_all; i++)
        if (c->n_genres == 0 || strcmp(c->genres[c->n_genres - 1], c->genres[i]) != 0)
            c->genres[c->n_genres++] = c->genres[i];
    if (c->n_genres > UINT16_MAX) {
        st = tb_error(TB_INVALID, "the catalog lists %zu genres; at most %d are supported", c->n_genres, UINT16_MAX);
        goto fail;
    }
    for (size_t i = 0; i < n_all; i++)
        c->genre_ids[i] = (uint16_t)tb_catalog_genre(c, all[i]);
    free(all);
    free(l.rows);
    *ret = c;
    return TB_OK;
fail:
    free(all);
    free(l.rows);
    free(l.text);
    tb_catalog_free(c);
    return st;
}

static int cmp_id_track(const void *key, const void *track) {
    return strcmp(key, ((const tb_catalog_track *)track)->id);
}

long tb_catalog_find(const tb_catalog *c, const char *id) {
    const tb_catalog_track *t = bsearch(id, c->tracks, c->n, sizeof *c->tracks, cmp_id_track);
    return t ? (long)(t - c->tracks) : -1;
}

long tb_catalog_genre(const tb_catalog *c, const char *name) {
    char *const *hit = bsearch(&name, c->genres, c->n_genres, sizeof *c->genres, cmp_str);
    return hit ? (long)(hit - c->genres) : -1;
}

int tb_catalog_has_genre(const tb_catalog *c, size_t t, size_t g) {
    const tb_catalog_track *tr = &c->tracks[t];
    for (uint16_t i = 0; i < tr->n_genres; i++)
        if (c->genre_ids[tr->genre_start + i] == g)
            return 1;
    return 0;
}

/* The next name of a ';'-separated list: *item, *len; advances *list. 0 at the end. */
static int next_name(const char **list, const char **item, size_t *len) {
    if (!**list)
        return 0;
    const char *end = strchr(*list, ';');
    *item = *list;
    *len = end ? (size_t)(end - *list) : strlen(*list);
    *list = end ? end + 1 : *list + *len;
    return 1;
}

/* Whether the ';'-separated list holds the name s[0..n). */
static int list_has(const char *list, const char *s, size_t n) {
    const char *item;
    size_t len;
    while (next_name(&list, &item, &len))
        if (len == n && memcmp(item, s, n) == 0)
            return 1;
    return 0;
}

int tb_artists_overlap(const char *a, const char *b) {
    const char *item;
    size_t len;
    while (a && b && next_name(&a, &item, &len))
        if (len && list_has(b, item, len))
            return 1;
    return 0;
}

int tb_catalog_share_artist(const tb_catalog *c, size_t a, size_t b) {
    return tb_artists_overlap(c->tracks[a].artists, c->tracks[b].artists);
}

int tb_catalog_same_song(const tb_catalog *c, size_t a, size_t b) {
    const tb_catalog_track *x = &c->tracks[a], *y = &c->tracks[b];
    return x->song == y->song && x->title_len == y->title_len && memcmp(x->folded, y->folded, x->title_len) == 0 &&
           strcmp(artists_of(x->folded), artists_of(y->folded)) == 0;
}

/* Search order: more popular first (unknown popularity last), then lower index (= id order). */
static int ranks_before(const tb_catalog *c, size_t a, size_t b) {
    double pa = c->tracks[a].popularity, pb = c->tracks[b].popularity;
    pa = isnan(pa) ? -1.0 : pa;
    pb = isnan(pb) ? -1.0 : pb;
    return pa != pb ? pa > pb : a < b;
}

/* out[0..n) is a heap whose root ranks last, so a better match replaces the root. */
static void sift_down(const tb_catalog *c, size_t *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && ranks_before(c, h[w], h[l]))
            w = l;
        if (r < n && ranks_before(c, h[w], h[r]))
            w = r;
        if (w == i)
            return;
        size_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

size_t tb_catalog_search(const tb_catalog *c, const char *query, size_t limit, size_t *out, size_t *ret_total) {
    char q[256];
    size_t ql = strlen(query), n = 0, total = 0;
    if (ql >= sizeof q)
        ql = sizeof q - 1;
    for (size_t i = 0; i < ql; i++)
        q[i] = fold(query[i]);
    q[ql] = '\0';
    for (size_t t = 0; t < c->n; t++) {
        if (!strstr(c->tracks[t].folded, q))
            continue;
        total++;
        if (limit == 0)
            continue;
        if (n < limit) {
            out[n++] = t;
            for (size_t i = n - 1; i > 0 && ranks_before(c, out[(i - 1) / 2], out[i]); i = (i - 1) / 2) {
                size_t p = (i - 1) / 2, tmp = out[p];
                out[p] = out[i];
                out[i] = tmp;
            }
        } else if (ranks_before(c, t, out[0])) {
            out[0] = t;
            sift_down(c, out, n, 0);
        }
    }
    /* Heap to sorted order: repeatedly move the last-ranked root to the end. */
    for (size_t m = n; m > 1; m--) {
        size_t tmp = out[0];
        out[0] = out[m - 1];
        out[m - 1] = tmp;
        sift_down(c, out, m - 1, 0);
    }
    if (ret_total)
        *ret_total = total;
    return n;
}

/* Twins: an open-addressing table over the distinct training rows; each key lists its classes
 * (increasing) with their row counts. Keys are the inputs rounded to float: the tables' values
 * have at most 7 significant digits, so this merges no two of them, and a KServe client's FP32
 * tensor finds the same twins as a JSON client. The table is rebuilt at load from the keys. */
#include "twins.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define TWINS_FORMAT 1
#define TWINS_MAX_FEATURES 1024
#define TWINS_MAX_CLASSES 65535
#define TWINS_MAX_ROWS 0x7fffffffu

struct tb_twins {
    size_t d, k, n_keys;
    double prior;
    float *keys;    /* n_keys × d canonical values */
    int32_t *start; /* n_keys + 1: key i's classes are cls[start[i] .. start[i+1]) */
    int32_t *cls, *count;
    uint32_t *slot; /* mask + 1 slots: key index + 1, 0 = empty */
    size_t mask;
};

/* Rounded to float; one NaN, one zero, out-of-range values as infinities (a plain conversion of
 * those would be undefined). */
static inline float canonical(double v) {
    if (v != v)
        return NAN;
    if (v == 0.0)
        return 0.0f;
    if (fabs(v) > FLT_MAX)
        return v > 0 ? INFINITY : -INFINITY;
    return (float)v;
}

static inline uint32_t bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static uint64_t hash_row(const float *canon, size_t d) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ d;
    for (size_t j = 0; j < d; j++) {
        h = (h ^ bits(canon[j])) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static int same_row(const float *a, const float *b, size_t d) {
    for (size_t j = 0; j < d; j++)
        if (bits(a[j]) != bits(b[j]))
            return 0;
    return 1;
}

/* The slot holding the key equal to canon, or the empty slot where it would go. */
static size_t probe(const tb_twins *t, const float *canon) {
    size_t s = (size_t)hash_row(canon, t->d) & t->mask;
    while (t->slot[s] && !same_row(t->keys + (size_t)(t->slot[s] - 1) * t->d, canon, t->d))
        s = (s + 1) & t->mask;
    return s;
}

/* Slots for n keys at most half full. */
static tb_status alloc_slots(tb_twins *t, size_t n) {
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    if (!(t->slot = tb_calloc_n(size, sizeof *t->slot)))
        return tb_error(TB_NOMEM, "out of memory");
    t->mask = size - 1;
    return TB_OK;
}

tb_twins *tb_twins_free(tb_twins *t) {
    if (!t)
        return NULL;
    free(t->keys);
    free(t->start);
    free(t->cls);
    free(t->count);
    free(t->slot);
    free(t);
    return NULL;
}

size_t tb_twins_n_features(const tb_twins *t) { return t->d; }
size_t tb_twins_n_classes(const tb_twins *t) { return t->k; }
size_t tb_twins_n_keys(const tb_twins *t) { return t->n_keys; }
double tb_twins_prior(const tb_twins *t) { return t->prior; }

typedef struct key_class {
    uint32_t key, cls;
} key_class;

static int cmp_key_class(const void *a, const void *b) {
    const key_class *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->cls > y->cls) - (x->cls < y->cls);
}

tb_status tb_twins_build(const double *raw, size_t d, const size_t *rows, size_t n, const int32_t *y, size_t k,
                         double prior, tb_twins **ret) {
    if (d == 0 || d > TWINS_MAX_FEATURES || k == 0 || k > TWINS_MAX_CLASSES || n > TWINS_MAX_ROWS)
        return tb_error(TB_INVALID, "twins: %zu features, %zu classes, %zu rows out of range", d, k, n);
    if (!(prior >= 0.0) || !isfinite(prior))
        return tb_error(TB_INVALID, "twins: the prior weight must be a finite number >= 0");
    tb_twins *t = calloc(1, sizeof *t);
    key_class *pairs = tb_malloc_n(n + 1, sizeof *pairs);
    tb_status st = TB_OK;
    if (!t || !pairs || !(t->keys = tb_malloc_n(n * d, sizeof *t->keys)) || (st = alloc_slots(t, n)) != TB_OK) {
        st = st != TB_OK ? st : tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    t->d = d;
    t->k = k;
    t->prior = prior;
    for (size_t i = 0; i < n; i++) {
        if (y[rows[i]] < 0 || (size_t)y[rows[i]] >= k) {
            st = tb_error(TB_INVALID, "twins: row %zu has class %d of %zu", rows[i], (int)y[rows[i]], k);
            goto fail;
        }
        float *canon = t->keys + t->n_keys * d; /* the next key's place, kept when new */
        for (size_t j = 0; j < d; j++)
            canon[j] = canonical(raw[rows[i] * d + j]);
        size_t s = probe(t, canon);
        if (!t->slot[s])
            t->slot[s] = (uint32_t)++t->n_keys;
        pairs[i] = (key_class){t->slot[s] - 1, (uint32_t)y[rows[i]]};
    }
    qsort(pairs, n, sizeof *pairs, cmp_key_class);
    size_t n_entries = 0;
    for (size_t i = 0; i < n; i++)
        n_entries += i == 0 || cmp_key_class(&pairs[i - 1], &pairs[i]) != 0;
    if (!(t->start = tb_malloc_n(t->n_keys + 1, sizeof *t->start)) ||
        !(t->cls = tb_malloc_n(n_entries, sizeof *t->cls)) || !(t->count = tb_malloc_n(n_entries, sizeof *t->count))) {
        st = tb_error(TB_NOMEM, "out of memory");
        goto fail;
    }
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cmp_key_class(&pairs[i - 1], &pairs[i]) == 0) {
            t->count[e - 1]++;
            continue;
        }
        if (i == 0 || pairs[i - 1].key != pairs[i].key)
            t->start[pairs[i].key] = (int32_t)e;
        t->cls[e] = (int32_t)pairs[i].cls;
        t->count[e++] = 1;
    }
    t->start[t->n_keys] = (int32_t)e;
    free(pairs);
    *ret = t;
    return TB_OK;
fail:
    free(pairs);
    tb_twins_free(t);
    return st;
}

/* Index + 1 of the key equal to raw, 0 when none. */
static size_t find(const tb_twins *t, const double *raw) {
    float canon[TWINS_MAX_FEATURES];
    for (size_t j = 0; j < t->d; j++)
        canon[j] = canonical(raw[j]);
    return t->slot[probe(t, canon)];
}

/* Training rows with key i, over all its classes. */
static size_t key_rows(const tb_twins *t, size_t i) {
    size_t total = 0;
    for (int32_t e = t->start[i]; e < t->start[i + 1]; e++)
        total += (size_t)t->count[e];
    return total;
}

size_t tb_twins_apply(const tb_twins *t, const double *raw, double *proba) {
    size_t i = find(t, raw);
    if (!i--)
        return 0;
    size_t total = key_rows(t, i);
    double denominator = (double)total + t->prior, keep = t->prior / denominator;
    for (size_t c = 0; c < t->k; c++)
        proba[c] *= keep;
    for (int32_t e = t->start[i]; e < t->start[i + 1]; e++)
        proba[t->cls[e]] += t->count[e] / denominator;
    return total;
}

typedef struct keyed_row {
    uint32_t key, cls;
    size_t group;
} keyed_row;

static int cmp_keyed_row(const void *a, const void *b) {
    const keyed_row *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return (x->cls > y->cls) - (x->cls < y->cls);
}

/* Rows of key i labelled c (0 when none). */
static size_t key_class_count(const tb_twins *t, size_t i, int32_t c) {
    for (int32_t e = t->start[i]; e < t->start[i + 1]; e++)
        if (t->cls[e] == c)
            return (size_t)t->count[e];
    return 0;
}

tb_status tb_twins_agreement(const tb_twins *t, const double *raw, const size_t *rows, size_t n, const int32_t *y,
                             const size_t *group, size_t *ret_with_twin, size_t *ret_agree) {
    keyed_row *kr = tb_malloc_n(n + 1, sizeof *kr);
    if (!kr)
        return tb_error(TB_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t key = find(t, raw + rows[i] * t->d);
        if (key) /* rows t was not built from may lack a key */
            kr[m++] = (keyed_row){(uint32_t)(key - 1), (uint32_t)y[rows[i]], group ? group[rows[i]] : rows[i]};
    }
    /* Runs of one (key, group) and, inside them, of one class: the own track's share of a count. */
    qsort(kr, m, sizeof *kr, cmp_keyed_row);
    size_t with_twin = 0, agree = 0;
    for (size_t a = 0; a < m;) {
        size_t b = a, total = key_rows(t, kr[a].key);
        while (b < m && kr[b].key == kr[a].key && kr[b].group == kr[a].group)
            b++;
        for (size_t c = a; c < b;) {
            size_t d = c;
            while (d < b && kr[d].cls == kr[c].cls)
                d++;
            if (total > b - a) { /* other tracks share the key */
                with_twin += d - c;
                if (key_class_count(t, kr[c].key, (int32_t)kr[c].cls) > d - c)
                    agree += d - c;
            }
            c = d;
        }
        a = b;
    }
    free(kr);
    *ret_with_twin = with_twin;
    *ret_agree = agree;
    return TB_OK;
}

void tb_twins_save(const tb_twins *t, tb_writer *w) {
    tb_write_u16(w, TWINS_FORMAT);
    tb_write_u32(w, (uint32_t)t->d);
    tb_write_u32(w, (uint32_t)t->k);
    tb_write_f64(w, t->prior);
    tb_write_u32(w, (uint32_t)t->n_keys);
    tb_write_u32(w, (uint32_t)t->start[t->n_keys]);
    tb_write_f32s(w, t->keys, t->n_keys * t->d);
    tb_write_i32s(w, t->start, t->n_keys + 1);
    tb_write_i32s(w, t->cls, (size_t)t->start[t->n_keys]);
    tb_write_i32s(w, t->count, (size_t)t->start[t->n_keys]);
}

/* Offsets that step up from 0 to n_entries, classes increasing within a key and below k, counts ≥ 1. */
static tb_status check_entries(const tb_twins *t, size_t n_entries) {
    if (t->start[0] != 0 || (size_t)t->start[t->n_keys] != n_entries)
        return tb_error(TB_CORRUPT, "twins: class lists do not span the %zu entries", n_entries);
    for (size_t i = 0; i < t->n_keys; i++) {
        if (t->start[i + 1] <= t->start[i])
            return tb_error(TB_CORRUPT, "twins: key %zu has no classes", i);
        for (int32_t e = t->start[i]; e < t->start[i + 1]; e++)
            if (t->cls[e] < 0 || (size_t)t->cls[e] >= t->k || (e > t->start[i] && t->cls[e] <= t->cls[e - 1]) ||
                t->count[e] < 1)
                return tb_error(TB_CORRUPT, "twins: key %zu has a bad class or count", i);
    }
    return TB_OK;
}

tb_status tb_twins_load(tb_reader *r, size_t d, size_t k, tb_twins **ret) {
    uint16_t format;
    uint32_t d32, k32, n_keys, n_entries;
    double prior;
    tb_status st;
    if ((st = tb_read_u16(r, &format, "twins format")) != TB_OK)
        return st;
    if (format != TWINS_FORMAT)
        return tb_error(TB_CORRUPT, "twins: format %u, this binary reads %d", format, TWINS_FORMAT);
    if ((st = tb_read_u32(r, &d32, "twins features")) != TB_OK || (st = tb_read_u32(r, &k32, "twins classes")) != TB_OK ||
        (st = tb_read_f64(r, &prior, "twins prior")) != TB_OK || (st = tb_read_u32(r, &n_keys, "twins keys")) != TB_OK ||
        (st = tb_read_u32(r, &n_entries, "twins entries")) != TB_OK)
        return st;
    if (d32 != d || k32 != k || !(prior >= 0.0) || !isfinite(prior) || n_keys > TWINS_MAX_ROWS ||
        n_entries > TWINS_MAX_ROWS || n_entries < n_keys)
        return tb_error(TB_CORRUPT, "twins: %u features, %u classes, %u keys, %u entries do not fit the model", d32,
                        k32, n_keys, n_entries);
    size_t bytes = 4 * ((size_t)n_keys * d + n_keys + 1 + 2 * (size_t)n_entries);
    if ((st = tb_reader_expect(r, bytes, 1, "twins")) != TB_OK)
        return st;
    tb_twins *t = calloc(1, sizeof *t);
    if (!t)
        return tb_error(TB_NOMEM, "out of memory");
    t->d = d;
    t->k = k;
    t->prior = prior;
    t->n_keys = n_keys;
    if ((st = tb_read_f32s(r, &t->keys, (size_t)n_keys * d, "twin keys")) != TB_OK ||
        (st = tb_read_i32s(r, &t->start, (size_t)n_keys + 1, "twin offsets")) != TB_OK ||
        (st = tb_read_i32s(r, &t->cls, n_entries, "twin classes")) != TB_OK ||
        (st = tb_read_i32s(r, &t->count, n_entries, "twin counts")) != TB_OK ||
        (st = check_entries(t, n_entries)) != TB_OK || (st = alloc_slots(t, n_keys)) != TB_OK)
        goto fail;
    for (size_t i = 0; i < n_keys; i++) {
        const float *key = t->keys + i * d;
        for (size_t j = 0; j < d; j++)
            if (bits(key[j]) != bits(canonical(key[j]))) {
                st = tb_error(TB_CORRUPT, "twins: key %zu is not in canonical form", i);
                goto fail;
            }
        size_t s = probe(t, key);
        if (t->slot[s]) {
            st = tb_error(TB_CORRUPT, "twins: key %zu repeats key %u", i, t->slot[s] - 1);
            goto fail;
        }
        t->slot[s] = (uint32_t)(i + 1);
    }
    *ret = t;
    return TB_OK;
fail:
    tb_twins_free(t);
    return st;
}

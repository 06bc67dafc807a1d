/* Twins: the genres of the training rows, keyed by their input values. spotify_tracks_114k lists
 * one recording under several track ids (album, single, compilation) with identical audio
 * features; a row equal to training rows takes the genres those carry, with the model's
 * probabilities as a prior of weight `prior`:
 *     p_c = (count_c + prior · model_c) / (n + prior),   n = Σ count_c.
 * A genre model's probabilities for a known recording then say what it was labelled, and its
 * conformal sets shrink (the calibration sees the same rule). Keys are the raw inputs in pipeline
 * order, before imputation, rounded to float (an FP32 client finds the same twins), with every NaN
 * one value and −0 equal to +0. */
#ifndef TB_TWINS_H
#define TB_TWINS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "status.h"

typedef struct tb_twins tb_twins;

/* From raw rows `rows` of raw (each d values) with classes y[rows[i]] in [0, k). */
tb_status tb_twins_build(const double *raw, size_t d, const size_t *rows, size_t n, const int32_t *y, size_t k,
                         double prior, tb_twins **ret);
tb_twins *tb_twins_free(tb_twins *t);

size_t tb_twins_n_features(const tb_twins *t);
size_t tb_twins_n_classes(const tb_twins *t);
size_t tb_twins_n_keys(const tb_twins *t);
double tb_twins_prior(const tb_twins *t);

/* Mixes the twins' genres into proba (k model probabilities) as above and returns how many
 * training rows have these d raw values; 0 (proba left alone) when none. No allocation,
 * thread-safe. */
size_t tb_twins_apply(const tb_twins *t, const double *raw, double *proba);

/* Whether twins name genres in this data: over the rows `rows` (those t was built from, classes y,
 * groups = tracks), leaving each row's own track out, *ret_with_twin rows still have a twin and
 * *ret_agree of them have a twin labelled with their own genre. (music_genre_50k lists a song
 * under a second genre as a new row: its twins name the other genre, and agreement is ~1%;
 * spotify_tracks_114k's releases of one recording share genres: ~97%.) */
tb_status tb_twins_agreement(const tb_twins *t, const double *raw, const size_t *rows, size_t n, const int32_t *y,
                             const size_t *group, size_t *ret_with_twin, size_t *ret_agree);

void tb_twins_save(const tb_twins *t, tb_writer *w);
/* Validates every count, class and key against d and k; refuses duplicate keys. */
tb_status tb_twins_load(tb_reader *r, size_t d, size_t k, tb_twins **ret);

#endif

/* What counts as an audio feature, and how one cell of text becomes a number: the conventions
 * of Spotify-derived tables (True/False, key letters, Major/Minor, '?' and -1 sentinels). Shared by
 * CSV ingest and the server so a value means the same thing on both paths. */
#ifndef TB_AUDIO_FEATURES_H
#define TB_AUDIO_FEATURES_H

#include <stddef.h>

#include "status.h"

/* The numeric audio columns a table may carry, in Spotify's API order. */
#define TB_MAX_AUDIO_FEATURES 14
extern const char *const tb_audio_features[TB_MAX_AUDIO_FEATURES];
extern const size_t tb_n_audio_features;

/* 1 when `name` is one of tb_audio_features. */
int tb_is_audio_feature(const char *name);

/* Parses one cell of column `column` into *ret (NaN means missing: "", "?", "NA", "nan", and -1
 * in columns where -1 is Spotify's "unknown", e.g. duration_ms, key, tempo). Accepts True/False,
 * key letters (C=0 … B=11, with # or ♯, b for flat), Major/Minor. TB_PARSE when the text is none
 * of these; the message quotes the value. Thread-safe, locale-independent (C locale assumed). */
tb_status tb_feature_parse(const char *column, const char *text, double *ret);

/* The number a value of `column` stands for: NaN for Spotify's -1 "unknown" sentinel in
 * duration_ms, key and tempo, else v itself. Applied to CSV cells and JSON numbers alike. */
double tb_feature_normalize(const char *column, double v);

/* Year from a release date "YYYY", "YYYY-MM" or "YYYY-MM-DD"; NaN when absent or malformed. */
double tb_year_from_date(const char *text);

#endif

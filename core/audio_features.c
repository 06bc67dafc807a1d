/* Audio-feature vocabulary and cell parsing. */
#include "audio_features.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const tb_audio_features[TB_MAX_AUDIO_FEATURES] = {
    "danceability", "energy",   "key",   "loudness", "mode",        "speechiness",    "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "duration_ms", "time_signature", "explicit",
};
const size_t tb_n_audio_features = sizeof tb_audio_features / sizeof tb_audio_features[0];

int tb_is_audio_feature(const char *name) {
    for (size_t i = 0; i < tb_n_audio_features; i++)
        if (strcmp(name, tb_audio_features[i]) == 0)
            return 1;
    return 0;
}

/* Columns where the Spotify API writes -1 for "could not be measured". */
static int minus_one_is_missing(const char *column) {
    return strcmp(column, "duration_ms") == 0 || strcmp(column, "key") == 0 || strcmp(column, "tempo") == 0;
}

static int parse_key_letter(const char *s, double *ret) {
    static const char letters[] = "C.D.EF.G.A.B"; /* pitch class of each natural */
    const char *p = strchr(letters, toupper((unsigned char)s[0]));
    if (!s[0] || !p || *p == '.')
        return -1;
    int pc = (int)(p - letters);
    const char *rest = s + 1;
    if (strcmp(rest, "#") == 0 || strcmp(rest, "\xe2\x99\xaf") == 0)
        pc += 1;
    else if (strcmp(rest, "b") == 0 || strcmp(rest, "\xe2\x99\xad") == 0)
        pc += 11;
    else if (rest[0] != '\0')
        return -1;
    *ret = (double)(pc % 12);
    return 0;
}

tb_status tb_feature_parse(const char *column, const char *text, double *ret) {
    while (*text == ' ')
        text++;
    if (text[0] == '\0' || strcmp(text, "?") == 0 || strcasecmp(text, "NA") == 0 ||
        strcasecmp(text, "nan") == 0 || strcasecmp(text, "null") == 0) {
        *ret = NAN;
        return TB_OK;
    }
    if (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0) {
        *ret = (text[0] == 't' || text[0] == 'T') ? 1.0 : 0.0;
        return TB_OK;
    }
    if (strcmp(column, "mode") == 0) {
        if (strcasecmp(text, "major") == 0) {
            *ret = 1.0;
            return TB_OK;
        }
        if (strcasecmp(text, "minor") == 0) {
            *ret = 0.0;
            return TB_OK;
        }
    }
    if (strcmp(column, "key") == 0 && isalpha((unsigned char)text[0]) && parse_key_letter(text, ret) == 0)
        return TB_OK;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ')
        end++;
    if (end == text || *end != '\0' || errno == ERANGE || isinf(v) || isnan(v))
        return tb_error_with_field(TB_PARSE, column, "column %s: '%.40s' is not a number", column, text);
    *ret = tb_feature_normalize(column, v);
    return TB_OK;
}

double tb_feature_normalize(const char *column, double v) {
    return v == -1.0 && minus_one_is_missing(column) ? NAN : v;
}

double tb_year_from_date(const char *text) {
    if (!text || strlen(text) < 4)
        return NAN;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)text[i]))
            return NAN;
    if (text[4] != '\0' && text[4] != '-' && text[4] != '/')
        return NAN;
    return (double)((text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0'));
}

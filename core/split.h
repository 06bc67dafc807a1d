/* Train/test splits and K folds, stratified by label and grouped by id, so one track listed under
 * several genres never sits on both sides. */
#ifndef TB_SPLIT_H
#define TB_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* group[i] = index of keys[i] among the distinct keys (0..*ret_n_groups-1), numbered in order of
 * first appearance. `group` is caller-allocated with n entries. */
tb_status tb_groups_from_keys(const char *const *keys, size_t n, size_t *group, size_t *ret_n_groups);

/* In both splits `group` holds a group id per row; ids may be sparse (a subset of rows keeping
 * the ids of the whole table), their bound sizes the work arrays.
 *
 * Holds out about test_fraction of the groups of each class (a group's class is its first row's
 * label; y may be NULL for an unstratified split). Row indices come back ascending in two new
 * arrays (caller frees). Deterministic for a seed. */
tb_status tb_split_train_test(const int32_t *y, const size_t *group, size_t n, double test_fraction,
                              uint64_t seed, size_t **ret_train, size_t *ret_n_train, size_t **ret_test,
                              size_t *ret_n_test);

/* Rows 0..n-1 parted by a caller's hold-out: those named in `held` (indices below n; repeats
 * count once) come back ascending in *ret_held, the others in *ret_rest (caller frees both). */
tb_status tb_split_named(size_t n, const size_t *held, size_t n_held, size_t **ret_rest, size_t *ret_n_rest,
                         size_t **ret_held, size_t *ret_n_held);

/* fold[i] in 0..k-1 for each row, groups kept whole, each class spread evenly over the folds. */
tb_status tb_split_kfold(const int32_t *y, const size_t *group, size_t n, size_t k, uint64_t seed, size_t *fold);

#endif

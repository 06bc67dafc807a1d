/* The evaluation a model card draws, kept with the published model (its metrics' "evaluation")
 * and in the report: for genre, per-genre precision/recall/F1, the most confused pairs and a
 * reliability table of the top probability; for popularity, predicted against true by bins of
 * the true value and a sample of pairs. From the test rows' predictions. */
#ifndef TB_TRAINER_CARD_H
#define TB_TRAINER_CARD_H

#include <stddef.h>

#include "dataset.h"
#include "trainer.h"

#define TB_CARD_CONFUSED 12   /* most confused (true, predicted) pairs listed */
#define TB_CARD_BINS 10       /* reliability bins of the top probability; popularity bins of 10 */
#define TB_CARD_SAMPLE 300    /* popularity (true, predicted) pairs kept */

struct cJSON;
/* NULL when out of memory. pred: n × k (genre probabilities) or n values (popularity). */
struct cJSON *tb_card_evaluation(const tb_dataset *ds, tb_target target, const size_t *rows, size_t n,
                                 const double *pred, size_t k, char *const *class_names);

#endif

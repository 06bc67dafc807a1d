/* The tabular neural network ("mlp") beyond the model interface: its penultimate layer as a track
 * embedding, and the other head of a multi-task network. */
#ifndef TB_MLP_H
#define TB_MLP_H

#include <stddef.h>

#include "model.h"

/* Width of the last hidden layer; 0 when m is not an mlp. */
size_t tb_mlp_embedding_dim(const tb_model *m);
/* x: the pipeline's output (n_features values); out: the last hidden layer's activations
 * (tb_mlp_embedding_dim values). No allocation; thread-safe. */
void tb_mlp_embed(const tb_model *m, const double *x, double *out);

#endif

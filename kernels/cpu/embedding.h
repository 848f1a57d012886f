// CPU reference: embedding lookup and its (deterministic) backward.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[i, :] = weight[ids[i], :]. ids must lie in [0, rows) (the engine op checks).
void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t rows, int64_t dim);
// Accumulates: for every id that occurs, grad_weight[id, :] += sum of grad_out[i, :] over the
// positions i holding it (summed from zero in increasing i, then added). Rows of ids that do not
// occur are not touched, so a gradient buffer zeroed once per step costs only the rows in use.
void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids, int64_t rows,
                        int64_t dim);

}  // namespace muonrec::kernels::cpu

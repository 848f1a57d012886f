// CPU reference: embedding lookup and its (deterministic) backward.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[i, :] = weight[ids[i], :]. ids must lie in [0, rows) (the engine op checks).
void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t rows, int64_t dim);
// grad_weight = zeros, then grad_weight[ids[i], :] += grad_out[i, :] in increasing i.
void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids, int64_t rows,
                        int64_t dim);

}  // namespace muonrec::kernels::cpu

#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

namespace muonrec::kernels::cpu {

void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t /*rows*/,
                       int64_t dim) {
  for (int64_t i = 0; i < n_ids; ++i)
    std::memcpy(out + i * dim, weight + ids[i] * dim, static_cast<size_t>(dim) * sizeof(float));
}

void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids, int64_t rows,
                        int64_t dim) {
  std::fill(grad_weight, grad_weight + rows * dim, 0.0f);
  for (int64_t i = 0; i < n_ids; ++i) {
    float* row = grad_weight + ids[i] * dim;
    const float* g = grad_out + i * dim;
    for (int64_t c = 0; c < dim; ++c) row[c] += g[c];
  }
}

}  // namespace muonrec::kernels::cpu

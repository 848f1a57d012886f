#include "muonrec/kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace muonrec::kernels::cpu {

void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t /*rows*/,
                       int64_t dim) {
  for (int64_t i = 0; i < n_ids; ++i)
    std::memcpy(out + i * dim, weight + ids[i] * dim, static_cast<size_t>(dim) * sizeof(float));
}

void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids,
                        int64_t /*rows*/, int64_t dim) {
  // Positions grouped by id, increasing within a group: each group is one run of the GPU's sort.
  std::vector<int64_t> order(static_cast<size_t>(n_ids));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [ids](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  std::vector<float> run_sum(static_cast<size_t>(dim));
  for (int64_t start = 0; start < n_ids;) {
    const int64_t id = ids[order[start]];
    std::fill(run_sum.begin(), run_sum.end(), 0.0f);
    int64_t end = start;
    for (; end < n_ids && ids[order[end]] == id; ++end) {
      const float* g = grad_out + order[end] * dim;
      for (int64_t c = 0; c < dim; ++c) run_sum[c] += g[c];
    }
    float* row = grad_weight + id * dim;
    for (int64_t c = 0; c < dim; ++c) row[c] += run_sum[c];
    start = end;
  }
}

}  // namespace muonrec::kernels::cpu

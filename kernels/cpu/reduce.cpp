#include "muonrec/kernels/cpu/reduce.h"

#include <cstddef>
#include <vector>

namespace muonrec::kernels::cpu {

void sum_all(const float* x, float* out, int64_t n) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += x[i];
  out[0] = static_cast<float>(total);
}

void sum_leading(const float* x, float* out, int64_t outer, int64_t inner) {
  std::vector<double> acc(static_cast<size_t>(inner), 0.0);
  for (int64_t i = 0; i < outer; ++i)
    for (int64_t j = 0; j < inner; ++j) acc[j] += x[i * inner + j];
  for (int64_t j = 0; j < inner; ++j) out[j] = static_cast<float>(acc[j]);
}

void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n) {
  const float value = scalar[0] * factor;
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}

}  // namespace muonrec::kernels::cpu

#include "kernels/cpu/elementwise.h"

#include <algorithm>

#include "engine/dtype.h"
#include "engine/rng.h"

namespace muonrec::kernels::cpu {

void add_forward(const float* a, const float* b, float* out, int64_t n, int64_t b_n) {
  // One pass of b per row of a: no per-element modulo, so the inner loop vectorises.
  for (int64_t start = 0; start < n; start += b_n) {
    const int64_t m = std::min(b_n, n - start);
    for (int64_t j = 0; j < m; ++j) out[start + j] = a[start + j] + b[j];
  }
}

void mul_forward(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void scale_forward(const float* x, float factor, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * factor;
}

void scale_rows_forward(const float* x, const float* row_factor, float* out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = x[r * cols + c] * row_factor[r];
}

// One Philox call per group of four elements: its four draws are those of elements 4g..4g+3 (the
// mapping of philox_uniform, as the CUDA kernel does), not ten rounds per element with three draws
// thrown away. The rounds dominate the cost, so large tensors are split over threads.
void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset) {
  constexpr int64_t kParallelElements = 1 << 15;
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t groups = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t group = 0; group < groups; ++group) {
    const Philox4x32 draws = philox4x32(static_cast<uint64_t>(group), offset, seed);
    const int64_t first = group * 4, count = std::min<int64_t>(4, n - first);
    for (int64_t k = 0; k < count; ++k)
      out[first + k] = uint_to_unit_float(draws.v[k]) >= p ? x[first + k] * keep_scale : 0.0f;
  }
}

void cast_f32_to_bf16(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16_bits(x[i]);
}

void cast_bf16_to_f32(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_f32(x[i]);
}

void cast_i32_to_i64(const int32_t* x, int64_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i];
}

void cast_i64_to_i32(const int64_t* x, int32_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(x[i]);
}

}  // namespace muonrec::kernels::cpu

#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/dtype.h"
#include "kernels/cpu/philox_draws.h"

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

// Element i's draw is word i % 4 of Philox counter i / 4 (engine/rng.h's philox_uniform, as the
// CUDA kernel draws it). Draws come in blocks from philox_draws (vectorised), and large tensors are
// split over threads: the rounds dominate the cost.
void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset) {
  constexpr int64_t kBlockElements = 1024, kParallelElements = 1 << 15;
  const float keep_scale = 1.0f / (1.0f - p);
  const uint32_t keep_from = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
  const int64_t blocks = (n + kBlockElements - 1) / kBlockElements;
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t first = block * kBlockElements, count = std::min(kBlockElements, n - first);
    uint32_t draws[kBlockElements];
    philox_draws(static_cast<uint64_t>(first / 4), (count + 3) / 4, offset, seed, draws);
    // Branch-free so that it vectorises (a kept/dropped branch mispredicts at random). The draw's
    // uniform (top 24 bits) / 2^24 is >= p exactly when those bits are >= keep_from; a dropped
    // element's bits are cleared to +0.0f, as the CUDA kernel writes.
    for (int64_t k = 0; k < count; ++k) {
      const uint32_t keep_mask = 0u - static_cast<uint32_t>((draws[k] >> 8) >= keep_from);
      const float kept = x[first + k] * keep_scale;
      uint32_t bits;
      std::memcpy(&bits, &kept, sizeof bits);
      bits &= keep_mask;
      std::memcpy(out + first + k, &bits, sizeof bits);
    }
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

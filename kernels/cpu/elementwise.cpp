#include "muonrec/kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "muonrec/engine/dtype.h"
#include "muonrec/kernels/cpu/parallel_blocks.h"
#include "muonrec/kernels/cpu/philox_draws.h"

namespace muonrec::kernels::cpu {

// Large tensors are split over the threads (kernels/cpu/parallel_blocks.h), like the activations.
// These loops are bound by memory bandwidth: more cores add some where one does not saturate it (on
// the 2-core development machine the change was below the noise; they are ~3% of a training step).
void add_forward(const float* a, const float* b, float* out, int64_t n, int64_t b_n) {
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    // Runs of b between wraps: no per-element modulo, so the inner loop vectorises.
    const int64_t end = first + count;
    for (int64_t i = first, j = first % b_n; i < end; j = 0) {
      const int64_t run = std::min(b_n - j, end - i);
      for (int64_t k = 0; k < run; ++k) out[i + k] = a[i + k] + b[j + k];
      i += run;
    }
  });
}

void mul_forward(const float* a, const float* b, float* out, int64_t n) {
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    for (int64_t i = first; i < first + count; ++i) out[i] = a[i] * b[i];
  });
}

void scale_forward(const float* x, float factor, float* out, int64_t n) {
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    for (int64_t i = first; i < first + count; ++i) out[i] = x[i] * factor;
  });
}

void scale_rows_forward(const float* x, const float* row_factor, float* out, int64_t rows, int64_t cols) {
  for_each_element_block(rows * cols, [&](int64_t first, int64_t count) {
    // The block's part of each row it crosses, with that row's factor.
    const int64_t end = first + count;
    for (int64_t i = first, r = first / cols; i < end; ++r) {
      const int64_t run = std::min((r + 1) * cols, end) - i;
      for (int64_t k = 0; k < run; ++k) out[i + k] = x[i + k] * row_factor[r];
      i += run;
    }
  });
}

// Element i's draw is word i % 4 of Philox counter i / 4 (engine/rng.h's philox_uniform, as the
// CUDA kernel draws it). Draws come in blocks from philox_draws (vectorised), and large tensors are
// split over threads: the rounds dominate the cost.
void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float keep_scale = 1.0f / (1.0f - p);
  const uint32_t keep_from = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    uint32_t draws[kElementBlock];
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
  });
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

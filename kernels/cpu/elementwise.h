// CPU reference: elementwise arithmetic, casts and dropout. Pointers are contiguous host arrays;
// `out` may alias an input.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[i] = a[i] + b[i % b_n]  (b_n divides n: b broadcast over the leading axes)
void add_forward(const float* a, const float* b, float* out, int64_t n, int64_t b_n);
void mul_forward(const float* a, const float* b, float* out, int64_t n);
void scale_forward(const float* x, float factor, float* out, int64_t n);
// out[r, c] = x[r, c] * row_factor[r]
void scale_rows_forward(const float* x, const float* row_factor, float* out, int64_t rows, int64_t cols);
// Inverted dropout with the Philox mask of engine/rng.h; applied to dy it is also the backward.
void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset);

void cast_f32_to_bf16(const float* x, uint16_t* out, int64_t n);
void cast_bf16_to_f32(const uint16_t* x, float* out, int64_t n);
void cast_i32_to_i64(const int32_t* x, int64_t* out, int64_t n);
void cast_i64_to_i32(const int64_t* x, int32_t* out, int64_t n);

}  // namespace muonrec::kernels::cpu

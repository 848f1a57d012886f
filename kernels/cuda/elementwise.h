// CUDA launchers: elementwise arithmetic, casts and dropout. Same contracts as kernels/cpu/elementwise.h,
// on device pointers, queued on `stream`; `out` may alias an input.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// out[i] = a[i] + b[i % b_n]  (b_n divides n: b broadcast over the leading axes)
void add_forward(const float* a, const float* b, float* out, int64_t n, int64_t b_n, cudaStream_t stream);
void mul_forward(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
void scale_forward(const float* x, float factor, float* out, int64_t n, cudaStream_t stream);
// out[r, c] = x[r, c] * row_factor[r]
void scale_rows_forward(const float* x, const float* row_factor, float* out, int64_t rows, int64_t cols,
                        cudaStream_t stream);
// Inverted dropout with the Philox mask of engine/rng.h: bit-identical to the CPU mask.
void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream);

void cast_f32_to_bf16(const float* x, uint16_t* out, int64_t n, cudaStream_t stream);
void cast_bf16_to_f32(const uint16_t* x, float* out, int64_t n, cudaStream_t stream);
void cast_i32_to_i64(const int32_t* x, int64_t* out, int64_t n, cudaStream_t stream);
void cast_i64_to_i32(const int64_t* x, int32_t* out, int64_t n, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda

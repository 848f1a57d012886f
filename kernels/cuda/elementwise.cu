#include "muonrec/kernels/cuda/elementwise.h"

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/rng.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;

__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n, int64_t b_n) {
  int64_t i = global_index();
  if (i < n) out[i] = a[i] + b[i % b_n];
}

__global__ void mul_kernel(const float* a, const float* b, float* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = a[i] * b[i];
}

__global__ void scale_kernel(const float* x, float factor, float* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = x[i] * factor;
}

__global__ void scale_rows_kernel(const float* x, const float* row_factor, float* out, int64_t n, int64_t cols) {
  int64_t i = global_index();
  if (i < n) out[i] = x[i] * row_factor[i / cols];
}

// keep_scale comes from the host so that 1/(1-p) is rounded exactly as on the CPU: with the shared
// Philox draw, the output is bit-identical to the reference.
// One thread per group of four elements: one Philox call yields the four draws of elements
// 4g..4g+3 (the mapping of philox_uniform, so the mask equals the CPU reference's), instead of
// ten rounds per element with three draws thrown away.
__global__ void dropout_kernel(const float* x, float* out, int64_t n, float p, float keep_scale, uint64_t seed,
                               uint64_t offset) {
  const int64_t group = global_index();
  if (group * 4 >= n) return;
  const Philox4x32 draws = philox4x32(static_cast<uint64_t>(group), offset, seed);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const int64_t i = group * 4 + k;
    if (i < n) out[i] = uint_to_unit_float(draws.v[k]) >= p ? x[i] * keep_scale : 0.0f;
  }
}

// Device twin of engine/dtype.h's f32_to_bf16_bits (that one is host-only): round to nearest even,
// NaN kept as the canonical quiet NaN.
__device__ __forceinline__ uint16_t f32_to_bf16_bits_device(float value) {
  uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return 0x7fc0;
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__global__ void f32_to_bf16_kernel(const float* x, uint16_t* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = f32_to_bf16_bits_device(x[i]);
}

__global__ void bf16_to_f32_kernel(const uint16_t* x, float* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = __uint_as_float(static_cast<uint32_t>(x[i]) << 16);
}

__global__ void i32_to_i64_kernel(const int32_t* x, int64_t* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = x[i];
}

__global__ void i64_to_i32_kernel(const int64_t* x, int32_t* out, int64_t n) {
  int64_t i = global_index();
  if (i < n) out[i] = static_cast<int32_t>(x[i]);
}

}  // namespace

void add_forward(const float* a, const float* b, float* out, int64_t n, int64_t b_n, cudaStream_t stream) {
  NVTX_RANGE("add_forward");
  if (n <= 0) return;
  add_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(a, b, out, n, b_n);
  CUDA_LAUNCH_CHECK();
}

void mul_forward(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("mul_forward");
  if (n <= 0) return;
  mul_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(a, b, out, n);
  CUDA_LAUNCH_CHECK();
}

void scale_forward(const float* x, float factor, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("scale_forward");
  if (n <= 0) return;
  scale_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, factor, out, n);
  CUDA_LAUNCH_CHECK();
}

void scale_rows_forward(const float* x, const float* row_factor, float* out, int64_t rows, int64_t cols,
                        cudaStream_t stream) {
  NVTX_RANGE("scale_rows_forward");
  const int64_t n = rows * cols;
  if (n <= 0) return;
  scale_rows_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, row_factor, out, n, cols);
  CUDA_LAUNCH_CHECK();
}

void dropout_forward(const float* x, float* out, int64_t n, float p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream) {
  NVTX_RANGE("dropout_forward");
  if (n <= 0) return;
  const float keep_scale = 1.0f / (1.0f - p);
  dropout_kernel<<<ceil_div(static_cast<size_t>((n + 3) / 4), kBlock), kBlock, 0, stream>>>(x, out, n, p, keep_scale,
                                                                                           seed, offset);
  CUDA_LAUNCH_CHECK();
}

void cast_f32_to_bf16(const float* x, uint16_t* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("cast_f32_to_bf16");
  if (n <= 0) return;
  f32_to_bf16_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void cast_bf16_to_f32(const uint16_t* x, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("cast_bf16_to_f32");
  if (n <= 0) return;
  bf16_to_f32_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void cast_i32_to_i64(const int32_t* x, int64_t* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("cast_i32_to_i64");
  if (n <= 0) return;
  i32_to_i64_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void cast_i64_to_i32(const int64_t* x, int32_t* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("cast_i64_to_i32");
  if (n <= 0) return;
  i64_to_i32_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

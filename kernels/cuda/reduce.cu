#include "muonrec/kernels/cuda/reduce.h"

#include <algorithm>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/column_partials.cuh"

namespace muonrec::kernels::cuda {
namespace {

// sum_all is one block: the sums it serves (a loss, a mean) are small, and a single block reduces
// in a fixed order with no second pass or atomics.
constexpr unsigned kSumAllBlock = 1024;
constexpr unsigned kBlock = 256;

// Accumulation is in double, as in the reference, so the GPU result differs from it only by the
// order of double additions (far below float resolution).
__global__ void sum_all_kernel(const float* x, float* out, int64_t n) {
  __shared__ double partial[kSumAllBlock];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kSumAllBlock) acc += x[i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned stride = kSumAllBlock / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = static_cast<float>(partial[0]);
}

__global__ void column_partial_kernel(const float* x, double* partial, int64_t outer, int64_t inner,
                                      int64_t rows_per_chunk) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= inner) return;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < outer ? begin + rows_per_chunk : outer;
  double acc = 0.0;
  for (int64_t i = begin; i < end; ++i) acc += x[i * inner + j];
  partial[chunk * inner + j] = acc;
}

__global__ void broadcast_scalar_kernel(const float* scalar, float factor, float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = scalar[0] * factor;
}

}  // namespace

void sum_all(const float* x, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("sum_all");
  // Launched even for n == 0: the empty sum still writes out[0] = 0.
  sum_all_kernel<<<1, kSumAllBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void sum_leading(const float* x, float* out, int64_t outer, int64_t inner, cudaStream_t stream) {
  NVTX_RANGE("sum_leading");
  if (inner <= 0) return;
  if (outer <= 0) {  // an empty sum
    CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(inner) * sizeof(float), stream));
    return;
  }
  const ColumnChunks split = column_chunks(outer);
  double* partial = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial),
                             static_cast<size_t>(split.chunks * inner) * sizeof(double), stream));
  const dim3 grid(ceil_div(static_cast<size_t>(inner), kColumnBlock), static_cast<unsigned>(split.chunks));
  column_partial_kernel<<<grid, kColumnBlock, 0, stream>>>(x, partial, outer, inner, split.rows_per_chunk);
  CUDA_LAUNCH_CHECK();
  finish_column_partials(partial, out, split.chunks, inner, stream);
  CUDA_CHECK(cudaFreeAsync(partial, stream));
}

void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("broadcast_scalar");
  if (n <= 0) return;
  broadcast_scalar_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(scalar, factor, out, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

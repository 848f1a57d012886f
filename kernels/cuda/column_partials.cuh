// Deterministic column sums over many rows in two fixed-order stages, shared by sum_leading
// (reduce.cu) and the layer-norm parameter gradients (norm.cu). Atomics would make the sums depend
// on thread timing; instead each chunk of rows gives one double partial per column (stage 1, in the
// caller's kernel), and stage 2 adds the partials of a column in a fixed order.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "muonrec/engine/cuda_check.h"

namespace muonrec::kernels::cuda {
// Internal linkage: each .cu file that includes this gets its own copy of the kernel.
namespace {

// Stage 1 kernels use blocks of this many columns.
constexpr unsigned kColumnBlock = 128;

struct ColumnChunks {
  int64_t chunks;
  int64_t rows_per_chunk;
};

// The chunking depends only on the row count, so the summation order (and the result) is fixed.
inline ColumnChunks column_chunks(int64_t rows) {
  constexpr int64_t kMinRowsPerChunk = 32, kMaxChunks = 1024;
  const int64_t chunks = std::min(kMaxChunks, (rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk);
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  return {(rows + rows_per_chunk - 1) / rows_per_chunk, rows_per_chunk};
}

// A block covers 32 columns with 32 lanes of chunks: lane y adds chunks y, y + 32, ... in order,
// then the 32 lane sums are folded in a fixed tree. (One thread per column walking up to 1024
// chunks serially was a latency chain of ~90 us per call.)
constexpr unsigned kFinishColumns = 32, kFinishLanes = 32;

__global__ void finish_column_partials_kernel(const double* partial, float* out, int64_t chunks, int64_t cols) {
  __shared__ double sums[kFinishLanes][kFinishColumns + 1];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kFinishColumns + threadIdx.x;
  double acc = 0.0;
  if (c < cols)
    for (int64_t chunk = threadIdx.y; chunk < chunks; chunk += kFinishLanes) acc += partial[chunk * cols + c];
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  for (unsigned stride = kFinishLanes / 2; stride > 0; stride >>= 1) {
    if (threadIdx.y < stride) sums[threadIdx.y][threadIdx.x] += sums[threadIdx.y + stride][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols) out[c] = static_cast<float>(sums[0][threadIdx.x]);
}

// Stage 2: out[c] = sum over chunks of partial[chunk, c] (partial is [chunks, cols]).
inline void finish_column_partials(const double* partial, float* out, int64_t chunks, int64_t cols,
                                   cudaStream_t stream) {
  finish_column_partials_kernel<<<ceil_div(static_cast<size_t>(cols), kFinishColumns),
                                  dim3(kFinishColumns, kFinishLanes), 0, stream>>>(partial, out, chunks, cols);
  CUDA_LAUNCH_CHECK();
}

}  // namespace
}  // namespace muonrec::kernels::cuda

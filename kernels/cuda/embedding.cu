#include "muonrec/kernels/cuda/embedding.h"

#include <cub/device/device_radix_sort.cuh>

#include <cstdint>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
constexpr unsigned kWarpsPerBlock = kBlock / 32;
// Runs of equal ids up to this length are summed by one warp; longer ones (the padding id of
// left-padded windows: thousands per batch; a very popular item) by a whole block, whose warps
// take contiguous pieces, so no warp walks a serial chain of thousands of rows.
constexpr int64_t kLongRun = 256;
constexpr unsigned kLongBlock = 1024;
constexpr unsigned kLongWarps = kLongBlock / 32;
constexpr unsigned kLongGrid = 132;

__global__ void embedding_forward_kernel(const float* weight, const int64_t* ids, float* out, int64_t n_ids,
                                         int64_t dim) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_ids * dim) return;
  const int64_t row = i / dim, c = i - row * dim;
  out[i] = weight[ids[row] * dim + c];
}

// 32-bit sort keys (ids < 2^32, checked) and positions halve the sort's traffic.
__global__ void sort_input_kernel(const int64_t* ids, uint32_t* keys, int32_t* positions, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  keys[i] = static_cast<uint32_t>(ids[i]);
  positions[i] = static_cast<int32_t>(i);
}

// Adds grad_out rows positions[first..last) (sorted order) for one column per lane, from zero.
__device__ float sum_rows(const float* grad_out, const int32_t* positions, int64_t first, int64_t last, int64_t dim,
                          int64_t column) {
  float acc = 0.0f;
#pragma unroll 4
  for (int64_t q = first; q < last; ++q) acc += grad_out[static_cast<int64_t>(positions[q]) * dim + column];
  return acc;
}

// One warp per sorted position; the warp at the first position of a run finds the run's end (32
// keys per step, by ballot) and, for a short run, sums it in position order (the stable sort keeps
// equal ids in increasing position) and adds the sum to the row. A long run is handed to the
// long-run kernel through a list (its order depends on timing; each run's result does not).
__global__ void embedding_short_runs_kernel(const float* grad_out, const uint32_t* sorted_ids,
                                            const int32_t* sorted_positions, float* grad_weight, int64_t n_ids,
                                            int64_t dim, int32_t* long_runs, int32_t* long_count) {
  const int64_t start = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  if (start >= n_ids) return;
  const uint32_t id = sorted_ids[start];
  if (start > 0 && sorted_ids[start - 1] == id) return;
  int64_t end = start + 1;
  for (;;) {
    const int64_t p = end + lane;
    const unsigned other = __ballot_sync(0xffffffffu, p >= n_ids || sorted_ids[p] != id);
    if (other != 0) {
      end += __ffs(other) - 1;
      break;
    }
    end += 32;
    if (end - start > kLongRun) break;
  }
  if (end - start > kLongRun) {
    if (lane == 0) long_runs[atomicAdd(long_count, 1)] = static_cast<int32_t>(start);
    return;
  }
  float* row = grad_weight + static_cast<int64_t>(id) * dim;
  for (int64_t c = lane; c < dim; c += 32) row[c] += sum_rows(grad_out, sorted_positions, start, end, dim, c);
}

// One block per long run (grid-stride over the list): the block finds the run's end, its warps sum
// contiguous pieces, and the piece sums are added in warp order: a fixed order, so the result is the
// same from run to run.
__global__ void embedding_long_runs_kernel(const float* grad_out, const uint32_t* sorted_ids,
                                           const int32_t* sorted_positions, float* grad_weight, int64_t n_ids,
                                           int64_t dim, const int32_t* long_runs, const int32_t* long_count) {
  __shared__ unsigned long long run_end;
  __shared__ float piece_sum[kLongWarps][32];
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int32_t count = *long_count;
  for (int32_t r = blockIdx.x; r < count; r += gridDim.x) {
    const int64_t start = long_runs[r];
    const uint32_t id = sorted_ids[start];
    if (threadIdx.x == 0) run_end = static_cast<unsigned long long>(n_ids);
    __syncthreads();
    for (int64_t base = start + 1;; base += kLongBlock) {
      const int64_t p = base + threadIdx.x;
      const bool other = p >= n_ids || sorted_ids[p] != id;
      if (other) atomicMin(&run_end, static_cast<unsigned long long>(p < n_ids ? p : n_ids));
      if (__syncthreads_or(other)) break;
    }
    const int64_t end = static_cast<int64_t>(run_end);
    const int64_t piece = (end - start + kLongWarps - 1) / kLongWarps;
    const int64_t first = start + warp * piece < end ? start + warp * piece : end;
    const int64_t last = first + piece < end ? first + piece : end;
    float* row = grad_weight + static_cast<int64_t>(id) * dim;
    for (int64_t c0 = 0; c0 < dim; c0 += 32) {
      const int64_t c = c0 + lane;
      piece_sum[warp][lane] = c < dim ? sum_rows(grad_out, sorted_positions, first, last, dim, c) : 0.0f;
      __syncthreads();
      if (warp == 0 && c < dim) {
        float total = 0.0f;
        for (unsigned w = 0; w < kLongWarps; ++w) total += piece_sum[w][lane];
        row[c] += total;
      }
      __syncthreads();
    }
  }
}

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t /*rows*/,
                       int64_t dim, cudaStream_t stream) {
  NVTX_RANGE("embedding_forward");
  const int64_t n = n_ids * dim;
  if (n <= 0) return;
  embedding_forward_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(weight, ids, out, n_ids,
                                                                                           dim);
  CUDA_LAUNCH_CHECK();
}

void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids, int64_t rows,
                        int64_t dim, cudaStream_t stream) {
  NVTX_RANGE("embedding_backward");
  if (rows <= 0 || dim <= 0 || n_ids <= 0) return;
  MUONREC_CHECK(n_ids <= INT32_MAX, "embedding_backward: {} ids exceed 32-bit positions", n_ids);
  MUONREC_CHECK(rows <= (int64_t{1} << 32), "embedding_backward: {} rows exceed 32-bit sort keys", rows);
  // Only the low bits that can differ need radix passes.
  int end_bit = 1;
  while (end_bit < 32 && (static_cast<uint64_t>(rows - 1) >> end_bit) != 0) ++end_bit;

  size_t sort_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const uint32_t*>(nullptr),
                                             static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), static_cast<int>(n_ids), 0, end_bit,
                                             stream));
  // One scratch block: keys in/out, positions in/out, the long-run list and its count, sort temp.
  const size_t index_bytes = align_up(static_cast<size_t>(n_ids) * sizeof(int32_t));
  const size_t list_bytes = align_up(static_cast<size_t>(n_ids / kLongRun + 1) * sizeof(int32_t));
  char* scratch = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&scratch), 4 * index_bytes + list_bytes + 256 + align_up(sort_bytes),
                             stream));
  uint32_t* keys_in = reinterpret_cast<uint32_t*>(scratch);
  uint32_t* keys_out = reinterpret_cast<uint32_t*>(scratch + index_bytes);
  int32_t* positions_in = reinterpret_cast<int32_t*>(scratch + 2 * index_bytes);
  int32_t* positions_out = reinterpret_cast<int32_t*>(scratch + 3 * index_bytes);
  int32_t* long_runs = reinterpret_cast<int32_t*>(scratch + 4 * index_bytes);
  int32_t* long_count = reinterpret_cast<int32_t*>(scratch + 4 * index_bytes + list_bytes);
  void* sort_temp = scratch + 4 * index_bytes + list_bytes + 256;

  CUDA_CHECK(cudaMemsetAsync(long_count, 0, sizeof(int32_t), stream));
  sort_input_kernel<<<ceil_div(static_cast<size_t>(n_ids), kBlock), kBlock, 0, stream>>>(ids, keys_in, positions_in,
                                                                                         n_ids);
  CUDA_LAUNCH_CHECK();
  // LSD radix sort is stable: equal ids keep increasing positions, which fixes the summation order.
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_temp, sort_bytes, keys_in, keys_out, positions_in, positions_out,
                                             static_cast<int>(n_ids), 0, end_bit, stream));
  embedding_short_runs_kernel<<<ceil_div(static_cast<size_t>(n_ids), kWarpsPerBlock), kBlock, 0, stream>>>(
      grad_out, keys_out, positions_out, grad_weight, n_ids, dim, long_runs, long_count);
  CUDA_LAUNCH_CHECK();
  embedding_long_runs_kernel<<<kLongGrid, kLongBlock, 0, stream>>>(grad_out, keys_out, positions_out, grad_weight,
                                                                   n_ids, dim, long_runs, long_count);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaFreeAsync(scratch, stream));
}

}  // namespace muonrec::kernels::cuda

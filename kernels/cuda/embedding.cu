#include "kernels/cuda/embedding.h"

#include <cub/device/device_radix_sort.cuh>

#include <cstdint>

#include "engine/cuda_check.h"
#include "engine/error.h"
#include "engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
// Threads of one block walk the embedding width of one run; widths are 32..512.
constexpr unsigned kRunBlock = 128;

__global__ void embedding_forward_kernel(const float* weight, const int64_t* ids, float* out, int64_t n_ids,
                                         int64_t dim) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_ids * dim) return;
  const int64_t row = i / dim, c = i - row * dim;
  out[i] = weight[ids[row] * dim + c];
}

__global__ void iota_kernel(int64_t* positions, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) positions[i] = i;
}

// One block per sorted position; only the first position of a run of equal ids does work. The run
// is summed in sorted order, which the stable sort makes increasing original position, starting from
// 0.0f: the same additions in the same order as the CPU reference.
__global__ void embedding_run_sum_kernel(const float* grad_out, const uint64_t* sorted_ids,
                                         const int64_t* sorted_positions, float* grad_weight, int64_t n_ids,
                                         int64_t dim) {
  const int64_t start = blockIdx.x;
  const uint64_t id = sorted_ids[start];
  if (start > 0 && sorted_ids[start - 1] == id) return;
  int64_t end = start + 1;
  while (end < n_ids && sorted_ids[end] == id) ++end;
  float* row = grad_weight + static_cast<int64_t>(id) * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t q = start; q < end; ++q) acc += grad_out[sorted_positions[q] * dim + c];
    row[c] = acc;
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
  if (rows <= 0 || dim <= 0) return;
  // Rows no id touches stay zero.
  CUDA_CHECK(cudaMemsetAsync(grad_weight, 0, static_cast<size_t>(rows * dim) * sizeof(float), stream));
  if (n_ids <= 0) return;
  MUONREC_CHECK(n_ids <= INT32_MAX, "embedding_backward: {} ids exceed one launch's grid", n_ids);

  // ids lie in [0, rows), so as unsigned keys they sort the same, and only the low bits that can
  // differ need radix passes.
  const uint64_t* keys_in = reinterpret_cast<const uint64_t*>(ids);
  int end_bit = 1;
  while (end_bit < 64 && (static_cast<uint64_t>(rows - 1) >> end_bit) != 0) ++end_bit;

  size_t sort_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys_in, static_cast<uint64_t*>(nullptr),
                                             static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr),
                                             n_ids, 0, end_bit, stream));
  // One scratch block: sorted keys, positions in, positions out, then the sort's own temp storage.
  const size_t index_bytes = align_up(static_cast<size_t>(n_ids) * sizeof(int64_t));
  char* scratch = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&scratch), 3 * index_bytes + align_up(sort_bytes), stream));
  uint64_t* keys_out = reinterpret_cast<uint64_t*>(scratch);
  int64_t* positions_in = reinterpret_cast<int64_t*>(scratch + index_bytes);
  int64_t* positions_out = reinterpret_cast<int64_t*>(scratch + 2 * index_bytes);
  void* sort_temp = scratch + 3 * index_bytes;

  iota_kernel<<<ceil_div(static_cast<size_t>(n_ids), kBlock), kBlock, 0, stream>>>(positions_in, n_ids);
  CUDA_LAUNCH_CHECK();
  // LSD radix sort is stable: equal ids keep increasing positions, which fixes the summation order.
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_temp, sort_bytes, keys_in, keys_out, positions_in, positions_out,
                                             n_ids, 0, end_bit, stream));
  embedding_run_sum_kernel<<<static_cast<unsigned>(n_ids), kRunBlock, 0, stream>>>(grad_out, keys_out,
                                                                                    positions_out, grad_weight, n_ids,
                                                                                    dim);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaFreeAsync(scratch, stream));
}

}  // namespace muonrec::kernels::cuda

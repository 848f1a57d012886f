#include "muonrec/kernels/cuda/row_dot.h"

#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

// Forward: one warp per dot product. Widths are model widths (32..1024), so a warp covers a row
// in a few strided steps and reduces with shuffles alone, no shared memory or block barriers.
constexpr unsigned kWarpsPerBlock = 8;
constexpr unsigned kDotBlock = 32 * kWarpsPerBlock;
// Backward: one thread per output element; consecutive threads take consecutive columns, so the
// reads of c (and the writes of dh, dc) coalesce.
constexpr unsigned kElementBlock = 256;


__global__ void row_dot_forward_kernel(const float* h, const float* c, float* out, int64_t outputs, int64_t per_row,
                                       int64_t dim) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (index >= outputs) return;  // whole warps leave together, so the shuffles stay converged
  const unsigned lane = threadIdx.x % 32;
  const float* hr = h + (index / per_row) * dim;
  const float* cm = c + index * dim;
  float dot = 0.0f;
  for (int64_t k = lane; k < dim; k += 32) dot += hr[k] * cm[k];
  dot = warp_sum(dot);
  if (lane == 0) out[index] = dot;
}

// dh[r, k] = sum_m dout[r, m] c[r, m, k], in increasing m as the reference.
__global__ void row_dot_backward_h_kernel(const float* c, const float* dout, float* dh, int64_t n, int64_t per_row,
                                          int64_t dim) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= n) return;
  const int64_t r = index / dim, k = index % dim;
  const float* gr = dout + r * per_row;
  const float* cr = c + r * per_row * dim + k;
  float acc = 0.0f;
  for (int64_t m = 0; m < per_row; ++m) acc += gr[m] * cr[m * dim];
  dh[index] = acc;
}

// dc[r, m, k] = dout[r, m] h[r, k].
__global__ void row_dot_backward_c_kernel(const float* h, const float* dout, float* dc, int64_t n, int64_t per_row,
                                          int64_t dim) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= n) return;
  const int64_t rm = index / dim, k = index % dim;
  dc[index] = dout[rm] * h[(rm / per_row) * dim + k];
}

}  // namespace

void row_dot_forward(const float* h, const float* c, float* out, int64_t rows, int64_t per_row, int64_t dim,
                     cudaStream_t stream) {
  NVTX_RANGE("row_dot_forward");
  const int64_t outputs = rows * per_row;
  if (outputs <= 0) return;
  if (dim <= 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(outputs) * sizeof(float), stream));
    return;
  }
  const unsigned blocks = ceil_div(static_cast<size_t>(outputs), kWarpsPerBlock);
  row_dot_forward_kernel<<<blocks, kDotBlock, 0, stream>>>(h, c, out, outputs, per_row, dim);
  CUDA_LAUNCH_CHECK();
}

void row_dot_backward(const float* h, const float* c, const float* dout, float* dh, float* dc, int64_t rows,
                      int64_t per_row, int64_t dim, cudaStream_t stream) {
  NVTX_RANGE("row_dot_backward");
  if (rows <= 0 || dim <= 0) return;
  if (dh) {
    const int64_t n = rows * dim;
    row_dot_backward_h_kernel<<<ceil_div(static_cast<size_t>(n), kElementBlock), kElementBlock, 0, stream>>>(
        c, dout, dh, n, per_row, dim);
    CUDA_LAUNCH_CHECK();
  }
  if (dc && per_row > 0) {
    const int64_t n = rows * per_row * dim;
    row_dot_backward_c_kernel<<<ceil_div(static_cast<size_t>(n), kElementBlock), kElementBlock, 0, stream>>>(
        h, dout, dc, n, per_row, dim);
    CUDA_LAUNCH_CHECK();
  }
}

}  // namespace muonrec::kernels::cuda

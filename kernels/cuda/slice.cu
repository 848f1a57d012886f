#include "muonrec/kernels/cuda/slice.h"

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;

// One thread per output element: consecutive threads touch consecutive columns of a row, so both
// the reads and the writes coalesce.
__global__ void split_last_forward_kernel(const float* x, float* out, int64_t n, int64_t cols, int64_t start,
                                          int64_t width) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= n) return;
  const int64_t r = index / width, c = index % width;
  out[index] = x[r * cols + start + c];
}

// One thread per element of dx, so the zeros outside the block need no separate fill.
__global__ void split_last_backward_kernel(const float* dout, float* dx, int64_t n, int64_t cols, int64_t start,
                                           int64_t width) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= n) return;
  const int64_t r = index / cols, c = index % cols - start;
  dx[index] = c >= 0 && c < width ? dout[r * width + c] : 0.0f;
}

}  // namespace

void split_last_forward(const float* x, float* out, int64_t rows, int64_t cols, int64_t start, int64_t width,
                        cudaStream_t stream) {
  NVTX_RANGE("split_last_forward");
  const int64_t n = rows * width;
  if (n <= 0) return;
  split_last_forward_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, out, n, cols, start,
                                                                                            width);
  CUDA_LAUNCH_CHECK();
}

void split_last_backward(const float* dout, float* dx, int64_t rows, int64_t cols, int64_t start, int64_t width,
                         cudaStream_t stream) {
  NVTX_RANGE("split_last_backward");
  const int64_t n = rows * cols;
  if (n <= 0) return;
  split_last_backward_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(dout, dx, n, cols,
                                                                                             start, width);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

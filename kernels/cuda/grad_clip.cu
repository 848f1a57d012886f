#include "muonrec/engine/allocator.h"
#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/grad_clip.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 512;
// A fixed grid: every element always lands in the same partial, so the norm is reproducible.
constexpr unsigned kPartials = 264;


__global__ void sum_squares_partials_kernel(const float* grad, int64_t n, double* partials) {
  double acc = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    acc += static_cast<double>(grad[i]) * grad[i];
  __shared__ double shared[kBlock / 32];
  const double total = block_reduce(acc, SumOp{}, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void finish_norm_kernel(const double* partials, float* norm) {
  __shared__ double shared[kBlock / 32];
  const double total = block_reduce(threadIdx.x < kPartials ? partials[threadIdx.x] : 0.0, SumOp{}, shared);
  if (threadIdx.x == 0) norm[0] = static_cast<float>(sqrt(total));
}

__global__ void scale_kernel(float* grad, int64_t n, float max_norm, const float* norm) {
  const float coefficient = max_norm / (norm[0] + 1e-6f);
  if (coefficient >= 1.0f) return;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    grad[i] *= coefficient;
}

}  // namespace

void clip_grad_norm(float* grad, int64_t n, float max_norm, float* norm, cudaStream_t stream) {
  NVTX_RANGE("clip_grad_norm");
  static_assert(kPartials <= kBlock, "the final reduction runs in one block");
  Storage partials(kPartials * sizeof(double), Device::CUDA);
  sum_squares_partials_kernel<<<kPartials, kBlock, 0, stream>>>(grad, n, static_cast<double*>(partials.data()));
  CUDA_LAUNCH_CHECK();
  finish_norm_kernel<<<1, kBlock, 0, stream>>>(static_cast<const double*>(partials.data()), norm);
  CUDA_LAUNCH_CHECK();
  scale_kernel<<<kPartials, kBlock, 0, stream>>>(grad, n, max_norm, norm);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

#include <cuda_bf16.h>

#include "engine/cuda_check.h"
#include "engine/nvtx.h"
#include "kernels/cuda/muon.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
// One block reduces the whole tensor in a fixed order: the norm is bitwise reproducible.
constexpr unsigned kReduceBlock = 1024;

__global__ void muon_momentum_kernel(const float* grad, float* buf, float* update, int64_t n, float momentum,
                                     bool nesterov) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  float b = buf[i] + (1.0f - momentum) * (grad[i] - buf[i]);
  buf[i] = b;
  update[i] = nesterov ? b - (b - grad[i]) * (1.0f - momentum) : b;
}

__global__ void sum_squares_kernel(const float* x, float* out, int64_t n) {
  __shared__ double partial[kReduceBlock];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += static_cast<double>(x[i]) * x[i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = static_cast<float>(partial[0]);
}

__global__ void scale_by_inverse_norm_kernel(float* x, const float* sum_sq, float norm_factor, float eps,
                                             bool bf16_norm, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  float norm = sqrtf(sum_sq[0]);
  if (bf16_norm) norm = __bfloat162float(__float2bfloat16_rn(norm));
  x[i] *= 1.0f / fmaxf(norm * norm_factor, eps);
}

__global__ void round_to_bf16_kernel(float* x, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  x[i] = __bfloat162float(__float2bfloat16_rn(x[i]));  // round to nearest even, as the host
}

__global__ void decay_and_add_kernel(float* param, const float* update, int64_t n, float decay, float alpha) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  param[i] = param[i] * decay + alpha * update[i];
}

}  // namespace

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov,
                   cudaStream_t stream) {
  NVTX_RANGE("muon_momentum");
  if (n == 0) return;
  muon_momentum_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(grad, buf, update, n, momentum, nesterov);
  CUDA_LAUNCH_CHECK();
}

void sum_squares(const float* x, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("sum_squares");
  sum_squares_kernel<<<1, kReduceBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n,
                           cudaStream_t stream) {
  NVTX_RANGE("scale_by_inverse_norm");
  if (n == 0) return;
  scale_by_inverse_norm_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(x, sum_sq, norm_factor, eps, bf16_norm, n);
  CUDA_LAUNCH_CHECK();
}

void round_to_bf16(float* x, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("round_to_bf16");
  if (n == 0) return;
  round_to_bf16_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(x, n);
  CUDA_LAUNCH_CHECK();
}

void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha, cudaStream_t stream) {
  NVTX_RANGE("decay_and_add");
  if (n == 0) return;
  decay_and_add_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(param, update, n, decay, alpha);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

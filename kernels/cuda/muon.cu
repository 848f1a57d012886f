#include <cuda_bf16.h>

#include "engine/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
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
  __shared__ double shared[kReduceBlock / 32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += static_cast<double>(x[i]) * x[i];
  const double total = block_reduce(acc, SumOp{}, shared);
  if (threadIdx.x == 0) out[0] = static_cast<float>(total);
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

// ---- fused small-matrix step ----
namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kFusedBlock = 1024;

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }


// X is [side, length] with row stride ldx: the matrix itself when rows <= cols, its transpose when
// tall. Rows are padded by 2 elements so that threads reading consecutive rows of the same column
// hit different shared-memory banks.
__global__ void __launch_bounds__(kFusedBlock) muon_fused_small_kernel(const MuonMatrix* matrices,
                                                                       const MuonHyper* hyper_ptr) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  __shared__ float reduce[kFusedBlock / 32];
  const MuonMatrix mat = matrices[blockIdx.x];
  const MuonHyper& h = *hyper_ptr;
  const bool tall = mat.rows > mat.cols;
  const int side = tall ? mat.cols : mat.rows, length = tall ? mat.rows : mat.cols;
  const int ldx = length + 2, ldg = side + 2;
  __nv_bfloat16* X = reinterpret_cast<__nv_bfloat16*>(shared_raw);
  __nv_bfloat16* A = X + side * ldx;
  __nv_bfloat16* B = A + side * ldg;
  const int n = mat.rows * mat.cols;

  // Momentum (torch's lerp forms), the update rounded to bf16 into X, and its squared norm.
  float sum_sq = 0.0f;
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    const float g = mat.grad[e];
    const float b = mat.momentum_buffer[e] + (1.0f - h.momentum) * (g - mat.momentum_buffer[e]);
    mat.momentum_buffer[e] = b;
    const float u = round_bf16(h.nesterov ? b - (b - g) * (1.0f - h.momentum) : b);
    const int r = e / mat.cols, c = e % mat.cols;
    X[tall ? c * ldx + r : r * ldx + c] = __float2bfloat16_rn(u);
    sum_sq += u * u;
  }
  // torch's norm() of a bf16 tensor is itself bf16.
  const float norm = round_bf16(sqrtf(block_reduce(sum_sq, SumOp{}, reduce)));
  const float inv = 1.0f / fmaxf(norm * h.norm_factor, h.eps);
  for (int e = threadIdx.x; e < side * length; e += blockDim.x) {
    const int i = e / length, k = e % length;
    X[i * ldx + k] = __float2bfloat16_rn(__bfloat162float(X[i * ldx + k]) * inv);
  }
  __syncthreads();

  for (int step = 0; step < h.ns_steps; ++step) {
    const float a = h.coefficients[step][0], b = h.coefficients[step][1], c = h.coefficients[step][2];
    // A = X X^T
    for (int e = threadIdx.x; e < side * side; e += blockDim.x) {
      const int i = e / side, j = e % side;
      float acc = 0.0f;
      for (int k = 0; k < length; ++k) acc += __bfloat162float(X[i * ldx + k]) * __bfloat162float(X[j * ldx + k]);
      A[i * ldg + j] = __float2bfloat16_rn(acc);
    }
    __syncthreads();
    // B = b A + c A A
    for (int e = threadIdx.x; e < side * side; e += blockDim.x) {
      const int i = e / side, j = e % side;
      float acc = 0.0f;
      for (int k = 0; k < side; ++k) acc += __bfloat162float(A[i * ldg + k]) * __bfloat162float(A[k * ldg + j]);
      B[i * ldg + j] = __float2bfloat16_rn(b * __bfloat162float(A[i * ldg + j]) + c * acc);
    }
    __syncthreads();
    // X' = a X + B X, through global scratch (X is still being read).
    for (int e = threadIdx.x; e < side * length; e += blockDim.x) {
      const int i = e / length, k = e % length;
      float acc = 0.0f;
      for (int j = 0; j < side; ++j) acc += __bfloat162float(B[i * ldg + j]) * __bfloat162float(X[j * ldx + k]);
      mat.scratch[e] = round_bf16(a * __bfloat162float(X[i * ldx + k]) + acc);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < side * length; e += blockDim.x)
      X[(e / length) * ldx + e % length] = __float2bfloat16_rn(mat.scratch[e]);
    __syncthreads();
  }

  // p = p (1 - lr wd) - adjusted_lr X, X back in the parameter's orientation.
  const float decay = 1.0f - h.lr * h.weight_decay;
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    const int r = e / mat.cols, c = e % mat.cols;
    const float x = __bfloat162float(X[tall ? c * ldx + r : r * ldx + c]);
    mat.param[e] = mat.param[e] * decay - mat.adjusted_lr * x;
  }
}

}  // namespace

int64_t muon_fused_max_shared_bytes() {
  int device = 0, bytes = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // The kernel also holds its static reduction buffer.
  return static_cast<int64_t>(bytes) - static_cast<int64_t>(kFusedBlock / 32 * sizeof(float));
}

void muon_fused_small(const MuonMatrix* matrices, int32_t count, const MuonHyper* hyper, int64_t shared_bytes,
                      cudaStream_t stream) {
  NVTX_RANGE("muon_fused_small");
  if (count == 0) return;
  MUONREC_CHECK(shared_bytes <= muon_fused_max_shared_bytes(), "muon_fused_small: {} bytes of shared memory needed",
                shared_bytes);
  CUDA_CHECK(cudaFuncSetAttribute(muon_fused_small_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(shared_bytes)));
  muon_fused_small_kernel<<<static_cast<unsigned>(count), kFusedBlock, shared_bytes, stream>>>(matrices, hyper);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

#include <cuda_bf16.h>

#include "engine/allocator.h"
#include "engine/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "engine/nvtx.h"
#include "kernels/cuda/muon.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
constexpr unsigned kNormBlock = 1024;

// blockIdx.y selects the matrix. Momentum (torch's lerp forms); the update, rounded to bf16, lands
// in the stacked iterate in the parameter's own orientation.
__global__ void momentum_to_stack_kernel(const MuonMatrix* matrices, const MuonHyper* hyper, __nv_bfloat16* stack,
                                         int64_t n) {
  const MuonMatrix mat = matrices[blockIdx.y];
  const float mu = hyper->momentum;
  __nv_bfloat16* x = stack + blockIdx.y * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = mat.grad[e];
    const float b = mat.momentum_buffer[e] + (1.0f - mu) * (g - mat.momentum_buffer[e]);
    mat.momentum_buffer[e] = b;
    x[e] = __float2bfloat16_rn(hyper->nesterov ? b - (b - g) * (1.0f - mu) : b);
  }
}

// One block per matrix: its Frobenius norm (fixed-order tree, bf16-rounded as torch's norm() of a
// bf16 tensor), then x /= max(norm * factor, eps), rounded back to bf16.
__global__ void normalize_stack_kernel(const MuonHyper* hyper, __nv_bfloat16* stack, int64_t n) {
  __shared__ float shared[kNormBlock / 32];
  __nv_bfloat16* x = stack + blockIdx.x * n;
  float acc = 0.0f;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    const float v = __bfloat162float(x[e]);
    acc += v * v;
  }
  const float norm = __bfloat162float(__float2bfloat16_rn(sqrtf(block_reduce(acc, SumOp{}, shared))));
  const float inv = 1.0f / fmaxf(norm * hyper->norm_factor, hyper->eps);
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) x[e] = __float2bfloat16_rn(__bfloat162float(x[e]) * inv);
}

__global__ void apply_update_kernel(const MuonMatrix* matrices, const MuonHyper* hyper, const __nv_bfloat16* stack,
                                    int64_t n) {
  const MuonMatrix mat = matrices[blockIdx.y];
  const float decay = 1.0f - hyper->lr * hyper->weight_decay;
  const __nv_bfloat16* x = stack + blockIdx.y * n;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    mat.param[e] = mat.param[e] * decay - mat.adjusted_lr * __bfloat162float(x[e]);
}

// C = alpha op(A) op(B) + beta C for every matrix of the stack, column-major (cuBLAS's view).
void gemm_bf16_batched(cublasOperation_t trans_a, cublasOperation_t trans_b, int m, int n, int k, const float* alpha,
                       const __nv_bfloat16* a, int lda, long long stride_a, const __nv_bfloat16* b, int ldb,
                       long long stride_b, const float* beta, __nv_bfloat16* c, int ldc, long long stride_c,
                       int count) {
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas_handle(), trans_a, trans_b, m, n, k, alpha, a, CUDA_R_16BF, lda,
                                          stride_a, b, CUDA_R_16BF, ldb, stride_b, beta, c, CUDA_R_16BF, ldc, stride_c,
                                          count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void muon_batched_step(const MuonMatrix* matrices, int32_t count, int32_t rows, int32_t cols,
                       const MuonHyper* hyper, int32_t ns_steps, cudaStream_t stream) {
  NVTX_RANGE("muon_batched_step");
  if (count == 0) return;
  const bool tall = rows > cols;
  const int side = tall ? cols : rows;
  const int64_t n = static_cast<int64_t>(rows) * cols, gram = static_cast<int64_t>(side) * side;
  Storage x_storage(count * n * sizeof(__nv_bfloat16), Device::CUDA);
  Storage next_storage(count * n * sizeof(__nv_bfloat16), Device::CUDA);
  Storage a_storage(count * gram * sizeof(__nv_bfloat16), Device::CUDA);
  Storage b_storage(count * gram * sizeof(__nv_bfloat16), Device::CUDA);
  auto* x = static_cast<__nv_bfloat16*>(x_storage.data());
  auto* next = static_cast<__nv_bfloat16*>(next_storage.data());
  auto* a = static_cast<__nv_bfloat16*>(a_storage.data());
  auto* b = static_cast<__nv_bfloat16*>(b_storage.data());

  const dim3 grid(std::min<unsigned>(ceil_div(n, kBlock), 1024u), static_cast<unsigned>(count));
  momentum_to_stack_kernel<<<grid, kBlock, 0, stream>>>(matrices, hyper, x, n);
  CUDA_LAUNCH_CHECK();
  normalize_stack_kernel<<<static_cast<unsigned>(count), kNormBlock, 0, stream>>>(hyper, x, n);
  CUDA_LAUNCH_CHECK();

  cublasHandle_t handle = cublas_handle();
  cublasPointerMode_t previous_mode;
  CUBLAS_CHECK(cublasGetPointerMode(handle, &previous_mode));
  CUBLAS_CHECK(cublasSetStream(handle, stream));
  CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_DEVICE));
  // Row-major U [rows, cols] is column-major U^T with leading dimension cols. Wide: X = U, and in
  // cuBLAS's view A = Ucm^T Ucm, X' = Ucm B. Tall: A = U^T U = Ucm Ucm^T and U' = a U + U B, i.e.
  // U'cm = a Ucm + B Ucm. A and B are symmetric, so their layout needs no care.
  const auto N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  const int inner = tall ? rows : cols;
  for (int step = 0; step < ns_steps; ++step) {
    const float* coef_a = &hyper->coefficients[step][0];
    const float* coef_b = &hyper->coefficients[step][1];
    const float* coef_c = &hyper->coefficients[step][2];
    gemm_bf16_batched(tall ? N : T, tall ? T : N, side, side, inner, &hyper->one, x, cols, n, x, cols, n,
                      &hyper->zero, a, side, gram, count);
    CUDA_CHECK(cudaMemcpyAsync(b, a, count * gram * sizeof(__nv_bfloat16), cudaMemcpyDeviceToDevice, stream));
    gemm_bf16_batched(N, N, side, side, side, coef_c, a, side, gram, a, side, gram, coef_b, b, side, gram, count);
    CUDA_CHECK(cudaMemcpyAsync(next, x, count * n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToDevice, stream));
    if (tall) {
      gemm_bf16_batched(N, N, cols, rows, cols, &hyper->one, b, side, gram, x, cols, n, coef_a, next, cols, n, count);
    } else {
      gemm_bf16_batched(N, N, cols, rows, rows, &hyper->one, x, cols, n, b, side, gram, coef_a, next, cols, n, count);
    }
    std::swap(x, next);
  }
  CUBLAS_CHECK(cublasSetPointerMode(handle, previous_mode));

  apply_update_kernel<<<grid, kBlock, 0, stream>>>(matrices, hyper, x, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

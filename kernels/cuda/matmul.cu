#include "muonrec/kernels/cuda/matmul.h"

#include <algorithm>
#include <climits>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/precision.h"

namespace muonrec::kernels::cuda {
namespace {

cudaDataType_t cuda_type(GemmType type) { return type == GemmType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// bf16 operands are already rounded: their products are exact in fp32 whatever the setting. fp32
// operands are rounded (or not) inside the product as the process-wide precision asks. The
// engine's handle keeps CUBLAS_DEFAULT_MATH, so plain COMPUTE_32F never uses TF32 on its own.
cublasComputeType_t compute_type(GemmType operands) {
  if (operands == GemmType::BF16) return CUBLAS_COMPUTE_32F;
  switch (matmul_precision()) {
    case MatmulPrecision::TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case MatmulPrecision::FP32: break;
  }
  return CUBLAS_COMPUTE_32F;
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c, cudaStream_t stream) {
  const int64_t lda = std::max<int64_t>(1, trans_a ? m : k);
  const int64_t ldb = std::max<int64_t>(1, trans_b ? k : n);
  gemm_ex(trans_a, trans_b, m, n, k, alpha, {a, GemmType::F32, lda}, {b, GemmType::F32, ldb}, beta,
          {c, GemmType::F32, n}, stream);
}

void gemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, GemmInput a, GemmInput b,
             float beta, GemmOutput c, cudaStream_t stream) {
  NVTX_RANGE("gemm");
  if (m == 0 || n == 0) return;
  MUONREC_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && a.ld <= INT_MAX && b.ld <= INT_MAX && c.ld <= INT_MAX,
                "gemm: sizes m={} n={} k={} (ld {}, {}, {}) exceed cuBLAS's int range", m, n, k, a.ld, b.ld, c.ld);
  MUONREC_CHECK(a.type == b.type && (c.type == GemmType::F32 || a.type == GemmType::BF16),
                "gemm: A and B must share a type, and a bf16 C needs bf16 operands");
  cublasHandle_t handle = cublas_handle();
  cudaStream_t current = nullptr;
  CUBLAS_CHECK(cublasGetStream(handle, &current));
  if (current != stream) CUBLAS_CHECK(cublasSetStream(handle, stream));
  // cuBLAS is column-major, and a row-major [r, c] matrix is the column-major [c, r] one. So the
  // row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: B comes first,
  // each keeps its own transpose flag, and the leading dimensions are the row-major row strides.
  CUBLAS_CHECK(cublasGemmEx(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                            static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b.data,
                            cuda_type(b.type), static_cast<int>(b.ld), a.data, cuda_type(a.type),
                            static_cast<int>(a.ld), &beta, c.data, cuda_type(c.type), static_cast<int>(c.ld),
                            compute_type(a.type), CUBLAS_GEMM_DEFAULT));
}

}  // namespace muonrec::kernels::cuda

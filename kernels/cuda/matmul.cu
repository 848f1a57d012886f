#include "kernels/cuda/matmul.h"

#include <algorithm>
#include <climits>

#include "engine/cuda_check.h"
#include "engine/error.h"
#include "engine/nvtx.h"

namespace muonrec::kernels::cuda {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c, cudaStream_t stream) {
  NVTX_RANGE("gemm");
  if (m == 0 || n == 0) return;
  MUONREC_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "gemm: sizes m={} n={} k={} exceed cuBLAS's int range",
                m, n, k);
  cublasHandle_t handle = cublas_handle();
  cudaStream_t current = nullptr;
  CUBLAS_CHECK(cublasGetStream(handle, &current));
  if (current != stream) CUBLAS_CHECK(cublasSetStream(handle, stream));
  // cuBLAS is column-major, and a row-major [r, c] matrix is the column-major [c, r] one. So the
  // row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: B comes first,
  // each keeps its own transpose flag, and the leading dimensions are the row-major row lengths.
  // Plain Sgemm under the engine's CUBLAS_DEFAULT_MATH stays full fp32 (no TF32), matching the CPU.
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? m : k));
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? k : n));
  CUBLAS_CHECK(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, ldb, a, lda,
                           &beta, c, static_cast<int>(n)));
}

}  // namespace muonrec::kernels::cuda

#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>

namespace muonrec::kernels::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  if (m == 0 || n == 0) return;
  const blasint lda = static_cast<blasint>(std::max<int64_t>(1, trans_a ? m : k));
  const blasint ldb = static_cast<blasint>(std::max<int64_t>(1, trans_b ? k : n));
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, lda, b, ldb, beta, c,
              static_cast<blasint>(n));
}

}  // namespace muonrec::kernels::cpu

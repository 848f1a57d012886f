#include "kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>

namespace muonrec::kernels::cpu {
namespace {

// With OpenMP, OpenBLAS's own thread pool and the OpenMP loops spin on the same cores and slow each
// other down: on 2 cores the quickstart trained 2.2x slower with both pools at 2 threads than with
// OpenBLAS on one (and the OpenMP loops on both). So unless the user chose OpenBLAS's thread count,
// its products run on the calling thread and the parallelism comes from the OpenMP loops.
void keep_blas_off_the_openmp_cores() {
#ifdef _OPENMP
  static const bool done = [] {
    if (!std::getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
#endif
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  if (m == 0 || n == 0) return;
  keep_blas_off_the_openmp_cores();
  const blasint lda = static_cast<blasint>(std::max<int64_t>(1, trans_a ? m : k));
  const blasint ldb = static_cast<blasint>(std::max<int64_t>(1, trans_b ? k : n));
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, lda, b, ldb, beta, c,
              static_cast<blasint>(n));
}

}  // namespace muonrec::kernels::cpu

#include "muonrec/kernels/cpu/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "muonrec/engine/error.h"

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

// Products of at least this many multiply-adds are cut into panels the OpenMP threads share
// (OpenBLAS itself stays on one thread, above); smaller ones are not worth waking the threads.
constexpr int64_t kParallelMultiplyAdds = int64_t{1} << 21;
// Panel width, in rows or columns of C: fixed, not a share per thread, so that every element of C is
// computed by the same call on any number of threads (bit-identical results whatever the cores).
// A product called inside a parallel region runs whole on its thread (no caller does that).
constexpr int64_t kPanel = 128;

// OpenBLAS takes 32-bit sizes: a larger one would be refused with a message on stderr and C left as
// it was, so it is refused here, with an Error.
void check_blas_sizes(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  constexpr int64_t kMax = std::numeric_limits<blasint>::max();
  MUONREC_CHECK(std::max({m, n, k, lda, ldb, ldc}) <= kMax,
                "gemm: a [{} x {}] by [{} x {}] product (leading dimensions {}, {}, {}) exceeds the BLAS's 32-bit "
                "sizes ({})",
                m, k, k, n, lda, ldb, ldc, kMax);
}

}  // namespace

void gemm_strided(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  check_blas_sizes(m, n, k, lda, ldb, ldc);
  keep_blas_off_the_openmp_cores();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  const int64_t lda = std::max<int64_t>(1, trans_a ? m : k);
  const int64_t ldb = std::max<int64_t>(1, trans_b ? k : n);
  check_blas_sizes(m, n, k, lda, ldb, n);  // here, not inside the parallel region below
#ifdef _OPENMP
  if (m * n * k >= kParallelMultiplyAdds && std::max(m, n) > kPanel && !omp_in_parallel()) {
    // Panels of rows of C (rows of op(A)) or, when C is wider than tall, of its columns (columns of op(B)).
    const bool by_rows = m >= n;
    const int64_t extent = by_rows ? m : n;
    const int64_t panels = (extent + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(dynamic)
    for (int64_t p = 0; p < panels; ++p) {
      const int64_t first = p * kPanel, size = std::min(kPanel, extent - first);
      if (by_rows) {
        gemm_strided(trans_a, trans_b, size, n, k, alpha, trans_a ? a + first : a + first * lda, lda, b, ldb, beta,
                     c + first * n, n);
      } else {
        gemm_strided(trans_a, trans_b, m, size, k, alpha, a, lda, trans_b ? b + first * ldb : b + first, ldb, beta,
                     c + first, n);
      }
    }
    return;
  }
#endif
  gemm_strided(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
}

}  // namespace muonrec::kernels::cpu

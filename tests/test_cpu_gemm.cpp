// The CPU matrix product (kernels/cpu/matmul.h): large products are cut into fixed panels shared by
// the OpenMP threads. Every layout against a double-precision product, and the same bits on one
// thread as on several.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"
#include "muonrec/kernels/cpu/matmul.h"

using namespace muonrec;

namespace {

std::vector<float> random_values(size_t n, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = gen.normal();
  return v;
}

struct Product {
  bool trans_a, trans_b;
  int64_t m, n, k;
};

// alpha * op(A) op(B) + beta * C in double.
std::vector<double> reference(const Product& p, float alpha, const std::vector<float>& a, const std::vector<float>& b,
                              float beta, const std::vector<float>& c) {
  std::vector<double> out(static_cast<size_t>(p.m * p.n));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      double sum = 0;
      for (int64_t l = 0; l < p.k; ++l) {
        const double x = p.trans_a ? a[l * p.m + i] : a[i * p.k + l];
        const double y = p.trans_b ? b[j * p.k + l] : b[l * p.n + j];
        sum += x * y;
      }
      out[i * p.n + j] = alpha * sum + beta * static_cast<double>(c[i * p.n + j]);
    }
  return out;
}

std::vector<float> run(const Product& p, float alpha, const std::vector<float>& a, const std::vector<float>& b,
                       float beta, std::vector<float> c) {
  kernels::cpu::gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, alpha, a.data(), b.data(), beta, c.data());
  return c;
}

}  // namespace

TEST(CpuGemm, PanelledProductsMatchADoubleProductInEveryLayout) {
  // Tall (panels of rows), wide (panels of columns), a ragged last panel each, and a small one.
  for (const auto& [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {300, 200, 70}, {90, 700, 64}, {129, 130, 150}, {20, 30, 40}}) {
    for (bool trans_a : {false, true})
      for (bool trans_b : {false, true}) {
        const Product p{trans_a, trans_b, m, n, k};
        const auto a = random_values(static_cast<size_t>(m * k), 1), b = random_values(static_cast<size_t>(k * n), 2);
        const auto c = random_values(static_cast<size_t>(m * n), 3);
        const std::vector<double> expected = reference(p, 0.7f, a, b, -0.4f, c);
        const std::vector<float> got = run(p, 0.7f, a, b, -0.4f, c);
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i)
          worst = std::max(worst, std::abs(got[i] - expected[i]) / (1.0 + std::abs(expected[i])));
        EXPECT_LT(worst, 1e-5) << m << "x" << n << "x" << k << " trans_a " << trans_a << " trans_b " << trans_b;
      }
  }
}

TEST(CpuGemm, TheSameBitsOnOneThreadAsOnSeveral) {
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
  for (const Product& p : {Product{false, true, 400, 300, 64}, Product{true, false, 64, 900, 256}}) {
    const auto a = random_values(static_cast<size_t>(p.m * p.k), 4);
    const auto b = random_values(static_cast<size_t>(p.k * p.n), 5);
    const std::vector<float> c(static_cast<size_t>(p.m * p.n), 0.0f);
    omp_set_num_threads(1);
    const std::vector<float> one = run(p, 1.0f, a, b, 0.0f, c);
    omp_set_num_threads(std::max(threads, 3));
    const std::vector<float> several = run(p, 1.0f, a, b, 0.0f, c);
    omp_set_num_threads(threads);
    EXPECT_EQ(one, several) << p.m << "x" << p.n << "x" << p.k;
  }
#else
  GTEST_SKIP() << "built without OpenMP: products run on one thread";
#endif
}

// OpenBLAS takes 32-bit sizes: a larger product is refused with an Error before the BLAS (which would
// print to stderr and leave C as it was) or any pointer is touched.
TEST(CpuGemm, SizesBeyondTheBlasIntegersAreRefused) {
  const int64_t too_long = int64_t{1} << 31;
  try {
    muonrec::kernels::cpu::gemm(true, false, 1, 1, too_long, 1.0f, nullptr, nullptr, 0.0f, nullptr);
    FAIL() << "no error";
  } catch (const muonrec::Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the BLAS's 32-bit sizes"), std::string::npos) << e.what();
  }
}

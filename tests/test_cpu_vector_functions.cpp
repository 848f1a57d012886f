// The vectorised exp and erf of the CPU kernels against the double-precision functions, in units
// in the last place of the float result, on dense grids and at the special values.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "muonrec/kernels/cpu/vector_functions.h"
#include "muonrec/kernels/cpu/vector_math.h"

namespace {

using muonrec::kernels::cpu::erf_array;
using muonrec::kernels::cpu::exp_array;

// |got - expected| in units of the float spacing at the expected value (subnormal spacing below).
double ulp_error(float got, double expected) {
  const float rounded = static_cast<float>(expected);
  const float magnitude = std::fabs(rounded);
  const double spacing = static_cast<double>(std::nextafter(magnitude, std::numeric_limits<float>::infinity())) -
                         static_cast<double>(magnitude);
  return std::fabs(static_cast<double>(got) - expected) / spacing;
}

// Evenly spaced points of [lo, hi].
std::vector<float> grid(double lo, double hi, int points) {
  std::vector<float> x(static_cast<size_t>(points));
  for (int i = 0; i < points; ++i) x[i] = static_cast<float>(lo + (hi - lo) * i / (points - 1));
  return x;
}

template <class Reference>
double max_ulp_error(void (*f)(const float*, float*, int64_t), const std::vector<float>& x, Reference reference,
                     float* worst_x) {
  std::vector<float> y(x.size());
  f(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = ulp_error(y[i], reference(static_cast<double>(x[i])));
    if (e > worst) {
      worst = e;
      *worst_x = x[i];
    }
  }
  return worst;
}

std::vector<float> apply(void (*f)(const float*, float*, int64_t), std::vector<float> x) {
  f(x.data(), x.data(), static_cast<int64_t>(x.size()));  // in place
  return x;
}

}  // namespace

TEST(CpuVectorFunctions, exp_within_1_ulp_from_subnormal_results_to_overflow) {
  float at = 0.0f;
  // 2,000,003 points: an odd count, so the vector loop's tail runs too.
  const double worst = max_ulp_error(exp_array, grid(-103.0, 88.72, 2000003), [](double v) { return std::exp(v); }, &at);
  EXPECT_LE(worst, 1.0) << "at x = " << at;
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = apply(exp_array, {0.0f, -inf, inf, -200.0f, 88.75f, 1.0f, -87.0f});
  EXPECT_EQ(special[0], 1.0f);
  EXPECT_EQ(special[1], 0.0f);
  EXPECT_EQ(special[2], inf);
  EXPECT_EQ(special[3], 0.0f);
  EXPECT_EQ(special[4], inf);
  EXPECT_LE(ulp_error(special[5], std::exp(1.0)), 2.0);
  EXPECT_LE(ulp_error(special[6], std::exp(-87.0)), 2.0);
  EXPECT_TRUE(std::isnan(apply(exp_array, {std::nanf("")})[0]));
}

TEST(CpuVectorFunctions, erf_within_1_5_ulp_and_exact_limits) {
  float at = 0.0f;
  const double worst = max_ulp_error(erf_array, grid(-5.0, 5.0, 2000003), [](double v) { return std::erf(v); }, &at);
  EXPECT_LE(worst, 1.5) << "at x = " << at;
  // Tiny arguments keep their relative precision (erf x = 2x / sqrt(pi) there).
  const double tiny_worst =
      max_ulp_error(erf_array, grid(1e-30, 1e-3, 100001), [](double v) { return std::erf(v); }, &at);
  EXPECT_LE(tiny_worst, 1.0) << "at x = " << at;
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = apply(erf_array, {0.0f, inf, -inf, 4.0f, -30.0f, 1.0f});
  EXPECT_EQ(special[0], 0.0f);
  EXPECT_EQ(special[1], 1.0f);
  EXPECT_EQ(special[2], -1.0f);
  EXPECT_EQ(special[3], 1.0f);
  EXPECT_EQ(special[4], -1.0f);
  EXPECT_LE(ulp_error(special[5], std::erf(1.0)), 2.0);
  EXPECT_TRUE(std::isnan(apply(erf_array, {std::nanf("")})[0]));
}

TEST(CpuVectorMath, SumAndLargestInEightLanes) {
  for (int64_t n : {0, 1, 7, 8, 9, 31, 64, 1001}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * (i % 5 == 0 ? 100.0f : 1.0f);
    double expected_sum = 0;
    for (float v : x) expected_sum += v;
    EXPECT_NEAR(muonrec::kernels::cpu::sum(x.data(), n), expected_sum, 1e-5 * (1.0 + std::abs(expected_sum))) << n;
    const float expected_max = n == 0 ? -INFINITY : *std::max_element(x.begin(), x.end());
    EXPECT_EQ(muonrec::kernels::cpu::max_value(x.data(), n), expected_max) << n;
  }
  const float with_nan[] = {1.0f, NAN, 3.0f};
  EXPECT_EQ(muonrec::kernels::cpu::max_value(with_nan, 3), 3.0f);  // skipped, as std::max skips it
}

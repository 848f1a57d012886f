// The CPU elementwise kernels on tensors large enough to be split over the OpenMP threads
// (kernels/cpu/parallel_blocks.h): every element as its definition gives it, broadcasts and rows
// that cross block boundaries, and the same bits on one thread as on several.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "muonrec/engine/rng.h"
#include "muonrec/kernels/cpu/elementwise.h"
#include "muonrec/kernels/cpu/parallel_blocks.h"

using namespace muonrec;
namespace cpu = muonrec::kernels::cpu;

namespace {

std::vector<float> random_values(int64_t n, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = gen.normal();
  return v;
}

// 37 columns: rows and broadcast periods straddle the 1024-element blocks; well above the
// threshold at which the threads share the work.
constexpr int64_t kCols = 37, kRows = 3001, kN = kRows * kCols;
static_assert(kN > 2 * cpu::kParallelElements, "large enough to be split");

// Each kernel's outputs on the large inputs, concatenated.
std::vector<float> run_kernels() {
  const std::vector<float> a = random_values(kN, 1), b = random_values(kN, 2), row = random_values(kCols, 3);
  const std::vector<float> factors = random_values(kRows, 4);
  std::vector<float> out(static_cast<size_t>(5 * kN));
  cpu::add_forward(a.data(), row.data(), out.data(), kN, kCols);
  cpu::add_forward(a.data(), b.data(), out.data() + kN, kN, kN);
  cpu::mul_forward(a.data(), b.data(), out.data() + 2 * kN, kN);
  cpu::scale_forward(a.data(), -0.75f, out.data() + 3 * kN, kN);
  cpu::scale_rows_forward(a.data(), factors.data(), out.data() + 4 * kN, kRows, kCols);
  return out;
}

}  // namespace

TEST(CpuElementwise, large_tensors_match_the_definitions) {
  const std::vector<float> a = random_values(kN, 1), b = random_values(kN, 2), row = random_values(kCols, 3);
  const std::vector<float> factors = random_values(kRows, 4);
  const std::vector<float> out = run_kernels();
  for (int64_t i = 0; i < kN; ++i) {
    const int64_t r = i / kCols, c = i % kCols;
    ASSERT_EQ(out[i], a[i] + row[c]) << "add, broadcast, element " << i;
    ASSERT_EQ(out[kN + i], a[i] + b[i]) << "add, element " << i;
    ASSERT_EQ(out[2 * kN + i], a[i] * b[i]) << "mul, element " << i;
    ASSERT_EQ(out[3 * kN + i], a[i] * -0.75f) << "scale, element " << i;
    ASSERT_EQ(out[4 * kN + i], a[i] * factors[r]) << "scale_rows, element " << i;
  }
}

TEST(CpuElementwise, in_place_on_a_large_tensor) {
  std::vector<float> a = random_values(kN, 5);
  const std::vector<float> row = random_values(kCols, 6), before = a;
  cpu::add_forward(a.data(), row.data(), a.data(), kN, kCols);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(a[i], before[i] + row[i % kCols]) << i;
}

#ifdef _OPENMP
TEST(CpuElementwise, same_bits_on_one_thread_as_on_several) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> serial = run_kernels();
  omp_set_num_threads(4);
  const std::vector<float> parallel = run_kernels();
  omp_set_num_threads(threads);
  EXPECT_EQ(serial, parallel);
}
#endif

// Built with -ffp-contract=off (kernels/CMakeLists.txt): the fmas below are the only fused
// operations, on both paths.
#include "muonrec/kernels/cpu/vector_functions.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "muonrec/kernels/cpu/cpu_features.h"

namespace muonrec::kernels::cpu {
namespace {

inline __attribute__((always_inline)) float from_bits(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// exp(x) = 2^n exp(r) with n = round(x / ln 2) and |r| <= ln2 / 2 (ln 2 split in two so that r is
// exact to float precision). exp(r) is its Taylor polynomial of degree 7, whose error (5e-9) is
// below float rounding. 2^n is applied as two factors so that every n of [-150, 129] is
// representable: results are subnormal down to exp(-103.3), 0 below, inf above exp(88.72).
inline __attribute__((always_inline)) float exp_one(float x) {
  constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  // std::max(-104, NaN) is -104: the NaN is put back at the end.
  const float c = std::min(std::max(-104.0f, x), 89.0f);
  const float n = std::fma(c, kLog2e, kRound) - kRound;
  float r = std::fma(-n, kLn2Hi, c);
  r = std::fma(-n, kLn2Lo, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const auto k = static_cast<int32_t>(n), half = k >> 1;
  const float result = p * from_bits((half + 127) << 23) * from_bits((k - half + 127) << 23);
  return x == x ? result : x;
}

// erf(x) for |x| < 1: x + x P(x^2), P the degree-6 Chebyshev interpolant of erf(sqrt t) / sqrt t - 1
// on t in [0, 1] (relative error 1.3e-9 before rounding the coefficients to float). Keeping the 1
// out of P leaves the float rounding of 2 / sqrt(pi) a ninth as large in the result.
constexpr float kSmall[] = {0.128379167f,    -0.376126267f,   0.112835947f,   -0.026854212f,
                            0.00518908742f, -0.000801686428f, 7.87587505e-05f};
// erf(x) for |x| >= 1: 1 - exp(-x^2) erfcx(|x|), where erfcx(a) = exp(a^2) erfc(a) is entire and
// so close to a polynomial: the degree-10 Chebyshev interpolant on [1, 4] in v = |x| - 2.5 (exact in
// float there); the error it leaves in erf is below 2e-8. Beyond 3.92 erf rounds to 1, so |x| is
// clamped to 4.
constexpr float kLarge[] = {0.210806364f,    -0.0743475937f,   0.0249380569f,    -0.00799938886f,
                            0.00246650857f,  -0.000738927886f, 0.000212313567f,  -5.36272945e-05f,
                            1.46895568e-05f, -6.37786228e-06f, 1.61189075e-06f};

// c[0] + c[1] z + ... + c[N-1] z^(N-1), unrolled at compile time (a loop over the coefficients
// inside the element loop keeps the compiler from vectorising the element loop).
template <size_t N, size_t K = 0>
inline __attribute__((always_inline)) float horner(const float (&c)[N], float z) {
  if constexpr (K + 1 == N) {
    return c[K];
  } else {
    return std::fma(horner<N, K + 1>(c, z), z, c[K]);
  }
}

inline __attribute__((always_inline)) float erf_one(float x) {
  const float a = std::fabs(x);
  const float t = x * x;
  const float small = std::fma(x, horner(kSmall, t), x);
  const float b = std::min(a, 4.0f);  // NaN stays NaN
  const float q = horner(kLarge, b - 2.5f);
  const float large = std::copysign(std::fma(-exp_one(-b * b), q, 1.0f), x);
  return a < 1.0f ? small : large;
}

// ivdep: y is x or does not overlap it, so lanes may be loaded before any is stored. Without it the
// compiler checks for overlap at run time and takes its scalar loop for the in-place calls.
template <float (*F)(float)>
inline void map_array(const float* x, float* y, int64_t n) {
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) y[i] = F(x[i]);
}

#ifdef MUONREC_X86_DISPATCH
__attribute__((target("avx2,fma"))) void exp_avx2(const float* x, float* y, int64_t n) { map_array<exp_one>(x, y, n); }
__attribute__((target("avx2,fma"))) void erf_avx2(const float* x, float* y, int64_t n) { map_array<erf_one>(x, y, n); }
#endif

}  // namespace

void exp_array(const float* x, float* y, int64_t n) {
#ifdef MUONREC_X86_DISPATCH
  if (cpu_has_avx2_fma()) return exp_avx2(x, y, n);
#endif
  map_array<exp_one>(x, y, n);
}

void erf_array(const float* x, float* y, int64_t n) {
#ifdef MUONREC_X86_DISPATCH
  if (cpu_has_avx2_fma()) return erf_avx2(x, y, n);
#endif
  map_array<erf_one>(x, y, n);
}

}  // namespace muonrec::kernels::cpu

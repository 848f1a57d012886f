// Inner loops of the CPU kernels that the compiler does not vectorise as plainly written.
//
// dot: eight running sums instead of one. A single float accumulator is a chain the compiler may
// not reorder (no -ffast-math), so it runs one multiply-add per adder latency; eight independent
// lanes vectorise (one SIMD multiply and add per eight elements). The lanes are summed pairwise,
// which rounds no worse than the serial sum.
#pragma once

#include <cstdint>
#include <limits>

namespace muonrec::kernels::cpu {

inline float dot(const float* a, const float* b, int64_t n) {
  float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += a[c + l] * b[c + l];
  float tail = 0.0f;
  for (; c < n; ++c) tail += a[c] * b[c];
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail;
}

// The sum and the largest of n values, in eight lanes as dot (the largest: -inf for n = 0; a NaN is
// skipped, as std::max skips it, where the sum would propagate it).
inline float sum(const float* x, int64_t n) {
  float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += x[c + l];
  float tail = 0.0f;
  for (; c < n; ++c) tail += x[c];
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail;
}

inline float max_value(const float* x, int64_t n) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  float lanes[8] = {kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; ++l) lanes[l] = lanes[l] < x[c + l] ? x[c + l] : lanes[l];
  float best = kLowest;
  for (; c < n; ++c) best = best < x[c] ? x[c] : best;
  for (float lane : lanes) best = best < lane ? lane : best;
  return best;
}

// y += a * x over n elements that do not overlap. Gradient rows of q, k and v lie in one array, so
// without the promise the compiler emits scalar code for a loop that updates several of them.
inline void axpy(float a, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] += a * x[c];
}

}  // namespace muonrec::kernels::cpu

// The CPU softmax attention (kernels/cpu/attention.cpp packs the valid keys and multiplies query
// blocks) against the mask rule of attention.h evaluated term by term in double, forward and
// backward, causal and bidirectional, over padding layouts that exercise every path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "muonrec/kernels/cpu/attention.h"
#include "test_util.h"

using namespace muonrec;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

struct DirectAttention {
  std::vector<double> out, lse, dqkv;
};

// Query i attends key j when (j <= i or !causal) and valid[j], or when j == i.
DirectAttention direct_attention(const std::vector<float>& qkv, const std::vector<float>& valid,
                                 const std::vector<float>& dout, int64_t B, int64_t T, int64_t H, int64_t Dh,
                                 bool causal) {
  const int64_t width = H * Dh, row = 3 * width;
  const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  DirectAttention r{std::vector<double>(static_cast<size_t>(B * T * width), 0.0),
                    std::vector<double>(static_cast<size_t>(B * H * T), 0.0), std::vector<double>(qkv.size(), 0.0)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        auto at = [&](int64_t t, int64_t block) { return (b * T + t) * row + block * width + h * Dh; };
        const int64_t yi = (b * T + i) * width + h * Dh;
        std::vector<int64_t> keys;
        for (int64_t j = 0; j < T; ++j)
          if (((j <= i || !causal) && valid[b * T + j] != 0.0f) || j == i) keys.push_back(j);
        std::vector<double> s(keys.size()), dp(keys.size());
        double max_score = -INFINITY, total = 0.0, delta = 0.0;
        for (size_t n = 0; n < keys.size(); ++n) {
          for (int64_t c = 0; c < Dh; ++c) {
            s[n] += static_cast<double>(qkv[at(i, 0) + c]) * qkv[at(keys[n], 1) + c] * scale;
            dp[n] += static_cast<double>(dout[yi + c]) * qkv[at(keys[n], 2) + c];
          }
          max_score = std::max(max_score, s[n]);
        }
        for (double x : s) total += std::exp(x - max_score);
        r.lse[(b * H + h) * T + i] = max_score + std::log(total);
        for (size_t n = 0; n < keys.size(); ++n) {
          const double p = std::exp(s[n] - max_score) / total;
          delta += p * dp[n];
          for (int64_t c = 0; c < Dh; ++c) r.out[yi + c] += p * qkv[at(keys[n], 2) + c];
        }
        for (size_t n = 0; n < keys.size(); ++n) {
          const double p = std::exp(s[n] - max_score) / total, ds = p * (dp[n] - delta) * scale;
          for (int64_t c = 0; c < Dh; ++c) {
            r.dqkv[at(i, 0) + c] += ds * qkv[at(keys[n], 1) + c];
            r.dqkv[at(keys[n], 1) + c] += ds * qkv[at(i, 0) + c];
            r.dqkv[at(keys[n], 2) + c] += p * dout[yi + c];
          }
        }
      }
  return r;
}

// T = 150 spans three of the kernel's query blocks. Rows: no padding; a hole every third position;
// left padding of 70 then holes; only the last position valid; all padding.
constexpr int64_t kB = 5, kT = 150;
std::vector<float> mixed_mask() {
  std::vector<float> valid(static_cast<size_t>(kB * kT), 1.0f);
  for (int64_t t = 0; t < kT; ++t) {
    if (t % 3 == 1) valid[1 * kT + t] = 0.0f;
    if (t < 70 || t % 5 == 2) valid[2 * kT + t] = 0.0f;
    if (t < kT - 1) valid[3 * kT + t] = 0.0f;
    valid[4 * kT + t] = 0.0f;
  }
  return valid;
}

}  // namespace

TEST(AttentionCpu, matches_a_direct_double_evaluation_in_both_directions) {
  const int64_t H = 2, Dh = 13, width = H * Dh;  // an odd head dimension
  const std::vector<float> valid = mixed_mask();
  const std::vector<float> qkv = random_tensor({kB, kT, 3 * width}, 70, 0.5f).to_f32_vector();
  const std::vector<float> dout = random_tensor({kB, kT, width}, 71).to_f32_vector();
  for (bool causal : {true, false}) {
    SCOPED_TRACE(causal ? "causal" : "bidirectional");
    // Every output pre-filled with NaN: an element the kernels leave unwritten fails.
    std::vector<float> out(static_cast<size_t>(kB * kT * width), NAN), lse(static_cast<size_t>(kB * H * kT), NAN);
    std::vector<float> dqkv(qkv.size(), NAN);
    kernels::cpu::attention_forward(qkv.data(), valid.data(), out.data(), lse.data(), kB, kT, H, Dh, causal);
    kernels::cpu::attention_backward(qkv.data(), valid.data(), out.data(), lse.data(), dout.data(), dqkv.data(), kB,
                                     kT, H, Dh, causal);
    const DirectAttention want = direct_attention(qkv, valid, dout, kB, kT, H, Dh, causal);
    EXPECT_LT(relative_error(out, want.out), 1e-6) << "out";
    EXPECT_LT(relative_error(lse, want.lse), 1e-6) << "lse";
    EXPECT_LT(relative_error(dqkv, want.dqkv), 1e-5) << "dqkv";
  }
}

TEST(AttentionCpu, valid_queries_never_read_the_keys_and_values_of_padding) {
  const int64_t H = 1, Dh = 16, width = H * Dh;
  const std::vector<float> valid = mixed_mask();
  const std::vector<float> clean = random_tensor({kB, kT, 3 * width}, 72, 0.5f).to_f32_vector();
  std::vector<float> poisoned = clean;
  for (int64_t bt = 0; bt < kB * kT; ++bt)
    if (valid[bt] == 0.0f)
      for (int64_t c = width; c < 3 * width; ++c) poisoned[bt * 3 * width + c] = NAN;
  for (bool causal : {true, false}) {
    std::vector<float> want(static_cast<size_t>(kB * kT * width)), got(want.size()), lse(static_cast<size_t>(kB * kT));
    kernels::cpu::attention_forward(clean.data(), valid.data(), want.data(), lse.data(), kB, kT, H, Dh, causal);
    kernels::cpu::attention_forward(poisoned.data(), valid.data(), got.data(), lse.data(), kB, kT, H, Dh, causal);
    for (int64_t bt = 0; bt < kB * kT; ++bt)
      if (valid[bt] != 0.0f)
        for (int64_t c = 0; c < width; ++c) ASSERT_EQ(got[bt * width + c], want[bt * width + c]) << bt;
  }
}

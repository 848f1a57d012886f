// hstu_attention and split_last: forward values on hand-checkable cases, finite-difference
// gradients on the CPU reference, the CPU kernels against a direct double-precision evaluation
// (several query blocks, holes in the mask), and GPU-vs-CPU parity of the launchers (poisoned
// outputs, mixed padding, head dims 16..160, lengths 1..257, with and without timestamps,
// deterministic backward) and of the op's backward (deterministic).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "muonrec/kernels/cpu/hstu_attention.h"
#include "test_util.h"

#ifdef MUONREC_WITH_CUDA
#include "muonrec/engine/allocator.h"
#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cpu/slice.h"
#include "muonrec/kernels/cuda/hstu_attention.h"
#include "muonrec/kernels/cuda/slice.h"
#endif

using namespace muonrec;
using muonrec::testkit::expect_gradients_match;
using muonrec::testkit::random_param;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

// Row b has `b * step` padded positions at the start (clamped so the last one stays real).
Tensor left_padding_mask(int64_t batch, int64_t seq, int64_t step = 1) {
  std::vector<float> v(static_cast<size_t>(batch * seq), 1.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < std::min(b * step, seq - 1); ++t) v[b * seq + t] = 0.0f;
  return Tensor::from_f32(v, {batch, seq});
}

// Buckets [B, T, T] drawn uniformly from [0, num_buckets).
Tensor random_buckets(int64_t batch, int64_t seq, int64_t num_buckets, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<int64_t> v(static_cast<size_t>(batch * seq * seq));
  for (int64_t& b : v) b = static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(num_buckets));
  return Tensor::from_i64(v, {batch, seq, seq});
}

}  // namespace

TEST(OpsForward, hstu_attention_hand_computed_single_head) {
  // B=1, T=2, d=1: u, v, q, k per position. Query 1 sees keys 0 and 1; query 0 sees key 0.
  //   pos 0: u=9 v=2 q=1 k=1;  pos 1: u=9 v=3 q=0.5 k=-1;  pos_bias = {0.1 (j-i=-1), 0.2 (0), 0.3 (+1)}
  Tensor uvqk = Tensor::from_f32({9, 2, 1, 1, 9, 3, 0.5f, -1}, {1, 2, 4});
  Tensor valid = Tensor::from_f32({1, 1}, {1, 2});
  Tensor pos_bias = Tensor::from_f32({0.1f, 0.2f, 0.3f}, {3});
  auto silu = [](double z) { return z / (1.0 + std::exp(-z)); };
  auto y = ops::hstu_attention(uvqk, valid, pos_bias, Tensor(), Tensor(), 1).to_f32_vector();
  EXPECT_NEAR(y[0], silu(1.0 + 0.2) / 2 * 2, 1e-6);                                     // z_00 = q0 k0 + pb(0)
  EXPECT_NEAR(y[1], silu(0.5 + 0.1) / 2 * 2 + silu(-0.5 + 0.2) / 2 * 3, 1e-6);          // z_10, z_11
  // A time bias indexed by the buckets adds to the score; key 0 masked leaves only key 1 for query 1.
  Tensor time_bias = Tensor::from_f32({0.0f, 0.7f}, {2});
  Tensor buckets = Tensor::from_i64({0, 1, 1, 1}, {1, 2, 2});
  y = ops::hstu_attention(uvqk, Tensor::from_f32({0, 1}, {1, 2}), pos_bias, time_bias, buckets, 1).to_f32_vector();
  EXPECT_EQ(y[0], 0.0f);  // no visible key: an all-zero row (no softmax)
  EXPECT_NEAR(y[1], silu(-0.5 + 0.2 + 0.7) / 2 * 3, 1e-6);
}

TEST(OpsForward, hstu_attention_ignores_padding_values) {
  // Padded keys never reach the output, even when their values are not finite.
  const int64_t B = 2, T = 4, d = 6;
  Tensor uvqk = random_tensor({B, T, 4 * d}, 40);
  Tensor valid = left_padding_mask(B, T, 2);
  Tensor pos_bias = random_tensor({2 * T - 1}, 41);
  auto clean = ops::hstu_attention(uvqk, valid, pos_bias, Tensor(), Tensor(), 2).to_f32_vector();
  float* p = uvqk.data<float>();
  for (int64_t c = 0; c < 4 * d; ++c) p[(1 * T + 0) * 4 * d + c] = NAN;  // row 1, position 0 is padding
  EXPECT_EQ(ops::hstu_attention(uvqk, valid, pos_bias, Tensor(), Tensor(), 2).to_f32_vector(), clean);
}

TEST(OpsForward, hstu_attention_rejects_bad_arguments) {
  const int64_t B = 2, T = 3, d = 4;
  Tensor uvqk = random_tensor({B, T, 4 * d}, 42), valid = left_padding_mask(B, T);
  Tensor pos_bias = random_tensor({2 * T - 1}, 43), time_bias = random_tensor({5}, 44);
  Tensor buckets = random_buckets(B, T, 5, 45);
  EXPECT_NO_THROW(ops::hstu_attention(uvqk, valid, pos_bias, time_bias, buckets, 2));
  EXPECT_NO_THROW(ops::hstu_attention(uvqk, valid, pos_bias, time_bias, ops::cast(buckets, DType::I32), 2));
  EXPECT_THROW(ops::hstu_attention(uvqk, valid, random_tensor({2 * T}, 46), Tensor(), Tensor(), 2), Error);
  EXPECT_THROW(ops::hstu_attention(random_tensor({B, T, 4 * d + 1}, 47), valid, pos_bias, Tensor(), Tensor(), 1),
               Error);
  EXPECT_THROW(ops::hstu_attention(uvqk, valid, pos_bias, Tensor(), Tensor(), 3), Error);  // d=4, 3 heads
  EXPECT_THROW(ops::hstu_attention(uvqk, valid, pos_bias, time_bias, Tensor(), 2), Error);  // bias without buckets
  EXPECT_THROW(ops::hstu_attention(uvqk, valid, pos_bias, time_bias, random_buckets(B, T, 6, 48), 2),
               Error);  // a bucket outside the bias
  EXPECT_THROW(ops::hstu_attention(uvqk, valid, pos_bias, time_bias, random_buckets(B, T + 1, 5, 49), 2), Error);
  // The node keeps I32 buckets as given: written into before the backward, they are checked again.
  Tensor bias_param = random_param({5}, 50);
  Tensor i32_buckets = ops::cast(buckets, DType::I32);
  Tensor loss = ops::sum(ops::hstu_attention(uvqk, valid, pos_bias, bias_param, i32_buckets, 2));
  i32_buckets.data<int32_t>()[4] = 1 << 30;
  testkit::expect_error([&] { backward(loss); },
                        {"hstu_attention backward (the time buckets were changed after the forward): time bucket "
                         "1073741824 at position 4 is outside [0, 5)"});
}

TEST(OpsForward, split_last_copies_the_column_block) {
  Tensor x = Tensor::from_f32({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  EXPECT_EQ(ops::split_last(x, 1, 2).to_f32_vector(), (std::vector<float>{2, 3, 6, 7}));
  EXPECT_EQ(ops::split_last(x, 1, 2).shape(), (Shape{2, 2}));
  EXPECT_THROW(ops::split_last(x, 3, 2), Error);
  EXPECT_THROW(ops::split_last(x, -1, 2), Error);
}

TEST(OpsGrad, hstu_attention_with_time_bias) {
  // Small scores keep SiLU away from its flat regions, so central differences are accurate.
  const int64_t B = 3, T = 5, heads = 2, head_dim = 3, buckets = 7;
  Tensor valid = left_padding_mask(B, T), time_buckets = random_buckets(B, T, buckets, 50);
  expect_gradients_match(
      [valid, time_buckets](auto& in) { return ops::hstu_attention(in[0], valid, in[1], in[2], time_buckets, 2); },
      {random_param({B, T, 4 * heads * head_dim}, 51, 0.8f), random_param({2 * T - 1}, 52, 0.5f),
       random_param({buckets}, 53, 0.5f)});
}

TEST(OpsGrad, hstu_attention_without_timestamps) {
  const int64_t B = 3, T = 4, heads = 2, head_dim = 2;
  Tensor valid = left_padding_mask(B, T);
  expect_gradients_match(
      [valid](auto& in) { return ops::hstu_attention(in[0], valid, in[1], Tensor(), Tensor(), 2); },
      {random_param({B, T, 4 * heads * head_dim}, 54, 0.8f), random_param({2 * T - 1}, 55, 0.5f)});
}

TEST(OpsGrad, hstu_attention_gives_u_no_gradient) {
  const int64_t B = 2, T = 3, d = 4;
  Tensor uvqk = random_param({B, T, 4 * d}, 56);
  backward(ops::sum(ops::hstu_attention(uvqk, left_padding_mask(B, T), random_tensor({2 * T - 1}, 57), Tensor(),
                                        Tensor(), 2)));
  auto g = uvqk.grad().to_f32_vector();
  for (int64_t row = 0; row < B * T; ++row)
    for (int64_t c = 0; c < d; ++c) EXPECT_EQ(g[row * 4 * d + c], 0.0f);
}

TEST(OpsGrad, split_last) {
  expect_gradients_match([](auto& in) { return ops::split_last(in[0], 3, 4); }, {random_param({3, 2, 10}, 58)});
  expect_gradients_match([](auto& in) { return ops::split_last(in[0], 0, 5); }, {random_param({5}, 59)});
}

namespace {

// The definition of reference/MODELS.md evaluated term by term in double, forward and backward:
// {out [B, T, d], duvqk [B, T, 4d], dpos_bias [2T-1], dtime_bias [buckets]}.
std::vector<std::vector<double>> direct_hstu_attention(const std::vector<float>& uvqk, const std::vector<float>& valid,
                                                       const std::vector<float>& pos_bias,
                                                       const std::vector<float>& time_bias,
                                                       const std::vector<int32_t>& buckets,
                                                       const std::vector<float>& dout, int64_t B, int64_t T,
                                                       int64_t H, int64_t Dh) {
  const int64_t d = H * Dh, row = 4 * d;
  std::vector<double> out(static_cast<size_t>(B * T * d), 0.0), duvqk(uvqk.size(), 0.0);
  std::vector<double> dpos(pos_bias.size(), 0.0), dtime(time_bias.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          if (valid[b * T + j] == 0.0f) continue;
          const int64_t qi = (b * T + i) * row + 2 * d + h * Dh, kj = (b * T + j) * row + 3 * d + h * Dh;
          const int64_t vj = (b * T + j) * row + d + h * Dh, yi = (b * T + i) * d + h * Dh;
          const int32_t bucket = buckets[(b * T + i) * T + j];
          double z = static_cast<double>(pos_bias[j - i + T - 1]) + time_bias[bucket], dw = 0.0;
          for (int64_t c = 0; c < Dh; ++c) {
            z += static_cast<double>(uvqk[qi + c]) * uvqk[kj + c];
            dw += static_cast<double>(dout[yi + c]) * uvqk[vj + c];
          }
          const double s = 1.0 / (1.0 + std::exp(-z)), w = z * s / T, dz = dw * s * (1.0 + z * (1.0 - s)) / T;
          for (int64_t c = 0; c < Dh; ++c) {
            out[yi + c] += w * uvqk[vj + c];
            duvqk[qi + c] += dz * uvqk[kj + c];
            duvqk[kj + c] += dz * uvqk[qi + c];
            duvqk[vj + c] += w * dout[yi + c];
          }
          dpos[j - i + T - 1] += dz;
          dtime[bucket] += dz;
        }
  return {out, duvqk, dpos, dtime};
}

}  // namespace

TEST(HstuAttentionCpu, matches_a_direct_double_evaluation_with_holes_and_several_query_blocks) {
  // T = 150 spans three of the kernels' query blocks. Rows: no padding; a hole every third
  // position; left padding of 70 then holes; all padding. Padded keys hold NaN in their k and v.
  const int64_t B = 4, T = 150, H = 2, Dh = 24, d = H * Dh, num_buckets = 9;
  std::vector<float> valid(static_cast<size_t>(B * T), 1.0f);
  for (int64_t t = 0; t < T; ++t) {
    if (t % 3 == 1) valid[1 * T + t] = 0.0f;
    if (t < 70 || t % 5 == 2) valid[2 * T + t] = 0.0f;
    valid[3 * T + t] = 0.0f;
  }
  std::vector<float> uvqk = random_tensor({B, T, 4 * d}, 60, 0.3f).to_f32_vector();
  for (int64_t bt = 0; bt < B * T; ++bt)
    if (valid[bt] == 0.0f)
      for (int64_t c = d; c < 4 * d; ++c)
        if (c < 2 * d || c >= 3 * d) uvqk[bt * 4 * d + c] = NAN;
  const std::vector<float> pos_bias = random_tensor({2 * T - 1}, 61, 0.5f).to_f32_vector();
  const std::vector<float> time_bias = random_tensor({num_buckets}, 62, 0.5f).to_f32_vector();
  const std::vector<float> dout = random_tensor({B, T, d}, 63).to_f32_vector();
  std::vector<int32_t> buckets(static_cast<size_t>(B * T * T));
  for (size_t n = 0; n < buckets.size(); ++n) buckets[n] = static_cast<int32_t>((n * 7 + n / T) % num_buckets);

  std::vector<float> out(static_cast<size_t>(B * T * d), NAN), duvqk(uvqk.size(), NAN);
  std::vector<float> dpos(pos_bias.size(), NAN), dtime(time_bias.size(), NAN);
  kernels::cpu::hstu_attention_forward(uvqk.data(), valid.data(), pos_bias.data(), time_bias.data(), buckets.data(),
                                       out.data(), B, T, H, Dh);
  kernels::cpu::hstu_attention_backward(uvqk.data(), valid.data(), pos_bias.data(), time_bias.data(), buckets.data(),
                                        dout.data(), duvqk.data(), dpos.data(), dtime.data(), B, T, H, Dh,
                                        num_buckets);
  const auto want = direct_hstu_attention(uvqk, valid, pos_bias, time_bias, buckets, dout, B, T, H, Dh);
  EXPECT_LT(relative_error(out, want[0]), 1e-6) << "out";
  // Also: the NaN of padded keys stays out of every gradient, and padded keys get none (0 in want).
  EXPECT_LT(relative_error(duvqk, want[1]), 1e-6) << "duvqk";
  EXPECT_LT(relative_error(dpos, want[2]), 1e-5) << "dpos_bias";
  EXPECT_LT(relative_error(dtime, want[3]), 1e-5) << "dtime_bias";
  for (int64_t c = 0; c < T * d; ++c) EXPECT_EQ(out[3 * T * d + c], 0.0f);  // the all-padding row
}

// ---- GPU parity --------------------------------------------------------------------------------

#ifdef MUONREC_WITH_CUDA
namespace {

namespace cpu = muonrec::kernels::cpu;
namespace gpu = muonrec::kernels::cuda;

// A device buffer whose every byte is 0xFF (NaN as f32): an element a kernel forgets to write fails
// the (finite-only) comparison.
Tensor poisoned(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32, Device::CUDA);
  fill_bytes(t.raw_data(), Device::CUDA, 0xFF, t.nbytes());
  return t;
}

std::vector<float> download(const Tensor& t) {
  device_synchronize();
  return t.to_f32_vector();
}

// Four sequences: one without padding, one left-padded by a third, one with only its last position
// real and one all padding (a row with no visible key: its outputs are 0, not NaN).
Tensor mixed_padding_mask(int64_t seq) {
  const int64_t batch = 4;
  std::vector<float> v(static_cast<size_t>(batch * seq), 1.0f);
  const int64_t padded[batch] = {0, seq / 3, seq - 1, seq};
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < padded[b]; ++t) v[b * seq + t] = 0.0f;
  return Tensor::from_f32(v, {batch, seq});
}

// Per bias entry (the 2T-1 offsets, then the time buckets), the sum of |dz_bhij| over its terms, in
// double: the scale of the rounding error of a bias gradient whose terms cancel. With T=1 the one
// offset sums six terms, and the fp32 rounding of each (in a different order on each device) can
// be a large part of their sum.
std::vector<double> bias_grad_scales(const float* uvqk, const float* valid, const float* pos_bias,
                                     const float* time_bias, const int32_t* buckets, const float* dout, int64_t B,
                                     int64_t T, int64_t H, int64_t Dh, int64_t num_buckets) {
  const int64_t d = H * Dh, num_offsets = 2 * T - 1;
  std::vector<double> scale(static_cast<size_t>(num_offsets + num_buckets), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          if (valid[b * T + j] == 0.0f) continue;
          const float* row_i = uvqk + (b * T + i) * 4 * d + h * Dh;
          const float* row_j = uvqk + (b * T + j) * 4 * d + h * Dh;
          const float* dout_i = dout + (b * T + i) * d + h * Dh;
          double z = pos_bias[j - i + T - 1], dw = 0.0;
          for (int64_t c = 0; c < Dh; ++c) {
            z += static_cast<double>(row_i[2 * d + c]) * row_j[3 * d + c];
            dw += static_cast<double>(dout_i[c]) * row_j[d + c];
          }
          const int64_t bucket = time_bias ? buckets[(b * T + i) * T + j] : -1;
          if (bucket >= 0) z += time_bias[bucket];
          const double s = 1.0 / (1.0 + std::exp(-z));
          const double term = std::fabs(dw * s * (1.0 + z * (1.0 - s)) / static_cast<double>(T));
          scale[j - i + T - 1] += term;
          if (bucket >= 0) scale[num_offsets + bucket] += term;
        }
  return scale;
}

// ||a - b|| / ||scale||; infinity when a holds a NaN/inf (left poisoned).
double scaled_error(const std::vector<float>& a, const std::vector<float>& b, const double* scale) {
  double diff = 0.0, norm = 0.0;
  for (size_t k = 0; k < a.size(); ++k) {
    if (!std::isfinite(a[k])) return INFINITY;
    diff += (static_cast<double>(a[k]) - b[k]) * (static_cast<double>(a[k]) - b[k]);
    norm += scale[k] * scale[k];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

struct HstuCase {
  int64_t head_dim, seq;
  bool with_time;
};

// Test listings show the case, not the struct's raw bytes (padding included).
void PrintTo(const HstuCase& c, std::ostream* os) {
  *os << "Dh=" << c.head_dim << " T=" << c.seq << (c.with_time ? " with time" : " no time");
}

std::string hstu_case_name(const ::testing::TestParamInfo<HstuCase>& info) {
  return fmt::format("D{}_T{}_{}", info.param.head_dim, info.param.seq, info.param.with_time ? "time" : "no_time");
}

// Head dims around the kernels' buckets (16, 32, 64, 128; 160 takes the 256 bucket with 32-row
// tiles), odd ones included; lengths of one position, under one tile, and just over 3 and 4 tiles.
std::vector<HstuCase> hstu_cases() {
  std::vector<HstuCase> cases;
  for (int64_t head_dim : {16, 24, 50, 64, 128, 160})
    for (int64_t seq : {1, 37, 200, 257})
      for (bool with_time : {true, false}) cases.push_back(HstuCase{head_dim, seq, with_time});
  return cases;
}

class HstuLaunchersGpu : public ::testing::TestWithParam<HstuCase> {};

}  // namespace

// Parity of the launchers with the CPU reference (H=2, mixed padding), outputs poisoned before the
// call, and a second backward bit-identical to the first.
TEST_P(HstuLaunchersGpu, match_cpu_and_are_deterministic) {
  SKIP_WITHOUT_GPU();
  const HstuCase& c = GetParam();
  const int64_t B = 4, T = c.seq, H = 2, Dh = c.head_dim, d = H * Dh, buckets = 129;
  const uint64_t seed = static_cast<uint64_t>(1000 * Dh + T);
  Tensor uvqk = random_tensor({B, T, 4 * d}, seed, 0.5f), valid = mixed_padding_mask(T);
  Tensor pos_bias = random_tensor({2 * T - 1}, seed + 1, 0.5f), time_bias = random_tensor({buckets}, seed + 2, 0.5f);
  Tensor time_buckets = ops::cast(random_buckets(B, T, buckets, seed + 3), DType::I32);
  Tensor dout = random_tensor({B, T, d}, seed + 4);
  const float* cpu_time_bias = c.with_time ? time_bias.data<float>() : nullptr;
  const int32_t* cpu_buckets = c.with_time ? time_buckets.data<int32_t>() : nullptr;
  std::vector<float> out(B * T * d), duvqk(B * T * 4 * d), dpos(2 * T - 1), dtime(buckets);
  cpu::hstu_attention_forward(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), cpu_time_bias,
                              cpu_buckets, out.data(), B, T, H, Dh);
  cpu::hstu_attention_backward(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), cpu_time_bias,
                               cpu_buckets, dout.data<float>(), duvqk.data(), dpos.data(),
                               c.with_time ? dtime.data() : nullptr, B, T, H, Dh, buckets);

  Tensor g_uvqk = uvqk.to(Device::CUDA), g_valid = valid.to(Device::CUDA), g_pos = pos_bias.to(Device::CUDA);
  Tensor g_time = time_bias.to(Device::CUDA), g_buckets = time_buckets.to(Device::CUDA), g_dout = dout.to(Device::CUDA);
  const float* gpu_time_bias = c.with_time ? g_time.data<float>() : nullptr;
  const int32_t* gpu_buckets = c.with_time ? g_buckets.data<int32_t>() : nullptr;
  Tensor g_out = poisoned({B, T, d});
  gpu::hstu_attention_forward(g_uvqk.data<float>(), g_valid.data<float>(), g_pos.data<float>(), gpu_time_bias,
                              gpu_buckets, g_out.data<float>(), B, T, H, Dh, current_stream());
  // Returns d uvqk, d pos_bias and (with timestamps) d time_bias of one backward into fresh poison.
  auto run_backward = [&] {
    Tensor g_duvqk = poisoned({B, T, 4 * d}), g_dpos = poisoned({2 * T - 1}), g_dtime = poisoned({buckets});
    gpu::hstu_attention_backward(g_uvqk.data<float>(), g_valid.data<float>(), g_pos.data<float>(), gpu_time_bias,
                                 gpu_buckets, g_dout.data<float>(), g_duvqk.data<float>(), g_dpos.data<float>(),
                                 c.with_time ? g_dtime.data<float>() : nullptr, B, T, H, Dh, buckets, current_stream());
    return std::vector<std::vector<float>>{download(g_duvqk), download(g_dpos),
                                           c.with_time ? download(g_dtime) : std::vector<float>()};
  };
  const auto first = run_backward(), second = run_backward();
  // relative_error is infinite when an element is not finite, i.e. left poisoned.
  EXPECT_LT(relative_error(download(g_out), out), 1e-5) << "forward";
  EXPECT_LT(relative_error(first[0], duvqk), 1e-5) << "duvqk";
  // The bias gradients are sums over (b, h, i, j): their error is measured against their terms.
  const std::vector<double> scale =
      bias_grad_scales(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), cpu_time_bias, cpu_buckets,
                       dout.data<float>(), B, T, H, Dh, buckets);
  EXPECT_LT(scaled_error(first[1], dpos, scale.data()), 1e-5) << "dpos_bias";
  if (c.with_time) {
    EXPECT_LT(scaled_error(first[2], dtime, scale.data() + 2 * T - 1), 1e-5) << "dtime_bias";
  }
  for (size_t k = 0; k < first.size(); ++k)
    EXPECT_EQ(std::memcmp(first[k].data(), second[k].data(), first[k].size() * sizeof(float)), 0)
        << "backward output " << k << " differs between two runs";
}

INSTANTIATE_TEST_SUITE_P(Shapes, HstuLaunchersGpu, ::testing::ValuesIn(hstu_cases()), hstu_case_name);

TEST(HstuKernelsGpu, launchers_reject_head_dims_above_256) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 1, T = 3, Dh = 257;
  Tensor uvqk = random_tensor({B, T, 4 * Dh}, 67, 0.5f, Device::CUDA), valid = Tensor::full({B, T}, 1.0f, Device::CUDA);
  Tensor pos_bias = random_tensor({2 * T - 1}, 68, 0.5f, Device::CUDA), out = poisoned({B, T, Dh});
  EXPECT_THROW(gpu::hstu_attention_forward(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), nullptr,
                                           nullptr, out.data<float>(), B, T, 1, Dh, current_stream()),
               Error);
}

TEST(HstuKernelsGpu, split_last_matches_cpu_37x101) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 37, cols = 101, start = 29, width = 48;
  Tensor x = random_tensor({rows, cols}, 65), dout = random_tensor({rows, width}, 66);
  std::vector<float> out(rows * width), dx(rows * cols);
  cpu::split_last_forward(x.data<float>(), out.data(), rows, cols, start, width);
  cpu::split_last_backward(dout.data<float>(), dx.data(), rows, cols, start, width);
  Tensor g_x = x.to(Device::CUDA), g_dout = dout.to(Device::CUDA);
  Tensor g_out = poisoned({rows, width}), g_dx = poisoned({rows, cols});
  gpu::split_last_forward(g_x.data<float>(), g_out.data<float>(), rows, cols, start, width, current_stream());
  gpu::split_last_backward(g_dout.data<float>(), g_dx.data<float>(), rows, cols, start, width, current_stream());
  EXPECT_EQ(download(g_out), out);  // copies: bit-identical
  EXPECT_EQ(download(g_dx), dx);
}

#else  // !MUONREC_WITH_CUDA

TEST(HstuKernelsGpu, skipped_without_cuda) { GTEST_SKIP() << "built without CUDA"; }

#endif  // MUONREC_WITH_CUDA

TEST(HstuOpsGpu, backward_matches_cpu_and_is_deterministic) {
  SKIP_WITHOUT_GPU();
  const int64_t B = 5, T = 37, H = 2, d = 48, buckets = 129;
  Tensor uvqk = random_tensor({B, T, 4 * d}, 70, 0.5f), valid = left_padding_mask(B, T, 7);
  Tensor pos_bias = random_tensor({2 * T - 1}, 71, 0.5f), time_bias = random_tensor({buckets}, 72, 0.5f);
  Tensor time_buckets = random_buckets(B, T, buckets, 73), cotangent = random_tensor({B, T, d}, 74);
  // Returns output, d uvqk, d pos_bias, d time_bias on `device`, as host vectors.
  auto run = [&](Device device) {
    std::vector<Tensor> in{uvqk.clone().to(device), pos_bias.clone().to(device), time_bias.clone().to(device)};
    for (Tensor& t : in) t.set_requires_grad(true);
    Tensor out = ops::hstu_attention(in[0], valid.to(device), in[1], in[2], time_buckets.to(device),
                                     static_cast<int>(H));
    backward(ops::sum(ops::mul(out, cotangent.to(device))));
    return std::vector<std::vector<float>>{out.to_f32_vector(), in[0].grad().to_f32_vector(),
                                           in[1].grad().to_f32_vector(), in[2].grad().to_f32_vector()};
  };
  auto cpu_result = run(Device::CPU), gpu_first = run(Device::CUDA), gpu_second = run(Device::CUDA);
  const char* what[] = {"forward", "d uvqk", "d pos_bias", "d time_bias"};
  for (size_t k = 0; k < cpu_result.size(); ++k) {
    EXPECT_LT(relative_error(gpu_first[k], cpu_result[k]), 1e-5) << what[k];
    EXPECT_EQ(std::memcmp(gpu_first[k].data(), gpu_second[k].data(), gpu_first[k].size() * sizeof(float)), 0)
        << what[k] << " differs between two GPU runs";
  }
}

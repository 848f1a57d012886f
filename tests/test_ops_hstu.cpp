// hstu_attention and split_last: forward values on hand-checkable cases, finite-difference
// gradients on the CPU reference, and GPU-vs-CPU parity of the launchers (poisoned outputs, padded
// batches, H=2, T=37, head dim 24) and of the op's backward (deterministic).
#include <cstring>

#include "test_util.h"

#ifdef MUONREC_WITH_CUDA
#include "engine/allocator.h"
#include "engine/cuda_check.h"
#include "kernels/cpu/hstu_attention.h"
#include "kernels/cpu/slice.h"
#include "kernels/cuda/hstu_attention.h"
#include "kernels/cuda/slice.h"
#endif

using namespace muonrec;
using muonrec::testkit::expect_gradients_match;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

Tensor param(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t = random_tensor(shape, seed, scale);
  t.set_requires_grad(true);
  return t;
}

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
      {param({B, T, 4 * heads * head_dim}, 51, 0.8f), param({2 * T - 1}, 52, 0.5f), param({buckets}, 53, 0.5f)});
}

TEST(OpsGrad, hstu_attention_without_timestamps) {
  const int64_t B = 3, T = 4, heads = 2, head_dim = 2;
  Tensor valid = left_padding_mask(B, T);
  expect_gradients_match(
      [valid](auto& in) { return ops::hstu_attention(in[0], valid, in[1], Tensor(), Tensor(), 2); },
      {param({B, T, 4 * heads * head_dim}, 54, 0.8f), param({2 * T - 1}, 55, 0.5f)});
}

TEST(OpsGrad, hstu_attention_gives_u_no_gradient) {
  const int64_t B = 2, T = 3, d = 4;
  Tensor uvqk = param({B, T, 4 * d}, 56);
  backward(ops::sum(ops::hstu_attention(uvqk, left_padding_mask(B, T), random_tensor({2 * T - 1}, 57), Tensor(),
                                        Tensor(), 2)));
  auto g = uvqk.grad().to_f32_vector();
  for (int64_t row = 0; row < B * T; ++row)
    for (int64_t c = 0; c < d; ++c) EXPECT_EQ(g[row * 4 * d + c], 0.0f);
}

TEST(OpsGrad, split_last) {
  expect_gradients_match([](auto& in) { return ops::split_last(in[0], 3, 4); }, {param({3, 2, 10}, 58)});
  expect_gradients_match([](auto& in) { return ops::split_last(in[0], 0, 5); }, {param({5}, 59)});
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

// Parity of the launchers with the CPU reference on a padded batch (row b has 7b padded positions),
// H=2, T=37, head dim 24, with or without a time bias.
void expect_hstu_launchers_match(bool with_time) {
  const int64_t B = 5, T = 37, H = 2, Dh = 24, d = H * Dh, buckets = 129;
  Tensor uvqk = random_tensor({B, T, 4 * d}, 60, 0.5f), valid = left_padding_mask(B, T, 7);
  Tensor pos_bias = random_tensor({2 * T - 1}, 61, 0.5f), time_bias = random_tensor({buckets}, 62, 0.5f);
  Tensor time_buckets = ops::cast(random_buckets(B, T, buckets, 63), DType::I32);
  Tensor dout = random_tensor({B, T, d}, 64);
  const float* cpu_time_bias = with_time ? time_bias.data<float>() : nullptr;
  const int32_t* cpu_buckets = with_time ? time_buckets.data<int32_t>() : nullptr;
  std::vector<float> out(B * T * d), duvqk(B * T * 4 * d), dpos(2 * T - 1), dtime(buckets);
  cpu::hstu_attention_forward(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), cpu_time_bias,
                              cpu_buckets, out.data(), B, T, H, Dh);
  cpu::hstu_attention_backward(uvqk.data<float>(), valid.data<float>(), pos_bias.data<float>(), cpu_time_bias,
                               cpu_buckets, dout.data<float>(), duvqk.data(), dpos.data(),
                               with_time ? dtime.data() : nullptr, B, T, H, Dh, buckets);

  Tensor g_uvqk = uvqk.to(Device::CUDA), g_valid = valid.to(Device::CUDA), g_pos = pos_bias.to(Device::CUDA);
  Tensor g_time = time_bias.to(Device::CUDA), g_buckets = time_buckets.to(Device::CUDA), g_dout = dout.to(Device::CUDA);
  const float* gpu_time_bias = with_time ? g_time.data<float>() : nullptr;
  const int32_t* gpu_buckets = with_time ? g_buckets.data<int32_t>() : nullptr;
  Tensor g_out = poisoned({B, T, d}), g_duvqk = poisoned({B, T, 4 * d});
  Tensor g_dpos = poisoned({2 * T - 1}), g_dtime = poisoned({buckets});
  gpu::hstu_attention_forward(g_uvqk.data<float>(), g_valid.data<float>(), g_pos.data<float>(), gpu_time_bias,
                              gpu_buckets, g_out.data<float>(), B, T, H, Dh, current_stream());
  gpu::hstu_attention_backward(g_uvqk.data<float>(), g_valid.data<float>(), g_pos.data<float>(), gpu_time_bias,
                               gpu_buckets, g_dout.data<float>(), g_duvqk.data<float>(), g_dpos.data<float>(),
                               with_time ? g_dtime.data<float>() : nullptr, B, T, H, Dh, buckets, current_stream());
  // relative_error is infinite when an element is not finite, i.e. left poisoned.
  EXPECT_LT(relative_error(download(g_out), out), 1e-5) << "forward";
  EXPECT_LT(relative_error(download(g_duvqk), duvqk), 1e-5) << "duvqk";
  EXPECT_LT(relative_error(download(g_dpos), dpos), 1e-5) << "dpos_bias";
  if (with_time) {
    EXPECT_LT(relative_error(download(g_dtime), dtime), 1e-5) << "dtime_bias";
  }
}

}  // namespace

TEST(HstuKernelsGpu, launchers_match_cpu_padded_T37_H2_D24_with_time_bias) {
  SKIP_WITHOUT_GPU();
  expect_hstu_launchers_match(true);
}

TEST(HstuKernelsGpu, launchers_match_cpu_padded_T37_H2_D24_without_timestamps) {
  SKIP_WITHOUT_GPU();
  expect_hstu_launchers_match(false);
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

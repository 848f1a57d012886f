// CPU reference ops: forward values on hand-computable cases and finite-difference gradients.
#include "test_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "muonrec/kernels/cpu/embedding.h"
#include "muonrec/kernels/cpu/loss.h"
#include "muonrec/kernels/cpu/norm.h"

using namespace muonrec;
using muonrec::testkit::expect_gradients_match;
using muonrec::testkit::random_param;
using muonrec::testkit::random_tensor;

namespace {

// Mask with left padding: row b has b zeros at the start (clamped to T-1).
Tensor left_padding_mask(int64_t batch, int64_t seq) {
  std::vector<float> v(static_cast<size_t>(batch * seq), 1.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < std::min(b, seq - 1); ++t) v[b * seq + t] = 0.0f;
  return Tensor::from_f32(v, {batch, seq});
}

}  // namespace

TEST(OpsForward, add_broadcasts_over_leading_axes) {
  Tensor a = Tensor::from_f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_f32({10, 20, 30}, {3});
  EXPECT_EQ(ops::add(a, b).to_f32_vector(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_THROW(ops::add(a, Tensor::from_f32({1, 2}, {2})), Error);
}

TEST(OpsForward, gelu_silu_relu_known_values) {
  Tensor x = Tensor::from_f32({-1.0f, 0.0f, 2.0f}, {3});
  auto g = ops::gelu(x).to_f32_vector();
  EXPECT_NEAR(g[0], -0.158655254f, 1e-6);
  EXPECT_NEAR(g[2], 1.954499736f, 1e-6);
  auto s = ops::silu(x).to_f32_vector();
  EXPECT_NEAR(s[0], -0.268941421f, 1e-6);
  EXPECT_EQ(ops::relu(x).to_f32_vector(), (std::vector<float>{0, 0, 2}));
}

TEST(OpsForward, layer_norm_rows_have_zero_mean_unit_variance) {
  Tensor x = random_tensor({5, 33}, 1, 3.0f);
  auto y = ops::layer_norm(x, Tensor(), Tensor(), 1e-5f).to_f32_vector();
  for (int r = 0; r < 5; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < 33; ++c) mean += y[r * 33 + c] / 33.0;
    for (int c = 0; c < 33; ++c) var += (y[r * 33 + c] - mean) * (y[r * 33 + c] - mean) / 33.0;
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(var, 1.0, 1e-3);
  }
}

// Rows far from zero against their spread (1000 + noise of 0.01): centred on the mean rounded to
// float, the outputs were off by up to 3e-3; on the double mean they are float-exact.
// eps inside the square root, as torch.nn.LayerNorm: a row of variance 1e-6 with eps 1e-5 scales
// by 1/sqrt(1.1e-5) (1/(sqrt(var) + eps) would give 0.990 in place of 0.3015).
TEST(OpsForward, layer_norm_adds_eps_to_the_variance) {
  const Tensor y = ops::layer_norm(Tensor::from_f32({1e-3f, -1e-3f}, {1, 2}), Tensor(), Tensor(), 1e-5f);
  const double expected = 1e-3 / std::sqrt(1e-6 + 1e-5);
  EXPECT_NEAR(y.to_f32_vector()[0], expected, 1e-5);
  EXPECT_NEAR(y.to_f32_vector()[1], -expected, 1e-5);
}

TEST(OpsForward, layer_norm_of_rows_with_a_large_mean_matches_double_precision) {
  const int64_t rows = 16, cols = 64;
  std::vector<float> x = random_tensor({rows, cols}, 3, 0.01f).to_f32_vector();
  for (float& value : x) value += 1000.0f;
  const std::vector<float> y = ops::layer_norm(Tensor::from_f32(x, {rows, cols}), Tensor(), Tensor(), 1e-5f)
                                   .to_f32_vector();
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mean += x[r * cols + c] / double(cols);
    for (int64_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mean) * (x[r * cols + c] - mean) / double(cols);
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_NEAR(y[r * cols + c], (x[r * cols + c] - mean) / std::sqrt(var + 1e-5), 1e-5) << r << ", " << c;
  }
}

// The weight and bias gradients sum over every row of a batch (here 1024 windows of 200): a float
// running sum came to 205.28 where the sum is 204.8.
TEST(OpsForward, layer_norm_parameter_gradients_sum_many_rows_exactly) {
  const int64_t rows = 1024 * 200, cols = 2;
  std::vector<float> x(rows * cols), mean(rows), rstd(rows), y(rows * cols), dx(rows * cols);
  for (int64_t r = 0; r < rows; ++r) x[r * cols] = -1.0f, x[r * cols + 1] = 1.0f;
  const std::vector<float> weight(cols, 1.0f), bias(cols, 0.0f), dy(rows * cols, 1e-3f);
  kernels::cpu::layer_norm_forward(x.data(), weight.data(), bias.data(), y.data(), mean.data(), rstd.data(), rows,
                                   cols, 0.0f);
  std::vector<float> dweight(cols), dbias(cols);
  kernels::cpu::layer_norm_backward(x.data(), weight.data(), mean.data(), rstd.data(), dy.data(), dx.data(),
                                    dweight.data(), dbias.data(), rows, cols);
  const double expected = rows * double(1e-3f);
  EXPECT_NEAR(dbias[0], expected, expected * 1e-6);
  EXPECT_NEAR(dbias[1], expected, expected * 1e-6);
  EXPECT_NEAR(dweight[0], -expected, expected * 1e-6);
  EXPECT_NEAR(dweight[1], expected, expected * 1e-6);
}

TEST(OpsForward, cross_entropy_matches_hand_computation_and_ignores_negative_targets) {
  Tensor logits = Tensor::from_f32({1, 2, 3, 0, 0, 0, 5, 5, 5}, {3, 3});
  Tensor targets = Tensor::from_i64({2, -1, 0}, {3});
  float expected = ((std::log(std::exp(1.f) + std::exp(2.f) + std::exp(3.f)) - 3.f) + std::log(3.f)) / 2.f;
  EXPECT_NEAR(ops::cross_entropy(logits, targets).item(), expected, 1e-6);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_i64({3, 0, 0}, {3})), Error);
}

#ifdef _OPENMP
// The mean cross-entropy has the same bits on any thread count. Rows 0 and 1 lose 2^24 and 105
// (their target's logit far below the other's), the 62 others about 1e-9 each: in row order the
// small losses vanish against 2^24 + 105 and the mean (2^24 + 105) / 64 is a tie between two floats,
// rounded to even (262145.625); summed per thread first, they add up to enough to round it up.
TEST(OpsForward, cross_entropy_mean_has_the_same_bits_on_any_thread_count) {
  const int64_t rows = 64, classes = 2;
  std::vector<float> logits = {-16777216.0f, 0.0f, -105.0f, 0.0f};
  const std::vector<int64_t> targets(rows, 0);
  for (int64_t r = 2; r < rows; ++r) logits.insert(logits.end(), {0.0f, -20.8f});
  auto mean_loss = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> logsumexp(rows);
    float loss = 0, count = 0;
    kernels::cpu::cross_entropy_forward(logits.data(), targets.data(), &loss, logsumexp.data(), &count, rows,
                                        classes);
    return loss;
  };
  const int threads = omp_get_max_threads();
  const float serial = mean_loss(1), parallel = mean_loss(4);
  omp_set_num_threads(threads);
  EXPECT_EQ(serial, 262145.625f);
  EXPECT_EQ(parallel, 262145.625f);
}
#endif

TEST(OpsForward, attention_padded_query_sees_only_itself) {
  const int64_t B = 1, T = 3, d = 4;
  Tensor qkv = random_tensor({B, T, 3 * d}, 2);
  Tensor valid = Tensor::from_f32({0, 1, 1}, {B, T});
  auto out = ops::causal_attention(qkv, valid, 2).to_f32_vector();
  auto in = qkv.to_f32_vector();
  for (int c = 0; c < d; ++c) EXPECT_FLOAT_EQ(out[c], in[2 * d + c]);  // position 0 returns its own v
}

TEST(OpsForward, bidirectional_attention_sees_every_valid_key) {
  // One head of width 2, so the expected output is a hand-written softmax over keys.
  const int64_t T = 4, d = 2;
  Tensor qkv = random_tensor({1, T, 3 * d}, 40);
  Tensor valid = Tensor::from_f32({0, 1, 1, 1}, {1, T});
  auto in = qkv.to_f32_vector();
  auto out = ops::attention(qkv, valid, 1, /*causal=*/false).to_f32_vector();
  auto causal = ops::attention(qkv, valid, 1, /*causal=*/true).to_f32_vector();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t i = 0; i < T; ++i) {
    // Keys 1..3 (valid) and i itself; padding key 0 only for query 0.
    double weights[T] = {}, total = 0.0, expected[d] = {};
    for (int64_t j = 0; j < T; ++j) {
      if (j == 0 && i != 0) continue;
      double dot = 0.0;
      for (int64_t c = 0; c < d; ++c) dot += in[i * 3 * d + c] * in[j * 3 * d + d + c];
      weights[j] = std::exp(dot * scale);
      total += weights[j];
    }
    for (int64_t j = 0; j < T; ++j)
      for (int64_t c = 0; c < d; ++c) expected[c] += weights[j] / total * in[j * 3 * d + 2 * d + c];
    for (int64_t c = 0; c < d; ++c) EXPECT_NEAR(out[i * d + c], expected[c], 1e-5) << "query " << i;
  }
  // The last query sees the same keys either way; earlier ones see the future only without the mask.
  for (int64_t c = 0; c < d; ++c) EXPECT_NEAR(out[(T - 1) * d + c], causal[(T - 1) * d + c], 1e-6);
  EXPECT_GT(std::fabs(out[1 * d] - causal[1 * d]) + std::fabs(out[1 * d + 1] - causal[1 * d + 1]), 1e-4);
}

TEST(OpsForward, attention_continued_equals_causal_attention_over_concatenated_rows) {
  // Three contexts of T = 7 (context 1 left-padded by 3, context 2 all padding), five new rows of
  // S = 3 continuing contexts {2, 0, 2, 1, 0}; two heads of width 5 (not a multiple of 8).
  const int64_t R = 3, T = 7, N = 5, S = 3, L = T + S, d = 10, packed = 3 * d;
  const std::vector<int64_t> context_rows = {2, 0, 2, 1, 0};
  Tensor context_qkv = random_tensor({R, T, packed}, 61), qkv_new = random_tensor({N, S, packed}, 62);
  std::vector<float> context_valid(R * T, 1.0f);
  for (int64_t t = 0; t < 3; ++t) context_valid[1 * T + t] = 0.0f;
  for (int64_t t = 0; t < T; ++t) context_valid[2 * T + t] = 0.0f;
  Tensor valid = Tensor::from_f32(context_valid, {R, T});

  // The reference: each row's [context, new] positions written out, causal attention over all of them.
  const std::vector<float> context_host = context_qkv.to_f32_vector(), new_host = qkv_new.to_f32_vector();
  std::vector<float> full(N * L * packed), full_valid(N * L, 1.0f);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t c = context_rows[n];
    std::copy_n(context_host.begin() + c * T * packed, T * packed, full.begin() + n * L * packed);
    std::copy_n(new_host.begin() + n * S * packed, S * packed, full.begin() + (n * L + T) * packed);
    std::copy_n(context_valid.begin() + c * T, T, full_valid.begin() + n * L);
  }
  const std::vector<float> attended =
      ops::causal_attention(Tensor::from_f32(full, {N, L, packed}), Tensor::from_f32(full_valid, {N, L}), 2)
          .to_f32_vector();
  std::vector<float> expected;
  for (int64_t n = 0; n < N; ++n)
    expected.insert(expected.end(), attended.begin() + (n * L + T) * d, attended.begin() + (n + 1) * L * d);

  Tensor direct = ops::attention_continued(qkv_new, context_qkv, valid, context_rows, 2);
  ASSERT_EQ(direct.shape(), (Shape{N, S, d}));
  EXPECT_LT(testkit::relative_error(direct.to_f32_vector(), expected), 1e-6);
  EXPECT_LT(testkit::relative_error(ops::attention_continued_by_gather(qkv_new, context_qkv, valid, context_rows, 2)
                                        .to_f32_vector(),
                                    expected),
            1e-6);

  // A context row out of range, mismatched widths, and inputs that ask for a gradient are refused.
  EXPECT_THROW(ops::attention_continued(qkv_new, context_qkv, valid, {0, 1, 2, 3, 0}, 2), Error);
  EXPECT_THROW(ops::attention_continued(qkv_new, random_tensor({R, T, 3 * 8}, 63), valid, context_rows, 2), Error);
  EXPECT_THROW(ops::attention_continued(random_param({N, S, packed}, 64), context_qkv, valid, context_rows, 2), Error);
}

TEST(OpsForward, row_dot_matches_hand_computation_and_checks_shapes) {
  Tensor h = Tensor::from_f32({1, 2, -1, 0.5f}, {2, 2});
  Tensor c = Tensor::from_f32({1, 1, 3, -1, 0, 0, /* row 1 */ 2, 4, 1, 1, -2, 0}, {2, 3, 2});
  EXPECT_EQ(ops::row_dot(h, c).to_f32_vector(), (std::vector<float>{3, 1, 0, 0, -0.5f, 2}));
  EXPECT_EQ(ops::row_dot(h, Tensor::empty({2, 0, 2})).shape(), (Shape{2, 0}));
  EXPECT_THROW(ops::row_dot(h, Tensor::empty({3, 3, 2})), Error);  // rows differ
  EXPECT_THROW(ops::row_dot(h, Tensor::empty({2, 3, 3})), Error);  // widths differ
  EXPECT_THROW(ops::row_dot(h, Tensor::empty({2, 2})), Error);     // c is not [R, M, d]
}

TEST(OpsForward, concat_rows_stacks_the_leading_axis_and_checks_the_rest) {
  Tensor a = Tensor::from_f32({1, 2, 3, 4}, {1, 2, 2});
  Tensor b = Tensor::from_f32({5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 2});
  Tensor c = ops::concat_rows(a, b);
  EXPECT_EQ(c.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(c.to_f32_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(ops::concat_rows(Tensor::empty({0, 2, 2}), a).to_f32_vector(), a.to_f32_vector());
  testkit::expect_error([&] { ops::concat_rows(a, Tensor::empty({2, 4})); },
                        {"concat_rows", "[1, 2, 2]", "[2, 4]", "beyond the leading axis"});
  testkit::expect_error([&] { ops::concat_rows(a, Tensor::empty({2, 2, 3})); }, {"[2, 2, 3]"});
}

TEST(OpsForward, embedding_rejects_out_of_range_ids) {
  Tensor w = random_tensor({4, 3}, 3);
  EXPECT_THROW(ops::embedding(w, Tensor::from_i64({1, 4}, {2})), Error);
  EXPECT_THROW(ops::embedding(w, Tensor::from_i64({-1}, {1})), Error);
  // The node keeps the forward's ids: written into before the backward, they are checked again.
  Tensor table = random_param({4, 3}, 4);
  Tensor ids = Tensor::from_i64({1, 2}, {2});
  Tensor loss = ops::sum(ops::embedding(table, ids));
  ids.data<int64_t>()[1] = int64_t{1} << 40;
  testkit::expect_error([&] { backward(loss); },
                        {"embedding backward (the ids were changed after the forward): id 1099511627776 at position 1"});
}

// Edge sizes an op must refuse or handle, not crash on: no classes, empty broadcasts, offsets whose
// sum overflows, I64 buckets beyond 32 bits; and messages that name the op.
TEST(OpsForward, empty_and_overflowing_arguments_are_refused_or_handled) {
  testkit::expect_error([] { ops::cross_entropy(Tensor::zeros({2, 0}), Tensor::from_i64({-1, -1}, {2})); },
                        {"cross_entropy: logits [2, 0] have no classes"});
  testkit::expect_error([] { ops::add(Tensor::zeros({0, 3}), Tensor::zeros({5, 7})); },
                        {"add: shape [5, 7] does not broadcast onto [0, 3]"});
  Tensor b = Tensor::zeros({0}).set_requires_grad(true);
  backward(ops::sum(ops::add(Tensor::zeros({2, 0}), b)));  // empty a, g and b: nothing to sum, no division by 0
  EXPECT_EQ(b.grad().shape(), (Shape{0}));
  Tensor x = random_tensor({2, 4}, 1);
  testkit::expect_error([&] { ops::split_last(x, INT64_MAX, 1); },
                        {"split_last: 1 columns from column 9223372036854775807 are outside the last axis of [2, 4]"});
  testkit::expect_error([&] { ops::split_last(x, 1, INT64_MAX); }, {"split_last", "outside the last axis"});
  testkit::expect_error([] { ops::scale_rows(Tensor::zeros({}), Tensor::zeros({1})); },
                        {"scale_rows: x must have at least one axis, got shape []"});
  testkit::expect_error([] { ops::mean(Tensor()); }, {"mean"});

  // hstu_attention's I64 time buckets are range-checked before the cast to I32, which would wrap
  // 2^32 + 1 to 1.
  const int64_t B = 1, T = 2, d = 4;
  Tensor uvqk = random_tensor({B, T, 4 * d}, 2), valid = Tensor::full({B, T}, 1.0f);
  Tensor pos_bias = Tensor::zeros({2 * T - 1}), time_bias = Tensor::zeros({3});
  Tensor buckets = Tensor::from_i64({0, 0, (int64_t{1} << 32) + 1, 0}, {B, T, T});
  testkit::expect_error([&] { ops::hstu_attention(uvqk, valid, pos_bias, time_bias, buckets, 1); },
                        {"hstu_attention: time bucket 4294967297 at position 2 is outside [0, 3)"});
}

TEST(OpsForward, dropout_same_generator_state_same_mask_and_rate) {
  Tensor x = Tensor::full({10000}, 1.0f);
  PhiloxGenerator g1(42), g2(42);
  auto a = ops::dropout(x, 0.3f, g1, true).to_f32_vector();
  auto b = ops::dropout(x, 0.3f, g2, true).to_f32_vector();
  EXPECT_EQ(a, b);
  int dropped = 0;
  for (float v : a) {
    if (v == 0.0f) ++dropped;
    else EXPECT_NEAR(v, 1.0f / 0.7f, 1e-6);
  }
  EXPECT_NEAR(dropped / 10000.0, 0.3, 0.02);
  auto c = ops::dropout(x, 0.3f, g1, true).to_f32_vector();  // next offset: a new mask
  EXPECT_NE(a, c);
  EXPECT_EQ(ops::dropout(x, 0.3f, g1, false).to_f32_vector(), x.to_f32_vector());
}

// Element i keeps its value exactly when the Philox draw of (seed, offset, i) is >= p, on a length
// that is not a multiple of four and is long enough to be split over threads.
TEST(OpsForward, dropout_mask_is_the_per_element_philox_draw) {
  const int64_t n = 40003;
  Tensor x = random_tensor({n}, 5);
  const std::vector<float> in = x.to_f32_vector();
  for (float p : {0.1f, 0.25f, 0.3f}) {  // 0.1 and 0.3 are not multiples of 2^-24
    PhiloxGenerator gen(7, 11);
    const uint64_t offset = gen.offset();
    const std::vector<float> out = ops::dropout(x, p, gen, true).to_f32_vector();
    const float keep_scale = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = philox_uniform(7, offset, static_cast<uint64_t>(i)) >= p;
      ASSERT_EQ(out[i], keep ? in[i] * keep_scale : 0.0f) << "p " << p << " element " << i;
    }
  }
}

TEST(OpsForward, bf16_round_trip_and_rounding) {
  Tensor x = Tensor::from_f32({1.0f, 1.00390625f, -3.5f, 1e-3f}, {4});
  Tensor back = ops::cast(ops::cast(x, DType::BF16), DType::F32);
  auto v = back.to_f32_vector();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 1.0f);  // exactly halfway between 1 and 1.0078125: ties to even
  EXPECT_EQ(v[2], -3.5f);
  EXPECT_NEAR(v[3], 1e-3f, 1e-5f);
}

TEST(OpsGrad, add_same_shape_and_broadcast) {
  expect_gradients_match([](auto& in) { return ops::add(in[0], in[1]); },
                         {random_param({3, 4}, 1), random_param({3, 4}, 2)});
  expect_gradients_match([](auto& in) { return ops::add(in[0], in[1]); },
                         {random_param({2, 3, 4}, 3), random_param({3, 4}, 4)});
}

TEST(OpsGrad, mul_scale_scale_rows) {
  expect_gradients_match([](auto& in) { return ops::mul(in[0], in[1]); },
                         {random_param({5, 3}, 5), random_param({5, 3}, 6)});
  expect_gradients_match([](auto& in) { return ops::scale(in[0], -2.5f); }, {random_param({7}, 7)});
  Tensor rows = Tensor::from_f32({1, 0, 0.5f}, {3});
  expect_gradients_match([rows](auto& in) { return ops::scale_rows(in[0], rows); }, {random_param({3, 4}, 8)});
}

TEST(OpsGrad, activations) {
  // Keep inputs away from ReLU's kink, where central differences are meaningless.
  Tensor x = random_param({6, 5}, 9);
  float* p = x.data<float>();
  for (int i = 0; i < 30; ++i)
    if (std::fabs(p[i]) < 0.1f) p[i] += 0.3f;
  expect_gradients_match([](auto& in) { return ops::gelu(in[0]); }, {x});
  expect_gradients_match([](auto& in) { return ops::silu(in[0]); }, {x});
  expect_gradients_match([](auto& in) { return ops::relu(in[0]); }, {x});
}

TEST(OpsGrad, dropout) {
  expect_gradients_match(
      [](auto& in) {
        PhiloxGenerator gen(5);
        return ops::dropout(in[0], 0.25f, gen, true);
      },
      {random_param({8, 9}, 10)});
}

TEST(OpsGrad, linear_with_and_without_bias_and_matmul) {
  expect_gradients_match([](auto& in) { return ops::linear(in[0], in[1], in[2]); },
                         {random_param({2, 3, 5}, 11), random_param({4, 5}, 12), random_param({4}, 13)});
  expect_gradients_match([](auto& in) { return ops::linear(in[0], in[1]); },
                         {random_param({6, 5}, 14), random_param({3, 5}, 15)});
  expect_gradients_match([](auto& in) { return ops::matmul(in[0], in[1]); },
                         {random_param({4, 6}, 16), random_param({6, 3}, 17)});
}

// No input features: the output is the bias on every row (not what a reused block held), and the
// bias gradient sums every row.
TEST(OpsGrad, linear_of_no_input_features_is_the_bias) {
  { Tensor junk = Tensor::full({4, 3}, 7.0f); }  // a freed block the output could reuse
  Tensor x = Tensor::zeros({2, 2, 0});
  Tensor weight = random_param({3, 0}, 1), bias = Tensor::from_f32({1, 2, 3}, {3});
  bias.set_requires_grad(true);
  Tensor y = ops::linear(x, weight, bias);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(y.to_f32_vector(), (std::vector<float>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}));
  backward(ops::sum(y));
  EXPECT_EQ(bias.grad().to_f32_vector(), (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(ops::scale_rows(Tensor::zeros({4, 0}), Tensor::zeros({4})).shape(), (Shape{4, 0}));
}

TEST(OpsGrad, layer_norm_affine_and_plain) {
  expect_gradients_match([](auto& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-5f); },
                         {random_param({4, 7}, 18), random_param({7}, 19), random_param({7}, 20)});
  expect_gradients_match([](auto& in) { return ops::layer_norm(in[0], Tensor(), Tensor(), 1e-6f); },
                         {random_param({3, 2, 6}, 21)});
}

TEST(OpsGrad, l2_normalize) {
  expect_gradients_match([](auto& in) { return ops::l2_normalize(in[0], 1e-6f); }, {random_param({5, 6}, 22)});
}

// The CPU kernel adds into the rows in use (the training arena is zeroed once a step) and leaves
// the others alone.
TEST(OpsForward, embedding_backward_adds_into_the_rows_in_use) {
  const std::vector<float> grad_out = {1, 2, 10, 20, 100, 200};  // ids 2, 2, 0; dim 2
  const std::vector<int64_t> ids = {2, 2, 0};
  std::vector<float> grad_weight(8, 1.0f);  // 4 rows
  kernels::cpu::embedding_backward(grad_out.data(), ids.data(), grad_weight.data(), 3, 4, 2);
  EXPECT_EQ(grad_weight, (std::vector<float>{101, 201, 1, 1, 12, 23, 1, 1}));
}

TEST(OpsGrad, embedding_with_repeated_ids) {
  Tensor ids = Tensor::from_i64({1, 3, 1, 0, 3, 3}, {2, 3});
  expect_gradients_match([ids](auto& in) { return ops::embedding(in[0], ids); }, {random_param({5, 4}, 23)});
}

TEST(OpsGrad, causal_attention_padded_multi_head) {
  Tensor valid = left_padding_mask(3, 5);
  expect_gradients_match([valid](auto& in) { return ops::causal_attention(in[0], valid, 2); },
                         {random_param({3, 5, 3 * 6}, 24, 0.7f)});
}

TEST(OpsGrad, bidirectional_attention_padded_multi_head) {
  Tensor valid = left_padding_mask(3, 5);
  expect_gradients_match([valid](auto& in) { return ops::attention(in[0], valid, 2, /*causal=*/false); },
                         {random_param({3, 5, 3 * 6}, 33, 0.7f)});
}

TEST(OpsGrad, attention_all_padding_row_odd_head_dim_both_masks) {
  // Batch row 1 is all padding: each of its queries attends only itself, so its output is its own
  // value and its q and k get no gradient. Head dim 5 (odd).
  Tensor valid = Tensor::from_f32({0, 1, 1, 1, 0, 0, 0, 0}, {2, 4});
  for (bool causal : {true, false}) {
    expect_gradients_match([valid, causal](auto& in) { return ops::attention(in[0], valid, 1, causal); },
                           {random_param({2, 4, 3 * 5}, causal ? 42 : 43, 0.7f)});
  }
}

TEST(OpsGrad, row_dot_both_inputs_and_each_alone) {
  expect_gradients_match([](auto& in) { return ops::row_dot(in[0], in[1]); },
                         {random_param({4, 5}, 34), random_param({4, 3, 5}, 35)});
  Tensor fixed_c = random_tensor({4, 3, 5}, 36), fixed_h = random_tensor({4, 5}, 37);
  expect_gradients_match([fixed_c](auto& in) { return ops::row_dot(in[0], fixed_c); }, {random_param({4, 5}, 38)});
  expect_gradients_match([fixed_h](auto& in) { return ops::row_dot(fixed_h, in[0]); }, {random_param({4, 3, 5}, 39)});
}

TEST(OpsGrad, cross_entropy) {
  Tensor targets = Tensor::from_i64({2, -1, 0, 4}, {4});
  expect_gradients_match([targets](auto& in) { return ops::cross_entropy(in[0], targets); },
                         {random_param({4, 5}, 25)});
}

TEST(OpsGrad, sum_mean_and_views) {
  expect_gradients_match([](auto& in) { return ops::sum(in[0]); }, {random_param({3, 3}, 26)});
  expect_gradients_match([](auto& in) { return ops::mean(in[0]); }, {random_param({3, 3}, 27)});
  expect_gradients_match([](auto& in) { return ops::scale(in[0].reshape({-1}), 2.0f); }, {random_param({2, 3}, 28)});
  expect_gradients_match([](auto& in) { return ops::scale(in[0].narrow_rows(1, 2), 3.0f); },
                         {random_param({4, 3}, 29)});
}

TEST(OpsGrad, concat_rows_both_parts_and_each_alone) {
  // The helper weighs every output element differently, so rows routed to the wrong part fail.
  expect_gradients_match([](auto& in) { return ops::concat_rows(in[0], in[1]); },
                         {random_param({2, 3}, 31), random_param({3, 3}, 32)});
  Tensor fixed = random_tensor({3, 3}, 34);
  expect_gradients_match([fixed](auto& in) { return ops::concat_rows(in[0], fixed); }, {random_param({2, 3}, 35)});
  expect_gradients_match([fixed](auto& in) { return ops::concat_rows(fixed, in[0]); }, {random_param({1, 3}, 36)});
}

TEST(Autograd, parameter_gradients_accumulate_until_cleared) {
  Tensor w = random_param({3}, 30);
  backward(ops::sum(ops::scale(w, 2.0f)));
  backward(ops::sum(ops::scale(w, 3.0f)));
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{5, 5, 5}));
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

// backward consumes the tape: a loss computed before an earlier backward has no graph left, and is
// refused rather than reaching nothing. A parameter as its own loss accumulates into its gradient.
TEST(Autograd, a_loss_whose_graph_a_backward_consumed_is_refused) {
  Tensor w = random_param({2}, 1);
  Tensor first = ops::sum(w), second = ops::sum(ops::scale(w, 3.0f));
  backward(first);
  testkit::expect_error([&] { backward(second); }, {"backward: the loss's graph is no longer on the tape"});
  testkit::expect_error([&] { backward(first); }, {"no longer on the tape"});
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{1, 1}));
  backward(ops::add(ops::sum(w), ops::sum(ops::scale(w, 3.0f))));  // both losses at once
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{5, 5}));
  Tensor scalar = random_param({1}, 2);
  backward(scalar);
  backward(scalar);
  EXPECT_EQ(scalar.grad().to_f32_vector(), (std::vector<float>{2}));
}

// An intermediate computed before a backward has lost the node that led to its inputs: an op that
// takes it afterwards is refused (its gradient would stop there, and w would get nothing), unless
// no gradient is being recorded.
TEST(Autograd, an_intermediate_whose_graph_a_backward_consumed_is_refused_as_an_input) {
  Tensor w = Tensor::from_f32({2.0f}, {1});
  w.set_requires_grad(true);
  Tensor h = ops::scale(w, 3.0f);
  backward(ops::sum(h));
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{3}));
  testkit::expect_error([&] { ops::mul(h, h); }, {"an input of shape [1] was computed by a graph that a backward since "
                                                  "consumed"});
  {
    NoGradGuard no_grad;
    EXPECT_EQ(ops::mul(h, h).to_f32_vector(), (std::vector<float>{36}));
  }
  Tensor dropped = ops::scale(w, 2.0f);
  clear_tape();
  testkit::expect_error([&] { ops::sum(dropped); }, {"clear_tape dropped"});
  Tensor again = ops::scale(w, 3.0f);  // computed again: trains as usual
  w.zero_grad();
  backward(ops::sum(ops::mul(again, again)));
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{36}));
}

TEST(Autograd, no_grad_guard_records_nothing) {
  Tensor w = random_param({3}, 31);
  {
    NoGradGuard guard;
    Tensor y = ops::scale(w, 2.0f);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(tape_size(), 0u);
  EXPECT_THROW(backward(ops::sum(Tensor::full({2}, 1.0f))), Error);
}

TEST(Autograd, shared_input_used_twice_sums_both_paths) {
  Tensor w = random_param({4}, 32);
  backward(ops::sum(ops::add(w, w)));
  EXPECT_EQ(w.grad().to_f32_vector(), (std::vector<float>{2, 2, 2, 2}));
}

// Ops whose backward needs only where an input's gradient goes (scale, dropout, add, views,
// split_last, sum) do not keep the input's values: an intermediate nobody else holds is freed when
// the forward drops it, long before backward, and the gradients still arrive.
TEST(Autograd, intermediates_only_routed_through_are_freed_before_backward) {
  Tensor x = random_param({4, 6}, 33);
  PhiloxGenerator gen(7);
  std::vector<std::weak_ptr<Storage>> dropped;
  std::vector<float> kept_mask;
  Tensor loss;
  {
    Tensor h = ops::scale(x, 2.0f);
    Tensor d = ops::dropout(h, 0.5f, gen, /*training=*/true);
    Tensor v = d.reshape({2, 12}).narrow_rows(1, 1).reshape({2, 6});
    Tensor s = ops::split_last(v, 1, 4);
    for (float value : d.to_f32_vector()) kept_mask.push_back(value != 0.0f ? 1.0f : 0.0f);
    for (const Tensor* t : {&h, &d, &s}) dropped.push_back(t->impl()->storage);
    loss = ops::sum(ops::add(s, Tensor::full({4}, 1.0f)));
  }
  for (size_t i = 0; i < dropped.size(); ++i) EXPECT_TRUE(dropped[i].expired()) << "intermediate " << i << " kept";
  backward(loss);
  // d loss / d x = 2 x 2 (dropout's 1/(1-p)) where kept, inside rows 2..3 and columns 1..4 only.
  std::vector<float> expected(24, 0.0f);
  for (int64_t r = 2; r < 4; ++r)
    for (int64_t c = 1; c < 5; ++c) expected[r * 6 + c] = 4.0f * kept_mask[r * 6 + c];
  EXPECT_EQ(x.grad().to_f32_vector(), expected);
}

// torch's threshold_backward: ReLU passes no gradient at exactly 0 (the subgradient it picks).
TEST(OpsGrad, relu_passes_no_gradient_at_zero) {
  Tensor x = Tensor::from_f32({-1.0f, 0.0f, 2.0f}, {3}).set_requires_grad(true);
  backward(ops::sum(ops::relu(x)));
  EXPECT_EQ(x.grad().to_f32_vector(), (std::vector<float>{0, 0, 1}));
}

// F.normalize: x / max(||x||, eps). A row shorter than eps is divided by eps, not by ||x|| + eps.
TEST(OpsForward, l2_normalize_divides_by_the_norm_clamped_to_eps) {
  Tensor x = Tensor::from_f32({3.0f, 4.0f, 3e-7f, 4e-7f}, {2, 2});
  const std::vector<float> y = ops::l2_normalize(x, 1e-6f).to_f32_vector();
  EXPECT_FLOAT_EQ(y[0], 0.6f);
  EXPECT_FLOAT_EQ(y[1], 0.8f);
  EXPECT_FLOAT_EQ(y[2], 0.3f);  // 3e-7 / max(5e-7, 1e-6)
  EXPECT_FLOAT_EQ(y[3], 0.4f);
}

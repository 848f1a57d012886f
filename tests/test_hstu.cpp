// HSTU against the PyTorch fixture (timestamps included): hidden state, loss, last-position scores
// and every parameter gradient, on CPU and (where present) on the GPU; the model without
// timestamps; the time buckets on hand-computed gaps; short training runs with both optimizers.
#include "fixture_util.h"
#include "muonrec/models/hstu.h"
#include "tiny_model_config.h"
#include "train_util.h"

using namespace muonrec;
using muonrec::testkit::check_model_against_fixture;

namespace {

ModelConfig tiny_config() { return testkit::tiny_model_config("hstu", 12, 6, 2); }

// Two left-padded histories of the tiny config's window, with targets and timestamps.
struct TinyBatch {
  std::vector<int64_t> ids{0, 0, 3, 7, 7, 1, 4, 9, 2, 11, 5, 6};
  std::vector<int64_t> targets{0, 0, 7, 7, 1, 12, 9, 2, 11, 5, 6, 3};
  std::vector<int64_t> timestamps{0, 0, 100, 160, 3700, 90000, 10, 20, 40, 80, 86400, 1000000};
};

}  // namespace

TEST(HSTUFixture, matches_pytorch_on_cpu) {
  std::string path = testkit::fixture_path("hstu_tiny.safetensors");
  SKIP_WITHOUT_FIXTURE(path);
  check_model_against_fixture(path, Device::CPU);
}

TEST(HSTUFixture, matches_pytorch_on_gpu) {
  SKIP_WITHOUT_GPU();
  std::string path = testkit::fixture_path("hstu_tiny.safetensors");
  SKIP_WITHOUT_FIXTURE(path);
  check_model_against_fixture(path, Device::CUDA);
}

TEST(HSTU, parameter_names_follow_the_peer) {
  ModelConfig c = tiny_config();
  c.blocks = 1;
  auto model = make_model(c, Device::CPU, 3);
  std::vector<std::string> names;
  for (const auto& p : model->parameters().all()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"item.weight", "pos.weight", "blocks.0.pos_bias", "blocks.0.time_bias",
                                             "blocks.0.uvqk.weight", "blocks.0.out.weight", "blocks.0.out.bias"}));
  const ParameterList& params = model->parameters();
  EXPECT_EQ(params.find("blocks.0.pos_bias").shape(), (Shape{2 * c.max_len - 1}));
  EXPECT_EQ(params.find("blocks.0.time_bias").shape(), (Shape{kHstuTimeBuckets}));
  EXPECT_EQ(params.find("blocks.0.uvqk.weight").shape(), (Shape{4 * c.d, c.d}));
  EXPECT_EQ(params.find("item.weight").to_f32_vector()[0], 0.0f);  // padding row
  for (const auto& p : params.all())
    EXPECT_EQ(p.embedding, p.name == "item.weight" || p.name == "pos.weight") << p.name;
  c.heads = 3;
  EXPECT_THROW(make_model(c, Device::CPU, 3), Error);
}

TEST(HSTU, without_timestamps_the_time_bias_is_unused) {
  ModelConfig c = tiny_config();
  TinyBatch data;
  auto model = make_model(c, Device::CPU, 5);
  PhiloxGenerator gen(0);
  SequenceBatch with_time = make_sequence_batch(data.ids, data.targets, data.timestamps, 2, c.max_len, Device::CPU);
  SequenceBatch without_time = make_sequence_batch(data.ids, data.targets, {}, 2, c.max_len, Device::CPU);

  // The time biases start at zero, so both batches give the same loss at initialisation...
  model->parameters().zero_grad();
  Tensor loss_with_time = model->loss(with_time, false, gen);
  backward(loss_with_time);
  EXPECT_TRUE(model->parameters().find("blocks.0.time_bias").grad().defined());

  model->parameters().zero_grad();
  Tensor loss = model->loss(without_time, false, gen);
  EXPECT_FLOAT_EQ(loss.item(), loss_with_time.item());
  backward(loss);
  for (const auto& p : model->parameters().all()) {
    const bool is_time_bias = p.name.find("time_bias") != std::string::npos;
    // ...but without timestamps the time biases take no part: no gradient (or an all-zero one
    // where gradients live in a preallocated arena).
    if (is_time_bias) {
      if (p.tensor.grad().defined()) {
        for (float g : p.tensor.grad().to_f32_vector()) EXPECT_EQ(g, 0.0f) << p.name;
      }
      continue;
    }
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    for (float g : p.tensor.grad().to_f32_vector()) ASSERT_TRUE(std::isfinite(g)) << p.name;
  }
  // And a non-zero time bias changes nothing without timestamps.
  Tensor time_bias = model->parameters().find("blocks.1.time_bias");
  time_bias.copy_from(testkit::random_tensor(time_bias.shape(), 6));
  NoGradGuard no_grad;
  EXPECT_FLOAT_EQ(model->loss(without_time, false, gen).item(), loss.item());
  EXPECT_NE(model->loss(with_time, false, gen).item(), loss.item());
}

TEST(HSTU, dropout_changes_training_but_not_evaluation) {
  ModelConfig c = tiny_config();
  c.dropout = 0.3f;
  TinyBatch data;
  auto model = make_model(c, Device::CPU, 7);
  SequenceBatch batch = make_sequence_batch(data.ids, data.targets, data.timestamps, 2, c.max_len, Device::CPU);
  NoGradGuard no_grad;
  PhiloxGenerator gen(1);
  const float eval_a = model->loss(batch, false, gen).item(), eval_b = model->loss(batch, false, gen).item();
  EXPECT_EQ(eval_a, eval_b);
  EXPECT_NE(model->loss(batch, true, gen).item(), eval_a);
}

TEST(HSTU, shorter_window_keeps_the_offsets_of_its_pos_bias) {
  // A window of T < max_len uses offsets j - i in (-T, T): pos_bias entries max_len-T .. max_len+T-2,
  // so offset 0 stays entry max_len - 1 whatever the window.
  ModelConfig c = tiny_config();
  TinyBatch data;
  const int64_t T = 4, rows = 2;
  std::vector<int64_t> ids, targets, timestamps;
  for (int64_t b = 0; b < rows; ++b)
    for (int64_t t = c.max_len - T; t < c.max_len; ++t) {
      ids.push_back(data.ids[b * c.max_len + t]);
      targets.push_back(data.targets[b * c.max_len + t]);
      timestamps.push_back(data.timestamps[b * c.max_len + t]);
    }
  auto model = make_model(c, Device::CPU, 8);
  PhiloxGenerator gen(0);
  backward(model->loss(make_sequence_batch(ids, targets, timestamps, rows, T, Device::CPU), false, gen));
  auto grad = model->parameters().find("blocks.0.pos_bias").grad().to_f32_vector();
  ASSERT_EQ(static_cast<int64_t>(grad.size()), 2 * c.max_len - 1);
  for (int64_t o = 0; o < 2 * c.max_len - 1; ++o) {
    const bool in_window = o >= c.max_len - T && o <= c.max_len - 1;  // keys at or before the query: j - i <= 0
    if (in_window) {
      EXPECT_NE(grad[o], 0.0f) << "offset entry " << o;
    } else {
      EXPECT_EQ(grad[o], 0.0f) << "offset entry " << o;
    }
  }
}

TEST(HSTUTimeBuckets, hand_computed_gaps) {
  // floor(ln(max(|dt|, 1)) / 0.301), clamped to [0, 128].
  EXPECT_EQ(kernels::hstu_time_bucket(0), 0);
  EXPECT_EQ(kernels::hstu_time_bucket(1), 0);
  EXPECT_EQ(kernels::hstu_time_bucket(-1), 0);
  EXPECT_EQ(kernels::hstu_time_bucket(2), 2);         // ln 2 / 0.301 = 2.30
  EXPECT_EQ(kernels::hstu_time_bucket(3), 3);         // 3.65
  EXPECT_EQ(kernels::hstu_time_bucket(10), 7);        // 7.65
  EXPECT_EQ(kernels::hstu_time_bucket(-90), 14);      // 14.95: the sign does not matter
  EXPECT_EQ(kernels::hstu_time_bucket(3600), 27);     // an hour: 27.20
  EXPECT_EQ(kernels::hstu_time_bucket(86400), 37);    // a day: 37.76
  EXPECT_EQ(kernels::hstu_time_bucket(1000000000), 68);  // 68.85
  EXPECT_EQ(kernels::hstu_time_bucket(int64_t{1} << 62), 128);  // 142.8, clamped
}

TEST(HSTUTimeBuckets, query_uses_the_next_timestamp) {
  // ts = {0, 10, 100}: ts_next = {10, 100, 100} (the last position reuses its own).
  auto buckets_of = [](const std::vector<int64_t>& ts, int64_t batch, int64_t seq) {
    return ops::hstu_time_buckets(Tensor::from_i64(ts, {batch, seq})).to_i64_vector();
  };
  std::vector<int64_t> buckets = buckets_of({0, 10, 100}, 1, 3);
  EXPECT_EQ(buckets, (std::vector<int64_t>{
                         7, 0, 14,    // i=0: dt = 10, 0, -90
                         15, 14, 0,   // i=1: dt = 100, 90, 0
                         15, 14, 0}));  // i=2: same as i=1
  std::vector<int64_t> two = buckets_of({0, 10, 100, 5, 5, 5}, 2, 3);
  EXPECT_EQ(std::vector<int64_t>(two.begin(), two.begin() + 9), buckets);
  EXPECT_EQ(std::vector<int64_t>(two.begin() + 9, two.end()), std::vector<int64_t>(9, 0));
  EXPECT_THROW(ops::hstu_time_buckets(Tensor::from_i64({1, 2}, {2})), Error);
  if (cuda_available())  // the GPU kernel computes the same buckets
    EXPECT_EQ(ops::hstu_time_buckets(Tensor::from_i64({0, 10, 100, 5, 5, 5}, {2, 3}, Device::CUDA)).to_i64_vector(),
              two);
}

// HSTU trains with either optimizer (Muon takes the 2-D block weights, AdamW the rest under the
// muonrec policy) and learns far beyond popularity on the synthetic data.
class HSTUTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(HSTUTraining, short_run_beats_most_popular) {
  data::SequenceDataset ds = testkit::small_synthetic_dataset();
  ModelConfig c = tiny_config();
  c.n_items = ds.n_items;
  c.max_len = 20;
  c.d = 32;
  c.heads = 1;
  c.dropout = 0.1f;
  auto model = make_model(c, Device::CPU, 1);
  TrainOptions o;
  o.epochs = 6;
  o.batch_size = 32;
  o.optimizer.optimizer = GetParam();
  o.optimizer.adamw.lr = 1e-2f;
  o.eval_every = o.epochs;
  o.progress_seconds = 1e9;
  testkit::expect_beats_popularity(*model, ds, o, 2.0);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, HSTUTraining, ::testing::Values("adamw", "muon"));

// MODELS.md drops out the gated values before `out`, not out's result: with every parameter zero but
// out's bias, u = 0 makes the gated values 0, so every row of h is bias / ||bias|| whatever the mask.
TEST(HSTU, dropout_comes_before_the_output_projection) {
  ModelConfig c = testkit::tiny_model_config("hstu", 10, 6, 1);
  c.dropout = 0.5f;
  HSTU model(c, Device::CPU, 3);
  const int64_t d = c.d, T = 6;
  for (const auto& p : model.parameters().all()) {
    Tensor t = p.tensor;
    t.fill_zero();
  }
  std::vector<float> bias(static_cast<size_t>(d));
  for (int64_t k = 0; k < d; ++k) bias[k] = 1.0f + static_cast<float>(k);
  Tensor out_bias = model.parameters().find("blocks.0.out.bias");  // shares the parameter's storage
  out_bias.copy_from(Tensor::from_f32(bias, {d}));
  SequenceBatch batch = make_sequence_batch({0, 1, 2, 3, 4, 5}, std::vector<int64_t>(T, 0), {}, 1, T, Device::CPU);
  PhiloxGenerator gen(7);
  const std::vector<float> h = model.hidden(batch, true, gen).to_f32_vector();
  double norm = 0.0;
  for (float b : bias) norm += static_cast<double>(b) * b;
  norm = std::sqrt(norm);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < d; ++k) EXPECT_NEAR(h[t * d + k], bias[k] / norm, 1e-6) << t << " " << k;
}

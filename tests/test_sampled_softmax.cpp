// Sampled softmax (models/sampled_softmax.h, LossConfig): against the full softmax when the
// candidates cover the catalogue, masking of negatives equal to the positive, reproducible draws,
// the config round trip, and a short training run that beats the most-popular baseline.
#include <map>
#include <sstream>

#include "muonrec/models/sampled_softmax.h"
#include "muonrec/models/trainer.h"
#include "test_util.h"
#include "tiny_model_config.h"
#include "train_util.h"

using namespace muonrec;
using muonrec::testkit::random_param;
using muonrec::testkit::random_tensor;
using muonrec::testkit::relative_error;

namespace {

struct LossAndGrads {
  float loss;
  std::vector<float> dh, dtable;
};

LossAndGrads run(const std::function<Tensor(const Tensor&, const Tensor&)>& loss_fn, const Tensor& h0,
                 const Tensor& table0) {
  Tensor h = h0.clone().set_requires_grad(true), table = table0.clone().set_requires_grad(true);
  Tensor loss = loss_fn(h, table);
  backward(loss);
  return {loss.item(), h.grad().to_f32_vector(), table.grad().to_f32_vector()};
}

void expect_same(const LossAndGrads& a, const LossAndGrads& b, double tolerance) {
  EXPECT_NEAR(a.loss, b.loss, tolerance * std::fabs(b.loss));
  EXPECT_LT(relative_error(a.dh, b.dh), tolerance) << "gradient of h";
  EXPECT_LT(relative_error(a.dtable, b.dtable), tolerance) << "gradient of the item table";
}

}  // namespace

TEST(SampledSoftmax, candidates_covering_the_catalogue_give_the_full_softmax) {
  const int64_t n = 11, d = 6;
  const std::vector<int64_t> positives = {3, 11, 1, 7, 3};
  const int64_t R = static_cast<int64_t>(positives.size());
  // Hand-made candidates: the positive, then every other item once (no duplicates).
  std::vector<int64_t> candidates, classes;
  for (int64_t p : positives) {
    candidates.push_back(p);
    for (int64_t item = 1; item <= n; ++item)
      if (item != p) candidates.push_back(item);
    classes.push_back(p - 1);
  }
  Tensor h0 = random_tensor({R, d}, 1), table0 = random_tensor({n + 1, d}, 2);
  Tensor targets = Tensor::from_i64(classes, {R});
  for (bool l2 : {false, true}) {
    const float temperature = l2 ? 0.05f : 1.0f;
    SCOPED_TRACE(l2 ? "L2-normalised, temperature 0.05" : "plain, temperature 1");
    auto full = run(
        [&](const Tensor& h, const Tensor& table) {
          Tensor items = table.narrow_rows(1, n), q = h;
          if (l2) {
            items = ops::l2_normalize(items, 1e-6f);
            q = ops::l2_normalize(h, 1e-6f);
          }
          return ops::cross_entropy(ops::scale(ops::linear(q, items), 1.0f / temperature), targets);
        },
        h0, table0);
    auto sampled = run(
        [&](const Tensor& h, const Tensor& table) {
          return sampled_softmax_loss(h, table, candidates, n, temperature, l2);
        },
        h0, table0);
    expect_same(sampled, full, 1e-5);
    EXPECT_EQ(sampled.dtable[0], 0.0f);  // the padding row is never a candidate
    // The scores a model ranks by are those logits.
    auto scored = run(
        [&](const Tensor& h, const Tensor& table) {
          return ops::cross_entropy(sampled_softmax_scores(h, table, n, temperature, l2), targets);
        },
        h0, table0);
    expect_same(scored, sampled, 1e-5);
  }
}

// With L2-normalised logits an item's norm never entered the loss, so it must not rank the item:
// scaling one item's vector leaves every model's scores alone. Without normalisation it counts.
TEST(SampledSoftmax, models_rank_items_by_the_logits_they_trained) {
  for (const std::string kind : {"sasrec", "bert4rec", "hstu"}) {
    for (bool l2 : {true, false}) {
      SCOPED_TRACE(kind + (l2 ? ", L2-normalised" : ", plain"));
      ModelConfig c = testkit::tiny_model_config(kind, /*n_items=*/12, /*max_len=*/6, /*blocks=*/1);
      c.loss.kind = LossConfig::Kind::SampledSoftmax;
      c.loss.l2_normalize = l2;
      c.loss.temperature = 0.05f;
      auto model = make_model(c, Device::CPU, 3);
      const Tensor h = random_tensor({3, c.d}, 8);
      const std::vector<float> before = model->scores(h).to_f32_vector();
      float* item5 = model->item_embeddings().data<float>() + 5 * c.d;
      for (int64_t k = 0; k < c.d; ++k) item5[k] *= 10.0f;
      const std::vector<float> after = model->scores(h).to_f32_vector();
      if (l2) {
        EXPECT_LT(relative_error(after, before), 1e-5);
      } else {
        EXPECT_GT(relative_error(after, before), 0.1);
      }
    }
  }
}

TEST(SampledSoftmax, negatives_equal_to_the_positive_contribute_nothing) {
  const int64_t d = 5;
  Tensor h0 = random_tensor({2, d}, 3), table0 = random_tensor({9, d}, 4);
  auto loss_of = [&](const Tensor& h_init, const std::vector<int64_t>& candidates, int64_t per_row) {
    return run([&](const Tensor& h, const Tensor& t) { return sampled_softmax_loss(h, t, candidates, per_row, 1.0f, false); },
               h_init, table0);
  };
  const Tensor row0 = h0.narrow_rows(0, 1).clone(), row1 = h0.narrow_rows(1, 1).clone();
  // The positive (4) drawn twice among four negatives: the same loss and gradients as the row
  // without those two draws.
  auto masked = loss_of(row0, {4, 2, 4, 7, 4}, 5);
  auto clean = loss_of(row0, {4, 2, 7}, 3);
  expect_same(masked, clean, 1e-6);
  // Wherever the positive is drawn, the first negative slot and the last included.
  for (const std::vector<int64_t>& drawn : {std::vector<int64_t>{4, 4, 2, 7}, std::vector<int64_t>{4, 2, 7, 4}})
    expect_same(loss_of(row0, drawn, 4), clean, 1e-6);
  // In a batch, the masked row leaves the other row alone: the mean of the two clean losses.
  auto other = loss_of(row1, {8, 1, 3, 5, 6}, 5);
  auto batch = loss_of(h0, {4, 2, 4, 7, 4, /* row 1 */ 8, 1, 3, 5, 6}, 5);
  EXPECT_NEAR(batch.loss, (clean.loss + other.loss) / 2, 1e-6);
}

TEST(SampledSoftmax, draws_are_uniform_in_range_and_reproducible_from_the_seed) {
  const int64_t n = 50, K = 64;
  std::vector<int64_t> positives(500);
  for (size_t i = 0; i < positives.size(); ++i) positives[i] = 1 + static_cast<int64_t>(i % n);
  PhiloxGenerator g1(7), g2(7);
  auto a = draw_sampled_candidates(positives, K, n, g1);
  auto b = draw_sampled_candidates(positives, K, n, g2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(g1.offset(), 1u);  // one stream per call
  EXPECT_NE(draw_sampled_candidates(positives, K, n, g1), a);
  std::vector<int64_t> counts(n + 1, 0);
  for (size_t r = 0; r < positives.size(); ++r) {
    EXPECT_EQ(a[r * (K + 1)], positives[r]);
    for (int64_t k = 1; k <= K; ++k) {
      const int64_t item = a[r * (K + 1) + k];
      ASSERT_GE(item, 1);
      ASSERT_LE(item, n);
      ++counts[item];
    }
  }
  const double expected = 500.0 * K / n;  // 640 per item; sd about 25
  for (int64_t item = 1; item <= n; ++item) EXPECT_NEAR(counts[item], expected, 6 * std::sqrt(expected)) << item;
  EXPECT_THROW(draw_sampled_candidates({0}, K, n, g1), Error);
  EXPECT_THROW(draw_sampled_candidates({1}, 0, n, g1), Error);
}

TEST(SampledSoftmax, model_config_round_trip_and_old_configs_default_to_full_softmax) {
  ModelConfig c;
  c.kind = "bert4rec";
  c.n_items = 10;
  c.loss.kind = LossConfig::Kind::SampledSoftmax;
  c.loss.negatives = 17;
  c.loss.temperature = 0.05f;
  c.loss.l2_normalize = true;
  c.mask_prob = 0.3f;
  ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.loss.kind, LossConfig::Kind::SampledSoftmax);
  EXPECT_EQ(back.loss.negatives, 17);
  EXPECT_EQ(back.loss.temperature, 0.05f);
  EXPECT_TRUE(back.loss.l2_normalize);
  EXPECT_EQ(back.mask_prob, 0.3f);
  ModelConfig old = ModelConfig::from_json(
      R"({"kind":"sasrec","n_items":5,"maxlen":8,"d":16,"blocks":2,"heads":2,"ff":32,"dropout":0.0})");
  EXPECT_EQ(old.loss.kind, LossConfig::Kind::FullSoftmax);
  EXPECT_EQ(old.mask_prob, 0.2f);
  EXPECT_THROW(ModelConfig::from_json(R"({"kind":"sasrec","n_items":5,"maxlen":8,"d":16,"blocks":2,"heads":2,)"
                                      R"("ff":32,"dropout":0.0,"loss":"nope"})"),
               Error);
  EXPECT_EQ(LossConfig::kind_from_name("sampled"), LossConfig::Kind::SampledSoftmax);
  EXPECT_THROW(LossConfig::kind_from_name("sampled-softmax"), Error);
}

TEST(SampledSoftmax, model_loss_draws_from_the_training_generator) {
  ModelConfig c = testkit::tiny_model_config("sasrec", /*n_items=*/30, /*max_len=*/6, /*blocks=*/1);
  c.loss.kind = LossConfig::Kind::SampledSoftmax;
  c.loss.negatives = 10;
  auto model = make_model(c, Device::CPU, 1);
  SequenceBatch batch = make_sequence_batch({0, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6}, {0, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 30},
                                            {}, 2, 6, Device::CPU);
  PhiloxGenerator g1(5), g2(5);
  Tensor l1 = model->loss(batch, true, g1);
  EXPECT_EQ(g1.offset(), 1u);  // no dropout draws (p = 0): only the negatives
  EXPECT_EQ(l1.item(), model->loss(batch, true, g2).item());
  EXPECT_TRUE(std::isfinite(l1.item()));
  backward(l1);
  EXPECT_TRUE(model->parameters().find("item.weight").grad().defined());
  // A batch without targets (all windows too short) gives a zero loss, not an error.
  SequenceBatch empty = make_sequence_batch({0, 0, 0, 0, 0, 3}, std::vector<int64_t>(6, 0), {}, 1, 6, Device::CPU);
  Tensor zero = model->loss(empty, true, g1);
  EXPECT_EQ(zero.item(), 0.0f);
  backward(zero);
  // Full softmax draws nothing, whatever the generator.
  c.loss.kind = LossConfig::Kind::FullSoftmax;
  auto full = make_model(c, Device::CPU, 1);
  PhiloxGenerator g3(5);
  clear_tape();
  full->loss(batch, true, g3);
  clear_tape();
  EXPECT_EQ(g3.offset(), 0u);
}

TEST(SampledSoftmax, short_training_run_beats_most_popular) {
  data::SequenceDataset ds = testkit::small_synthetic_dataset();
  ModelConfig c;
  c.n_items = ds.n_items;
  c.max_len = 12;
  c.d = 32;
  c.blocks = 1;
  c.heads = 2;
  c.dropout = 0.1f;
  c.loss.kind = LossConfig::Kind::SampledSoftmax;
  c.loss.negatives = 32;
  auto model = make_model(c, Device::CPU, 1);
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 64;
  o.optimizer.adamw.lr = 5e-3f;
  o.eval_every = o.epochs;
  o.progress_seconds = 1e9;
  testkit::expect_beats_popularity(*model, ds, o, 2.0);
}

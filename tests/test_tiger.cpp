// TIGER-style generative retrieval: the token layout and windows (exact, hand-made), the model's
// window invariances, generation by trie-constrained beam search on data whose next item is a
// deterministic function of the previous one (valid, distinct items in score order, most users
// right at rank 0, with AdamW and with Muon), and the whole pipeline (item texts -> TF-IDF ->
// RQ-KMeans -> TIGER) against the most-popular baseline, with its checkpoint. CPU only, small.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "muonrec/data/export.h"
#include "muonrec/data/split.h"
#include "muonrec/data/text_fields.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_batches.h"
#include "muonrec/models/tiger_generate.h"
#include "muonrec/models/tiger_pipeline.h"
#include "muonrec/models/tiger_tokens.h"
#include "muonrec/models/recommend.h"
#include "muonrec/models/tiger_train.h"
#include "muonrec/models/training_position.h"
#include "test_util.h"

using namespace muonrec;

namespace {

namespace fs = std::filesystem;

using testkit::TempDir;

data::SequenceDataset dataset_from(std::vector<std::vector<int64_t>> sequences, int64_t n_items) {
  data::SequenceDataset ds;
  ds.source = "test";
  ds.n_items = n_items;
  ds.sequences = std::move(sequences);
  for (int64_t u = 0; u < ds.num_users(); ++u) ds.user_ids.push_back(u + 1);
  for (int64_t i = 0; i <= n_items; ++i) ds.item_source_ids.push_back(i);
  return ds;
}

// Item i is followed by item i % n + 1: the next item is a function of the previous one.
data::SequenceDataset chain_dataset(int64_t users, int64_t n_items, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<std::vector<int64_t>> sequences;
  for (int64_t u = 0; u < users; ++u) {
    int64_t item = 1 + static_cast<int64_t>(gen.uniform() * n_items) % n_items;
    const int64_t length = 5 + static_cast<int64_t>(gen.uniform() * 6);
    std::vector<int64_t> seq;
    for (int64_t t = 0; t < length; ++t, item = item % n_items + 1) seq.push_back(item);
    sequences.push_back(seq);
  }
  return dataset_from(std::move(sequences), n_items);
}

// Two levels of 4 codes for each item (so 16 prefixes for more items: some collide and the
// disambiguation token separates them).
TigerCatalog small_catalog(int64_t n_items, std::vector<int64_t>* vocab_sizes) {
  std::vector<int64_t> codes((n_items + 1) * 2, -1);
  for (int64_t i = 1; i <= n_items; ++i) {
    codes[i * 2] = i % 4;
    codes[i * 2 + 1] = (i / 4) % 4;
  }
  int64_t max_group = 0;
  std::vector<int64_t> full = semantic_id::append_disambiguation(codes, 2, &max_group);
  *vocab_sizes = {4, 4, max_group};
  return TigerCatalog::from_codes(full, n_items, *vocab_sizes);
}

std::vector<int64_t> ints(const Tensor& t) {
  const int64_t* p = t.data<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

TigerConfig small_config(const std::vector<int64_t>& vocab_sizes, int64_t head_dim = 0) {
  TigerConfig c;
  c.vocab_sizes = vocab_sizes;
  c.max_items = 6;
  c.d = 32;
  c.blocks = 1;
  c.heads = 2;
  c.head_dim = head_dim;
  c.dropout = 0.0f;
  return c;
}

TigerTrainOptions small_train_options(int64_t epochs, const std::string& optimizer) {
  TigerTrainOptions o;
  o.train.epochs = epochs;
  o.train.batch_size = 32;
  o.train.eval_every = epochs;
  o.train.progress_seconds = 1e9;
  o.train.optimizer.optimizer = optimizer;
  o.train.optimizer.adamw.lr = 1e-2f;
  o.train.optimizer.muon.lr = 0.02f;
  o.generate.beam_width = 10;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Token layout and windows

TEST(TigerTokens, VocabularyLayoutAndRoundTrip) {
  SemanticIdVocab vocab({4, 3, 2});
  EXPECT_EQ(vocab.code_length(), 3);
  EXPECT_EQ(vocab.size(), 10);  // padding + 4 + 3 + 2
  EXPECT_EQ(vocab.offset(0), 1);
  EXPECT_EQ(vocab.offset(1), 5);
  EXPECT_EQ(vocab.offset(2), 8);
  EXPECT_EQ(vocab.token(1, 2), 7);
  EXPECT_EQ(vocab.level_of(0), -1);
  for (int64_t token = 1; token < vocab.size(); ++token) {
    const int64_t level = vocab.level_of(token);
    EXPECT_EQ(vocab.token(level, vocab.code_of(token)), token);
  }
  EXPECT_THROW(vocab.token(1, 3), Error);
  EXPECT_THROW(vocab.token(3, 0), Error);
  EXPECT_THROW(vocab.level_of(10), Error);
  EXPECT_THROW(vocab.code_of(0), Error);

  // Item codes -> tokens -> codes.
  const std::vector<int64_t> codes = {-1, -1, -1,  //
                                      0,  0,  0,   //
                                      3,  2,  1,   //
                                      0,  0,  1};
  ItemTokens tokens = ItemTokens::from_codes(codes, 3, vocab);
  EXPECT_EQ(tokens.tokens, (std::vector<int64_t>{0, 0, 0, 1, 5, 8, 4, 7, 9, 1, 5, 9}));
  EXPECT_EQ(tokens.codes(), codes);
  EXPECT_THROW(ItemTokens::from_codes({-1, -1, -1, 4, 0, 0}, 1, vocab), Error);
}

TEST(TigerTokens, TrainingAndGenerationWindowsAreRightAlignedAndShifted) {
  // Two tokens per item: item i = (code i-1 at level 0, code 0 at level 1) -> tokens (i, 5).
  SemanticIdVocab vocab({4, 1});
  ItemTokens tokens = ItemTokens::from_codes({-1, -1, 0, 0, 1, 0, 2, 0, 3, 0}, 4, vocab);
  const std::vector<int64_t> items = {2, 4, 1};  // tokens 2 5 4 5 1 5
  std::vector<int64_t> ids(8), pos(8), targets(8);
  EXPECT_EQ(fill_training_window(tokens, items.data(), 3, 8, ids.data(), pos.data(), targets.data()), 5);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 0, 0, 2, 5, 4, 5, 1}));
  EXPECT_EQ(targets, (std::vector<int64_t>{0, 0, 0, 5, 4, 5, 1, 5}));
  EXPECT_EQ(pos, (std::vector<int64_t>{0, 0, 0, 2, 2, 1, 1, 0}));  // item recency, newest item 0
  // A short window keeps the newest tokens.
  ids.assign(3, -1);
  pos.assign(3, -1);
  targets.assign(3, -1);
  EXPECT_EQ(fill_training_window(tokens, items.data(), 3, 3, ids.data(), pos.data(), targets.data()), 3);
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 5, 1}));
  EXPECT_EQ(targets, (std::vector<int64_t>{5, 1, 5}));
  EXPECT_EQ(pos, (std::vector<int64_t>{1, 1, 0}));
  // One item: one target (its second token from its first).
  ids.assign(4, -1);
  pos.assign(4, -1);
  targets.assign(4, -1);
  EXPECT_EQ(fill_training_window(tokens, items.data(), 1, 4, ids.data(), pos.data(), targets.data()), 1);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 0, 0, 2}));
  EXPECT_EQ(targets, (std::vector<int64_t>{0, 0, 0, 5}));
  EXPECT_EQ(pos, (std::vector<int64_t>{0, 0, 0, 0}));

  // Generation: history then the prefix generated so far (the item being generated has recency 0).
  ids.assign(8, -1);
  pos.assign(8, -1);
  EXPECT_EQ(fill_generation_window(tokens, items.data(), 3, {3}, 8, ids.data(), pos.data()), 7);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 2, 5, 4, 5, 1, 5, 3}));
  EXPECT_EQ(pos, (std::vector<int64_t>{0, 3, 3, 2, 2, 1, 1, 0}));
  ids.assign(4, -1);
  pos.assign(4, -1);
  EXPECT_EQ(fill_generation_window(tokens, items.data(), 3, {}, 4, ids.data(), pos.data()), 4);
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 5, 1, 5}));
  EXPECT_EQ(pos, (std::vector<int64_t>{2, 2, 1, 1}));
}

TEST(TigerTokens, BatchSplitsTargetsByLevel) {
  SemanticIdVocab vocab({4, 1});
  // ids 0 2 5 4 | targets 0 5 4 5
  TigerBatch b = make_tiger_batch(vocab, {0, 2, 5, 4}, {0, 1, 1, 0}, {0, 5, 4, 5}, 1, 4, Device::CPU);
  EXPECT_EQ(ints(b.levels), (std::vector<int64_t>{0, 0, 1, 0}));
  EXPECT_EQ(ints(b.positions), (std::vector<int64_t>{0, 1, 1, 0}));
  EXPECT_EQ(b.valid.to_f32_vector(), (std::vector<float>{0, 1, 1, 1}));
  EXPECT_EQ(b.targets, 3);
  EXPECT_EQ(b.target_counts, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ints(b.target_positions[0]), (std::vector<int64_t>{2}));
  EXPECT_EQ(ints(b.target_codes[0]), (std::vector<int64_t>{3}));
  EXPECT_EQ(ints(b.target_positions[1]), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(ints(b.target_codes[1]), (std::vector<int64_t>{0, 0}));
}

// Training examples come from each user's training part only: leave-one-out keeps the last two items
// (4, 5 and 10, 11 below) for validation and test. Decoder-only: one window per user, its whole
// training part; encoder-decoder: one example per training item from the second on (its history,
// then it).
TEST(TigerTrainingBatches, ExamplesCoverTheTrainingItemsOnly) {
  const int64_t n_items = 12;
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(n_items, &vocab_sizes);
  data::SequenceDataset ds = dataset_from({{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 11}}, n_items);
  TigerConfig config = small_config(vocab_sizes);
  EXPECT_EQ(TigerTrainingBatches(catalog, ds, config).examples(), 2);
  config.encoder_blocks = 1;
  const TigerTrainingBatches seq2seq(catalog, ds, config);
  EXPECT_EQ(seq2seq.examples(), 2 + 3);  // targets 2, 3 and 7, 8, 9
  EXPECT_EQ(seq2seq.steps_per_epoch(2), 3);
  check_tiger_has_examples(ds, config);
  // Users of three events have one training item each: a window for the decoder-only model, nothing
  // for the encoder-decoder to generate from a history, which is said before any work.
  const data::SequenceDataset short_users = dataset_from({{1, 2, 3}, {4, 5, 6}}, n_items);
  EXPECT_EQ(TigerTrainingBatches(catalog, short_users, config).examples(), 0);
  testkit::expect_error([&] { check_tiger_has_examples(short_users, config); },
                        {"nothing to train on", "a user needs at least 4 events",
                         "none of the 2 users has more than 3"});
  config.encoder_blocks = 0;
  check_tiger_has_examples(short_users, config);
}

// One example as its batch row holds it: window tokens, their item recencies, and the tokens each
// position is trained to predict (0 = none), rebuilt from the per-level target lists.
struct ExampleRow {
  std::vector<int64_t> ids, positions, targets;
  bool operator<(const ExampleRow& o) const {
    return std::tie(ids, positions, targets) < std::tie(o.ids, o.positions, o.targets);
  }
  bool operator==(const ExampleRow& o) const { return !(*this < o) && !(o < *this); }
};

std::vector<ExampleRow> rows_of(const TigerBatch& b, const SemanticIdVocab& vocab, int64_t target_width) {
  const std::vector<int64_t> ids = ints(b.ids), positions = ints(b.positions);
  const int64_t rows = b.ids.shape()[0], T = b.ids.shape()[1];
  std::vector<int64_t> targets(static_cast<size_t>(rows * target_width), 0);
  for (size_t level = 0; level < b.target_codes.size(); ++level) {
    const std::vector<int64_t> at = ints(b.target_positions[level]), codes = ints(b.target_codes[level]);
    for (size_t i = 0; i < at.size(); ++i) targets[at[i]] = vocab.token(static_cast<int64_t>(level), codes[i]);
  }
  std::vector<ExampleRow> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    out[r].ids.assign(ids.begin() + r * T, ids.begin() + (r + 1) * T);
    out[r].positions.assign(positions.begin() + r * T, positions.begin() + (r + 1) * T);
    out[r].targets.assign(targets.begin() + r * target_width, targets.begin() + (r + 1) * target_width);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The tokens of items[0 .. count) with each token's item recency (the newest item `newest`).
void item_tokens(const ItemTokens& tokens, const std::vector<int64_t>& items, int64_t count, int64_t newest,
                 std::vector<int64_t>* f, std::vector<int64_t>* recency) {
  const int64_t C = tokens.vocab.code_length();
  for (int64_t i = 0; i < count; ++i)
    for (int64_t l = 0; l < C; ++l) {
      f->push_back(tokens.item(items[i])[l]);
      recency->push_back(newest + count - 1 - i);
    }
}

// What each example's row holds, from the definitions: the decoder-only window is a user's whole
// training part as tokens, each predicting the next, cut to the newest window() of them; an
// encoder-decoder example is the max_items items before a training item, and that item's tokens.
// max_items 2 makes the longer user's window cut and the shorter user's padded.
TEST(TigerTrainingBatches, RowsHoldTheNewestTrainingTokens) {
  const int64_t n_items = 12;
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(n_items, &vocab_sizes);
  const ItemTokens& tokens = catalog.tokens;
  const int64_t C = tokens.vocab.code_length();
  data::SequenceDataset ds = dataset_from({{1, 2, 3, 4}, {5, 6, 7, 8, 9, 10, 11}}, n_items);
  const std::vector<int64_t> train_lengths = {2, 5};
  TigerConfig config = small_config(vocab_sizes);
  config.max_items = 2;

  std::vector<ExampleRow> expected;
  int64_t T = 0;
  for (int64_t u = 0; u < 2; ++u) {
    std::vector<int64_t> f, recency;
    item_tokens(tokens, ds.sequences[u], train_lengths[u], 0, &f, &recency);
    const int64_t n = std::min<int64_t>(config.window(), static_cast<int64_t>(f.size()) - 1);
    ExampleRow row;
    row.ids.assign(f.end() - 1 - n, f.end() - 1);
    row.positions.assign(recency.end() - 1 - n, recency.end() - 1);
    row.targets.assign(f.end() - n, f.end());
    expected.push_back(row);
    T = std::max(T, n);
  }
  for (ExampleRow& row : expected) {  // padded on the left to the batch's longest window
    const size_t pad = static_cast<size_t>(T) - row.ids.size();
    row.ids.insert(row.ids.begin(), pad, 0);
    row.positions.insert(row.positions.begin(), pad, 0);
    row.targets.insert(row.targets.begin(), pad, 0);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_EQ(T, config.window());  // the longer user's window is cut
  const TigerTrainingBatches windows(catalog, ds, config);
  EXPECT_EQ(rows_of(windows.batch({0, 1}, Device::CPU), tokens.vocab, T), expected);

  config.encoder_blocks = 1;
  expected.clear();
  T = 0;
  for (int64_t u = 0; u < 2; ++u)
    for (int64_t target = 1; target < train_lengths[u]; ++target) {
      const int64_t first = std::max<int64_t>(0, target - config.max_items);
      const std::vector<int64_t> history(ds.sequences[u].begin() + first, ds.sequences[u].begin() + target);
      ExampleRow row;
      item_tokens(tokens, history, static_cast<int64_t>(history.size()), 1, &row.ids, &row.positions);
      const int64_t* target_tokens = tokens.item(ds.sequences[u][target]);
      row.targets.assign(target_tokens, target_tokens + C);
      expected.push_back(row);
      T = std::max(T, static_cast<int64_t>(row.ids.size()));
    }
  for (ExampleRow& row : expected) {
    const size_t pad = static_cast<size_t>(T) - row.ids.size();
    row.ids.insert(row.ids.begin(), pad, 0);
    row.positions.insert(row.positions.begin(), pad, 0);
  }
  std::sort(expected.begin(), expected.end());
  const TigerTrainingBatches seq2seq(catalog, ds, config);
  ASSERT_EQ(seq2seq.examples(), 1 + 4);
  EXPECT_EQ(rows_of(seq2seq.batch({0, 1, 2, 3, 4}, Device::CPU), tokens.vocab, C), expected);
}

// ---------------------------------------------------------------------------------------------
// Model

// Each model test runs with the heads splitting d (head_dim 0) and with heads wider than d / heads
// (2 x 24 over d 32: the cache then holds rows of 3 x 48).
class TigerModelTest : public ::testing::TestWithParam<int64_t> {};
INSTANTIATE_TEST_SUITE_P(HeadDims, TigerModelTest, ::testing::Values(0, 24));

TEST_P(TigerModelTest, ShortWindowMatchesPaddedWindowAndIsCausal) {
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  TigerModel model(small_config(vocab_sizes, GetParam()), Device::CPU, 5);
  const int64_t W = model.config().window();
  const std::vector<int64_t> items = {3, 9, 14};
  std::vector<int64_t> full(W), full_pos(W), cut(10), cut_pos(10);
  fill_generation_window(catalog.tokens, items.data(), 3, {}, W, full.data(), full_pos.data());
  fill_generation_window(catalog.tokens, items.data(), 3, {}, 10, cut.data(), cut_pos.data());
  auto a = model.next_code_log_probs(make_tiger_batch(model.vocab(), full, full_pos, {}, 1, W, Device::CPU), 0);
  auto b = model.next_code_log_probs(make_tiger_batch(model.vocab(), cut, cut_pos, {}, 1, 10, Device::CPU), 0);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_LT(testkit::relative_error(a, b), 1e-5);
  double total = 0;
  for (float v : a) total += std::exp(v);
  EXPECT_NEAR(total, 1.0, 1e-5);

  // Changing the newest token leaves every earlier position's hidden state alone.
  PhiloxGenerator unused(0);
  std::vector<int64_t> changed = full;
  const SemanticIdVocab& vocab = model.vocab();
  changed[W - 1] = vocab.token(2, 1 - vocab.code_of(full[W - 1]));  // the other disambiguation code
  Tensor h1 = model.hidden(make_tiger_batch(vocab, full, full_pos, {}, 1, W, Device::CPU), false, unused);
  Tensor h2 = model.hidden(make_tiger_batch(vocab, changed, full_pos, {}, 1, W, Device::CPU), false, unused);
  std::vector<float> v1 = h1.to_f32_vector(), v2 = h2.to_f32_vector();
  const size_t d = static_cast<size_t>(model.config().d), before = (W - 1) * d;
  EXPECT_EQ(std::vector<float>(v1.begin(), v1.begin() + before), std::vector<float>(v2.begin(), v2.begin() + before));
  EXPECT_NE(std::vector<float>(v1.begin() + before, v1.end()), std::vector<float>(v2.begin() + before, v2.end()));

  // Parameter names and the config round trip.
  EXPECT_NO_THROW(model.parameters().find("token.weight"));
  EXPECT_NO_THROW(model.parameters().find("level.weight"));
  const int64_t attention = GetParam() > 0 ? 2 * GetParam() : model.config().d;
  EXPECT_EQ(model.parameters().find("blocks.0.qkv.weight").shape(), (Shape{3 * attention, model.config().d}));
  EXPECT_EQ(model.parameters().find("blocks.0.proj.weight").shape(), (Shape{model.config().d, attention}));
  TigerConfig again = TigerConfig::from_json(model.config().to_json());
  EXPECT_EQ(again.to_json(), model.config().to_json());
  // Checkpoints written before head_dim existed load with d / heads.
  EXPECT_EQ(TigerConfig::from_json(R"({"kind": "tiger", "vocab_sizes": [4, 4], "max_items": 3, "d": 8, )"
                                   R"("blocks": 1, "heads": 2, "ff": 0, "dropout": 0.1})")
                .head_dim,
            0);
  // And before encoder_blocks existed, as the decoder-only model.
  EXPECT_FALSE(TigerConfig::from_json(R"({"kind": "tiger", "vocab_sizes": [4, 4], "max_items": 3, "d": 8, )"
                                      R"("blocks": 1, "heads": 2, "ff": 0, "dropout": 0.1})")
                   .encoder_decoder());
  EXPECT_THROW(TigerConfig::from_json(R"({"kind": "sasrec"})"), Error);
}

// The training loss is the mean over all target tokens, whatever level each is at: the loss of a
// batch times its target count is the sum of the same over the batches holding one level's targets
// alone (each level's mean weighted by its share of the targets, not 1 / levels).
// What can be checked before the vocabulary is known, with the field named.
TEST(TigerConfig, CheckShapeRefusesSettingsNoModelCanHave) {
  TigerConfig config;
  EXPECT_NO_THROW(config.check_shape());
  config.dropout = 1;
  testkit::expect_error([&] { config.check_shape(); }, {"tiger: dropout must be in [0, 1), got 1"});
  config.dropout = 0.1f;
  config.heads = 3;
  testkit::expect_error([&] { config.check_shape(); }, {"tiger: d=64 is not divisible by heads=3"});
  config.heads = 1;
  config.blocks = 0;
  testkit::expect_error([&] { config.check_shape(); }, {"blocks must be >= 1"});
}

TEST(TigerModel, LossIsTheMeanOverAllTargetTokens) {
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  TigerModel model(small_config(vocab_sizes), Device::CPU, 5);
  const SemanticIdVocab& vocab = model.vocab();
  const int64_t W = model.config().window();
  const std::vector<int64_t> items = {3, 9, 14, 2};
  std::vector<int64_t> ids(W), positions(W), targets(W);
  fill_training_window(catalog.tokens, items.data(), 4, W, ids.data(), positions.data(), targets.data());
  PhiloxGenerator unused(0);
  const TigerBatch all = make_tiger_batch(vocab, ids, positions, targets, 1, W, Device::CPU);
  ASSERT_NE(all.target_counts[0], all.target_counts[2]) << "the levels should hold different target counts";
  double weighted = 0;
  for (int64_t l = 0; l < vocab.code_length(); ++l) {
    std::vector<int64_t> level_targets = targets;
    for (int64_t& t : level_targets)
      if (t > 0 && vocab.level_of(t) != l) t = 0;
    const TigerBatch one = make_tiger_batch(vocab, ids, positions, level_targets, 1, W, Device::CPU);
    weighted += double(model.loss(one, false, unused).item()) * one.targets;
  }
  EXPECT_NEAR(model.loss(all, false, unused).item() * all.targets, weighted, 1e-5 * weighted);
}

TEST_P(TigerModelTest, CachedGenerationMatchesFullForward) {
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  TigerModel model(small_config(vocab_sizes, GetParam()), Device::CPU, 9);
  const SemanticIdVocab& vocab = model.vocab();
  // Two histories of different lengths (the shorter one left-padded in the context batch).
  const std::vector<std::vector<int64_t>> histories = {{3, 9, 14}, {5}};
  const int64_t T = 9;
  std::vector<int64_t> ids(2 * T), pos(2 * T);
  for (int r = 0; r < 2; ++r)
    fill_generation_window(catalog.tokens, histories[r].data(), static_cast<int64_t>(histories[r].size()), {}, T,
                           ids.data() + r * T, pos.data() + r * T);
  TransformerBlocks::Cache cache;
  std::vector<float> first = model.start_generation(make_tiger_batch(vocab, ids, pos, {}, 2, T, Device::CPU), cache);
  for (int r = 0; r < 2; ++r) {
    std::vector<int64_t> full(T), full_pos(T);
    fill_generation_window(catalog.tokens, histories[r].data(), static_cast<int64_t>(histories[r].size()), {}, T,
                           full.data(), full_pos.data());
    auto expected = model.next_code_log_probs(make_tiger_batch(vocab, full, full_pos, {}, 1, T, Device::CPU), 0);
    EXPECT_LT(testkit::relative_error(std::vector<float>(first.begin() + r * 4, first.begin() + r * 4 + 4), expected),
              1e-5);
  }
  // Step 1: three beams with one code each; beams 0 and 2 continue history 0, beam 1 history 1.
  // Step 2: four beams with two codes, extending the step-1 beams out of order (beam 0 twice).
  const int64_t V1 = vocab.vocab(1), V2 = vocab.vocab(2);
  auto expected_after = [&](int64_t context, const std::vector<int64_t>& codes) {
    const auto& h = histories[context];
    std::vector<int64_t> tokens;
    for (size_t l = 0; l < codes.size(); ++l) tokens.push_back(vocab.token(static_cast<int64_t>(l), codes[l]));
    const int64_t L = T + static_cast<int64_t>(codes.size());
    std::vector<int64_t> full(L), full_pos(L);
    fill_generation_window(catalog.tokens, h.data(), static_cast<int64_t>(h.size()), tokens, L, full.data(),
                           full_pos.data());
    return model.next_code_log_probs(make_tiger_batch(vocab, full, full_pos, {}, 1, L, Device::CPU),
                                     static_cast<int64_t>(codes.size()));
  };
  const std::vector<int64_t> step1_contexts = {0, 1, 0}, step1_codes = {1, 3, 0};
  std::vector<int64_t> step1_tokens;
  for (int64_t c : step1_codes) step1_tokens.push_back(vocab.token(0, c));
  std::vector<float> step1 = model.continue_generation(cache, step1_contexts, {}, step1_tokens);
  ASSERT_EQ(step1.size(), static_cast<size_t>(3 * V1));
  for (int n = 0; n < 3; ++n)
    EXPECT_LT(testkit::relative_error(std::vector<float>(step1.begin() + n * V1, step1.begin() + (n + 1) * V1),
                                      expected_after(step1_contexts[n], {step1_codes[n]})),
              1e-5)
        << "step 1, beam " << n;
  const std::vector<int64_t> parents = {2, 0, 1, 0}, step2_codes = {3, 2, 0, 1};
  std::vector<int64_t> step2_contexts, step2_tokens;
  for (size_t n = 0; n < parents.size(); ++n) {
    step2_contexts.push_back(step1_contexts[parents[n]]);
    step2_tokens.push_back(vocab.token(1, step2_codes[n]));
  }
  std::vector<float> step2 = model.continue_generation(cache, step2_contexts, parents, step2_tokens);
  ASSERT_EQ(step2.size(), static_cast<size_t>(4 * V2));
  for (int n = 0; n < 4; ++n)
    EXPECT_LT(testkit::relative_error(std::vector<float>(step2.begin() + n * V2, step2.begin() + (n + 1) * V2),
                                      expected_after(step2_contexts[n], {step1_codes[parents[n]], step2_codes[n]})),
              1e-5)
        << "step 2, beam " << n;
  // A token of the wrong level, and parents outside the previous step, are refused.
  EXPECT_THROW(model.continue_generation(cache, {0}, {0}, {vocab.token(0, 1)}), Error);
  EXPECT_THROW(model.continue_generation(cache, {0}, {4}, {vocab.token(2, 1)}), Error);
}

// Generation scores an item with the context a training window gives its codes: for a history
// longer than max_items, code l of the item is predicted from the window() - (C - 1 - l) tokens
// before it, as at the matching position of the training window that ends at the item's
// next-to-last code. (Every history item whole, then the generated codes.)
TEST_P(TigerModelTest, GenerationScoresItemsAsTheirTrainingWindowsDo) {
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  TigerModel model(small_config(vocab_sizes, GetParam()), Device::CPU, 13);
  const SemanticIdVocab& vocab = model.vocab();
  const int64_t C = vocab.code_length(), W = model.config().window();
  const std::vector<int64_t> history = {3, 9, 14, 1, 2, 7, 11, 4, 19};  // 9 items, max_items 6
  TigerGenerateOptions options;
  options.beam_width = 20;  // every item of the catalogue comes back, with its full score
  const auto hits = tiger_generate(model, catalog, {history}, options);
  ASSERT_EQ(hits[0].size(), 20u);
  for (const semantic_id::BeamHit& hit : hits[0]) {
    std::vector<int64_t> prefix;
    double expected = 0;
    for (int64_t l = 0; l < C; ++l) {
      const int64_t T = W - (C - 1 - l);
      std::vector<int64_t> ids(T), positions(T);
      fill_generation_window(catalog.tokens, history.data(), static_cast<int64_t>(history.size()), prefix, T,
                             ids.data(), positions.data());
      const int64_t code = catalog.tokens.item(hit.item)[l] - vocab.offset(l);
      expected += model.next_code_log_probs(make_tiger_batch(vocab, ids, positions, {}, 1, T, Device::CPU), l)[code];
      prefix.push_back(catalog.tokens.item(hit.item)[l]);
    }
    EXPECT_NEAR(hit.score, expected, 1e-4) << "item " << hit.item;
  }
}

namespace {

// Log-softmax of each row of h [rows, d] against token rows [offset, offset + V) of `table`.
std::vector<float> level_log_probs(const std::vector<float>& h, const std::vector<float>& table, int64_t d,
                                   int64_t offset, int64_t V) {
  const int64_t rows = static_cast<int64_t>(h.size()) / d;
  std::vector<float> out(static_cast<size_t>(rows * V));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> logits(static_cast<size_t>(V));
    for (int64_t v = 0; v < V; ++v)
      for (int64_t k = 0; k < d; ++k) logits[v] += static_cast<double>(h[r * d + k]) * table[(offset + v) * d + k];
    const double max = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double z : logits) sum += std::exp(z - max);
    for (int64_t v = 0; v < V; ++v) out[r * V + v] = static_cast<float>(logits[v] - max - std::log(sum));
  }
  return out;
}

}  // namespace

TEST_P(TigerModelTest, EncoderDecoderGenerationMatchesTheTrainingForward) {
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  TigerConfig config = small_config(vocab_sizes, GetParam());
  config.encoder_blocks = 2;
  TigerModel model(config, Device::CPU, 13);
  const SemanticIdVocab& vocab = model.vocab();
  const int64_t C = vocab.code_length(), d = config.d;
  EXPECT_EQ(model.parameters().find("encoder.blocks.1.qkv.weight").shape(), model.parameters().find("blocks.0.qkv.weight").shape());
  EXPECT_EQ(model.parameters().find("decoder.slot.weight").shape(), (Shape{C, d}));
  EXPECT_EQ(TigerConfig::from_json(config.to_json()).encoder_blocks, 2);

  // Two histories (the second left-padded) and their targets, as a training batch.
  const std::vector<std::vector<int64_t>> histories = {{3, 9, 14}, {5}};
  const std::vector<int64_t> targets = {7, 18};
  const int64_t T = 9;
  std::vector<int64_t> ids(2 * T), pos(2 * T), target_tokens;
  for (int r = 0; r < 2; ++r) {
    fill_generation_window(catalog.tokens, histories[r].data(), static_cast<int64_t>(histories[r].size()), {}, T,
                           ids.data() + r * T, pos.data() + r * T);
    target_tokens.insert(target_tokens.end(), catalog.tokens.item(targets[r]), catalog.tokens.item(targets[r]) + C);
  }
  TigerBatch batch = make_tiger_seq2seq_batch(vocab, ids, pos, target_tokens, 2, T, Device::CPU);
  EXPECT_EQ(ints(batch.decoder_ids), (std::vector<int64_t>{0, target_tokens[0], target_tokens[1], 0,
                                                             target_tokens[3], target_tokens[4]}));
  EXPECT_EQ(ints(batch.target_positions[1]), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(ints(batch.target_codes[2]), (std::vector<int64_t>{vocab.code_of(target_tokens[2]),
                                                              vocab.code_of(target_tokens[5])}));
  PhiloxGenerator unused(0);
  const std::vector<float> h = model.hidden(batch, false, unused).to_f32_vector();  // [2, C, d]
  const std::vector<float> table = model.parameters().find("token.weight").to_f32_vector();
  // What the training forward gives decoder position l of row r, over level l's codes.
  auto trained = [&](int64_t r, int64_t l) {
    const auto row = h.begin() + (r * C + l) * d;
    return level_log_probs(std::vector<float>(row, row + d), table, d, vocab.offset(l), vocab.vocab(l));
  };
  auto slice = [](const std::vector<float>& v, int64_t n, int64_t V) {
    return std::vector<float>(v.begin() + n * V, v.begin() + (n + 1) * V);
  };

  // Generation: the start, then each target's codes, with the beams in swapped order at step 1 and
  // swapped back at step 2 (each extends the other's row of the step before).
  TransformerBlocks::Cache cache;
  const std::vector<float> start = model.start_generation(make_tiger_batch(vocab, ids, pos, {}, 2, T, Device::CPU), cache);
  const std::vector<float> step1 = model.continue_generation(cache, {1, 0}, {}, {target_tokens[3], target_tokens[0]});
  const std::vector<float> step2 =
      model.continue_generation(cache, {0, 1}, {1, 0}, {target_tokens[1], target_tokens[4]});
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_LT(testkit::relative_error(slice(start, r, vocab.vocab(0)), trained(r, 0)), 1e-5) << "start, row " << r;
    EXPECT_LT(testkit::relative_error(slice(step1, 1 - r, vocab.vocab(1)), trained(r, 1)), 1e-5) << "step 1, row " << r;
    EXPECT_LT(testkit::relative_error(slice(step2, r, vocab.vocab(2)), trained(r, 2)), 1e-5) << "step 2, row " << r;
  }
  // A decoder-only batch is refused, and so is a wrong-level target.
  EXPECT_THROW(model.hidden(make_tiger_batch(vocab, ids, pos, {}, 2, T, Device::CPU), false, unused), Error);
  std::vector<int64_t> shifted(target_tokens.begin() + 1, target_tokens.end());
  shifted.push_back(target_tokens[0]);
  testkit::expect_error([&] { make_tiger_seq2seq_batch(vocab, ids, pos, shifted, 2, T, Device::CPU); },
                        {"target token", "not at level 0"});
}

// The same model on the GPU: loss, every gradient and the first two decoding steps agree with the CPU,
// for both architectures (training batch with padding, dropout off).
TEST(TigerGpu, LossGradientsAndGenerationMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(20, &vocab_sizes);
  const std::vector<std::vector<int64_t>> users = {{3, 9, 14, 2}, {5, 6}, {1, 20, 19}};
  for (int64_t encoder_blocks : {0, 2}) {
    TigerConfig config = small_config(vocab_sizes, 24);
    config.encoder_blocks = encoder_blocks;
    const SemanticIdVocab vocab(vocab_sizes);
    const int64_t C = vocab.code_length(), T = 3 * C;
    auto batch_on = [&](Device device) {
      std::vector<int64_t> ids(users.size() * T), pos(ids.size()), targets(ids.size()), target_tokens;
      for (size_t r = 0; r < users.size(); ++r) {
        const auto n = static_cast<int64_t>(users[r].size());
        if (encoder_blocks == 0) {
          fill_training_window(catalog.tokens, users[r].data(), n, T, ids.data() + r * T, pos.data() + r * T,
                               targets.data() + r * T);
          continue;
        }
        fill_generation_window(catalog.tokens, users[r].data(), n - 1, {}, T, ids.data() + r * T, pos.data() + r * T);
        const int64_t* target = catalog.tokens.item(users[r].back());
        target_tokens.insert(target_tokens.end(), target, target + C);
      }
      const auto B = static_cast<int64_t>(users.size());
      return encoder_blocks == 0 ? make_tiger_batch(vocab, ids, pos, targets, B, T, device)
                                 : make_tiger_seq2seq_batch(vocab, ids, pos, target_tokens, B, T, device);
    };
    // first_steps: the start's log-probs, then those after each user's first code.
    auto run = [&](Device device, float& loss, std::vector<Tensor>& grads, std::vector<float>& first_steps) {
      TigerModel model(config, device, 21);
      PhiloxGenerator gen(0);
      Tensor l = model.loss(batch_on(device), true, gen);
      backward(l);
      loss = l.item();
      for (const NamedParameter& p : model.parameters().all()) grads.push_back(p.tensor.grad().to(Device::CPU));
      std::vector<int64_t> ids(users.size() * T), pos(ids.size());
      for (size_t r = 0; r < users.size(); ++r)
        fill_generation_window(catalog.tokens, users[r].data(), static_cast<int64_t>(users[r].size()), {}, T,
                               ids.data() + r * T, pos.data() + r * T);
      TransformerBlocks::Cache cache;
      first_steps = model.start_generation(
          make_tiger_batch(vocab, ids, pos, {}, static_cast<int64_t>(users.size()), T, device), cache);
      std::vector<int64_t> contexts, tokens;
      for (size_t r = users.size(); r-- > 0;) {  // users in reverse, so beam n continues context 2 - n
        contexts.push_back(static_cast<int64_t>(r));
        tokens.push_back(catalog.tokens.item(users[r].front())[0]);
      }
      const std::vector<float> next = model.continue_generation(cache, contexts, {}, tokens);
      first_steps.insert(first_steps.end(), next.begin(), next.end());
    };
    float cpu_loss = 0, gpu_loss = 0;
    std::vector<Tensor> cpu_grads, gpu_grads;
    std::vector<float> cpu_first, gpu_first;
    run(Device::CPU, cpu_loss, cpu_grads, cpu_first);
    run(Device::CUDA, gpu_loss, gpu_grads, gpu_first);
    EXPECT_NEAR(gpu_loss, cpu_loss, 1e-5 * std::abs(cpu_loss)) << "encoder blocks " << encoder_blocks;
    ASSERT_EQ(gpu_grads.size(), cpu_grads.size());
    for (size_t k = 0; k < cpu_grads.size(); ++k)
      EXPECT_LT(testkit::relative_error(gpu_grads[k], cpu_grads[k]), 1e-4)
          << "encoder blocks " << encoder_blocks << ", gradient " << k;
    EXPECT_LT(testkit::relative_error(gpu_first, cpu_first), 1e-5) << "encoder blocks " << encoder_blocks;
  }
}

// ---------------------------------------------------------------------------------------------
// Generation

// The optimizer, and the architecture: encoder blocks (0: decoder-only).
class TigerGeneration : public ::testing::TestWithParam<std::tuple<std::string, int64_t>> {};

TEST_P(TigerGeneration, LearnsDeterministicSuccessorAndReturnsValidDistinctRankedItems) {
  const auto [optimizer, encoder_blocks] = GetParam();
  const int64_t n_items = 30;
  data::SequenceDataset ds = chain_dataset(240, n_items, 11);
  std::vector<int64_t> vocab_sizes;
  TigerCatalog catalog = small_catalog(n_items, &vocab_sizes);
  ASSERT_GE(vocab_sizes[2], 2) << "the catalog should exercise the disambiguation token";
  TigerConfig config = small_config(vocab_sizes);
  config.encoder_blocks = encoder_blocks;
  TigerModel model(config, Device::CPU, 3);
  std::ostringstream log;
  TrainResult result = train_tiger(model, catalog, ds, small_train_options(12, optimizer), log);
  EXPECT_LT(result.epoch_losses.back(), 0.5 * result.epoch_losses.front()) << log.str();
  EXPECT_NE(log.str().find("steps/s"), std::string::npos);

  // The test split: the target follows the last input item. Chance at rank 0 is 1/30.
  EXPECT_GT(result.test_at_best.hr1, 0.7) << result.test_at_best.summary() << "\n" << log.str();

  // Histories like the training ones (runs of successors). Items 7 and 23 share their first two
  // codes, as do 12 and 28: the disambiguation token decides.
  std::vector<std::vector<int64_t>> histories = {{4, 5, 6}, {13, 14, 15}, {11}};
  TigerGenerateOptions gen;
  gen.beam_width = 8;
  gen.users_per_chunk = 2;  // two chunks
  auto hits = tiger_generate(model, catalog, histories, gen);
  ASSERT_EQ(hits.size(), 3u);
  for (size_t u = 0; u < hits.size(); ++u) {
    ASSERT_EQ(hits[u].size(), 8u);
    std::set<int64_t> distinct;
    for (size_t k = 0; k < hits[u].size(); ++k) {
      const semantic_id::BeamHit& hit = hits[u][k];
      EXPECT_GE(hit.item, 1);
      EXPECT_LE(hit.item, n_items);
      EXPECT_EQ(catalog.trie.item(hit.code), hit.item);  // a real item's full code
      distinct.insert(hit.item);
      if (k > 0) EXPECT_GE(hits[u][k - 1].score, hit.score);
    }
    EXPECT_EQ(distinct.size(), hits[u].size());
  }
  EXPECT_EQ(hits[0][0].item, 7);
  EXPECT_EQ(hits[1][0].item, 16);
  EXPECT_EQ(hits[2][0].item, 12) << "(27 is 11's code twin: a history of one item is the hardest case)";

  // A test target the user has seen before is never filtered: after 4 5 6 the model names 7 first,
  // filtering seen items or not, though 7 opened the history too.
  data::SequenceDataset repeat = dataset_from({{7, 4, 5, 6, 7}}, n_items);
  for (const bool filter_seen : {true, false}) {
    TigerEvalOptions eval;
    eval.generate = gen;
    eval.filter_seen = filter_seen;
    const RankingMetrics repeated = evaluate_tiger(model, catalog, repeat, data::EvalSplit::Test, eval);
    EXPECT_EQ(repeated.hr1, 1.0) << (filter_seen ? "filtered: " : "unfiltered: ") << repeated.summary();
  }

  // Serving: unfiltered, the beam's own list; filtered, a search that excludes the history's items.
  data::SequenceDataset users = dataset_from({{4, 5, 6}, {13, 14, 15}, {7, 8, 6, 5}}, n_items);
  RecommendOptions serve;
  serve.k = 8;
  serve.filter_seen = false;
  auto lists = recommend_tiger(model, catalog, users, {0, 1}, serve, gen);
  ASSERT_EQ(lists.size(), 2u);
  for (size_t u = 0; u < 2; ++u) {
    ASSERT_EQ(lists[u].size(), hits[u].size());
    for (size_t k = 0; k < hits[u].size(); ++k) {
      EXPECT_EQ(lists[u][k].item, hits[u][k].item);
      EXPECT_EQ(lists[u][k].score, hits[u][k].score);
    }
  }
  serve.filter_seen = true;
  serve.k = 3;
  lists = recommend_tiger(model, catalog, users, {2}, serve, gen);
  const std::vector<int64_t>& seen = users.sequences[2];
  auto beam = tiger_generate(model, catalog, {seen}, gen)[0];
  auto unseen_beam = tiger_generate(model, catalog, {seen}, gen, {seen})[0];
  ASSERT_EQ(lists[0].size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(lists[0][k].item, unseen_beam[k].item);
    EXPECT_EQ(lists[0][k].score, unseen_beam[k].score);
  }
  // The excluding search returns a full beam of unseen items.
  ASSERT_EQ(unseen_beam.size(), static_cast<size_t>(gen.beam_width));
  for (const auto& hit : unseen_beam) EXPECT_TRUE(hit.item < 5 || hit.item > 8) << hit.item;
  // There was something to exclude: a seen item in the unfiltered beam (this out-of-order history is
  // unlike any training one, so where it ranks is the model's guess).
  std::string beam_items;
  for (const auto& hit : beam) beam_items += " " + std::to_string(hit.item);
  EXPECT_TRUE(std::any_of(beam.begin(), beam.end(), [](const auto& hit) { return hit.item >= 5 && hit.item <= 8; }))
      << "beam:" << beam_items;
}

INSTANTIATE_TEST_SUITE_P(OptimizersAndArchitectures, TigerGeneration,
                         ::testing::Values(std::make_tuple("adamw", 0), std::make_tuple("muon", 0),
                                           std::make_tuple("adamw", 1), std::make_tuple("muon", 1)));

// ---------------------------------------------------------------------------------------------
// Pipeline

namespace {

// 8 topics of 10 items; each user stays in one topic and mostly walks it in order (item k of a
// topic -> item k+1), sometimes jumping inside the topic. Item texts name the topic (two words
// shared by its items) and a word of the item's position, so text similarity carries the topic.
struct TopicData {
  data::SequenceDataset ds;
  std::vector<std::string> texts;
};

TopicData topic_data() {
  const int64_t topics = 8, per_topic = 10, n_items = topics * per_topic;
  const char* colors[] = {"red", "blue", "green", "amber", "violet", "black", "white", "silver"};
  const char* kinds[] = {"shampoo", "lipstick", "perfume", "lotion", "mascara", "soap", "brush", "polish"};
  TopicData out;
  out.texts.assign(n_items + 1, "");
  for (int64_t i = 1; i <= n_items; ++i) {
    const int64_t topic = (i - 1) / per_topic, k = (i - 1) % per_topic;
    out.texts[i] = fmt::format("{} {} size{} edition{}", colors[topic], kinds[topic], k, k % 3);
  }
  PhiloxGenerator gen(21);
  std::vector<std::vector<int64_t>> sequences;
  for (int64_t u = 0; u < 400; ++u) {
    const int64_t topic = static_cast<int64_t>(gen.uniform() * topics) % topics;
    int64_t k = static_cast<int64_t>(gen.uniform() * per_topic) % per_topic;
    const int64_t length = 5 + static_cast<int64_t>(gen.uniform() * 8);
    std::vector<int64_t> seq;
    for (int64_t t = 0; t < length; ++t) {
      seq.push_back(1 + topic * per_topic + k);
      k = gen.uniform() < 0.8f ? (k + 1) % per_topic : static_cast<int64_t>(gen.uniform() * per_topic) % per_topic;
    }
    sequences.push_back(seq);
  }
  out.ds = dataset_from(std::move(sequences), n_items);
  return out;
}

}  // namespace

// The small pipeline of the tests below: the topic items' TF-IDF vectors, 2 x 8 codes, the small model.
TigerPipelineOptions topic_pipeline(const TopicData& data, int64_t epochs, const std::string& optimizer) {
  TigerPipelineOptions o;
  o.vectors.texts = data.texts;
  o.vectors.embedding.width = 16;
  o.vectors.embedding.tfidf.min_df = 1;
  o.tokenizer.levels = 2;
  o.tokenizer.codebook_size = 8;
  o.model = small_config({});
  o.train = small_train_options(epochs, optimizer);
  return o;
}

TEST(TigerPipeline, BeatsMostPopularAndCheckpointReproducesTestMetrics) {
  TopicData data = topic_data();
  TempDir dir;
  TigerPipelineOptions o = topic_pipeline(data, 10, "adamw");
  o.train.train.checkpoint_path = dir.path("tiger.safetensors");
  o.train.train.metrics_path = dir.path("metrics.jsonl");
  o.train.generate.beam_width = 20;
  std::ostringstream log;
  TrainResult result = run_tiger_pipeline(data.ds, o, Device::CPU, log);
  EXPECT_NE(log.str().find("semantic IDs"), std::string::npos) << log.str();

  EvalOptions eval;
  RankingMetrics pop = evaluate_popularity(data.ds, data::EvalSplit::Test, eval);
  EXPECT_GT(result.test_at_best.ndcg10, 2.0 * pop.ndcg10)
      << "tiger " << result.test_at_best.summary() << " vs popularity " << pop.summary() << "\n" << log.str();

  // The checkpoint holds model and tokenizer: reloading reproduces the test metrics exactly.
  SafetensorsFile file = load_safetensors(o.train.train.checkpoint_path);
  ASSERT_TRUE(is_tiger_checkpoint(file));
  TigerBundle bundle = load_tiger_checkpoint(file, Device::CPU);
  TigerEvalOptions test_eval;
  test_eval.generate = o.train.generate;
  RankingMetrics again = evaluate_tiger(*bundle.model, bundle.catalog, data.ds, data::EvalSplit::Test, test_eval);
  EXPECT_EQ(again.to_json(), result.test_at_best.to_json());
  EXPECT_EQ(bundle.tokenizer.levels(), 2);

  std::ifstream metrics(o.train.train.metrics_path);
  std::string line, first;
  int lines = 0;
  while (std::getline(metrics, line))
    if (lines++ == 0) first = line;
  EXPECT_EQ(lines, 12);  // the run, 10 epochs and the result
  EXPECT_EQ(nlohmann::json::parse(first).at("model").at("kind"), "tiger");
}

// 4 epochs straight, and 2 + 2 through --save-last / --resume (the resumed run loads the
// tokenizer from the state and the best epoch's parameters with it): epoch losses, the best
// checkpoint's parameters and the test metrics agree bit for bit, with AdamW and with Muon (cosine
// schedule and dropout, so the optimizer state, the step count and the dropout stream must all
// carry over), and with Muon for the encoder-decoder. A stopped run skips the test and says how to
// go on; the finished state reruns it; the best checkpoint reloads as the architecture it was.
TEST(TigerPipeline, ResumedRunReproducesTheUninterruptedRunBitForBit) {
  TopicData data = topic_data();
  TempDir dir;
  for (const auto& [optimizer_name, encoder_blocks] :
       {std::make_tuple("adamw", 0), std::make_tuple("muon", 0), std::make_tuple("muon", 1)}) {
    const std::string optimizer = std::string(optimizer_name) + (encoder_blocks > 0 ? "_encoder_decoder" : "");
    TigerPipelineOptions o = topic_pipeline(data, 4, optimizer_name);
    o.model.encoder_blocks = encoder_blocks;
    o.model.dropout = 0.1f;
    o.train.train.eval_every = 2;
    o.train.valid_users = 40;
    o.train.test_users = 40;
    o.train.train.optimizer.schedule.kind = LrSchedule::Kind::Cosine;
    o.train.train.optimizer.schedule.warmup_steps = 3;
    std::ostringstream log;

    TigerPipelineOptions straight = o;
    straight.train.train.checkpoint_path = dir.path(optimizer + "_straight.safetensors");
    TrainResult full = run_tiger_pipeline(data.ds, straight, Device::CPU, log);

    TigerPipelineOptions first = o;
    first.train.train.stop_after_epoch = 2;
    first.train.train.last_checkpoint_path = dir.path(optimizer + "_last.safetensors");
    first.train.train.checkpoint_path = dir.path(optimizer + "_paused_best.safetensors");
    first.train.train.progress_seconds = 0;  // every progress line
    first.train.generate.users_per_chunk = 16;
    std::ostringstream first_log;
    TrainResult stopped = run_tiger_pipeline(data.ds, first, Device::CPU, first_log);
    EXPECT_NE(first_log.str().find("continue with --resume " + first.train.train.last_checkpoint_path),
              std::string::npos)
        << first_log.str();
    EXPECT_EQ(stopped.test_at_best.users, 0);  // no test yet
    // Validation says how far it got (16 and 32 of the 40 users; the last chunk ends it).
    EXPECT_NE(first_log.str().find("validation: 16/40 users"), std::string::npos) << first_log.str();
    EXPECT_NE(first_log.str().find("validation: 32/40 users"), std::string::npos) << first_log.str();
    EXPECT_EQ(first_log.str().find("validation: 40/40 users"), std::string::npos) << first_log.str();
    // The best epoch's checkpoint is written when it is found, so a paused run has it (without test
    // metrics: none were measured).
    const SafetensorsFile paused_best = load_safetensors(first.train.train.checkpoint_path);
    EXPECT_EQ(paused_best.metadata.at("epoch"), std::to_string(stopped.best_epoch));
    EXPECT_EQ(paused_best.metadata.count("test_metrics"), 0u);
    TigerBundle paused_bundle = load_tiger_checkpoint(paused_best, Device::CPU);
    const TigerEvalOptions paused_valid{o.train.generate, o.train.train.eval.filter_seen, 0, o.train.valid_users,
                                        o.train.train.seed};
    EXPECT_EQ(evaluate_tiger(*paused_bundle.model, paused_bundle.catalog, data.ds, data::EvalSplit::Validation,
                             paused_valid)
                  .ndcg10,
              stopped.best_valid.ndcg10)
        << optimizer;

    // Codes or a validation other than the state's are refused, before anything trains.
    TigerPipelineOptions other_codes = o;
    other_codes.tokenizer.codebook_size = 3;
    other_codes.train.generate.beam_width = 5;
    other_codes.train.train.resume_path = first.train.train.last_checkpoint_path;
    testkit::expect_error([&] { run_tiger_pipeline(data.ds, other_codes, Device::CPU, log); },
                          {"other settings", "--beam 5 (the state's run: ", "--sid-codebook 3 (the state's run: "});
    // Another model is refused naming the flag that sets the field.
    TigerPipelineOptions other_history = o;
    other_history.model.max_items += 1;
    other_history.train.train.resume_path = first.train.train.last_checkpoint_path;
    testkit::expect_error([&] { run_tiger_pipeline(data.ds, other_history, Device::CPU, log); },
                          {"another model", "max_items (--sid-history): "});
    // The seed draws the validation sample: another would validate the resumed epochs on other users.
    TigerPipelineOptions other_seed = o;
    other_seed.train.train.seed = 7;
    other_seed.train.train.resume_path = first.train.train.last_checkpoint_path;
    testkit::expect_error([&] { run_tiger_pipeline(data.ds, other_seed, Device::CPU, log); },
                          {"other settings", "--seed 7 (the state's run: 1)"});
    {  // A damaged tokenizer in the state is refused naming the state.
      SafetensorsFile state = load_safetensors(first.train.train.last_checkpoint_path);
      std::vector<int64_t> codes = state.tensors.at("semantic_id.codes").to_i64_vector();
      const int64_t width = state.tensors.at("semantic_id.codes").shape()[1];
      std::copy(codes.begin() + width, codes.begin() + 2 * width, codes.begin() + 2 * width);  // item 2 = item 1
      state.tensors["semantic_id.codes"] = Tensor::from_i64(codes, state.tensors.at("semantic_id.codes").shape());
      TigerPipelineOptions damaged = o;
      damaged.train.train.resume_path = dir.path(optimizer + "_damaged.safetensors");
      save_safetensors(damaged.train.train.resume_path, state.tensors, state.metadata);
      testkit::expect_error([&] { run_tiger_pipeline(data.ds, damaged, Device::CPU, log); },
                            {damaged.train.train.resume_path + ": RqKMeans state: items 1 and 2 share a code"});
    }
    {  // So is a best-epoch parameter that is not finite (it would load at the end, after training).
      SafetensorsFile state = load_safetensors(first.train.train.last_checkpoint_path);
      const auto best = std::find_if(state.tensors.begin(), state.tensors.end(),
                                     [](const auto& entry) { return entry.first.rfind("best.", 0) == 0; });
      ASSERT_NE(best, state.tensors.end());
      std::vector<float> values = best->second.to_f32_vector();
      values[0] = std::nanf("");
      best->second = Tensor::from_f32(values, best->second.shape());
      TigerPipelineOptions damaged = o;
      damaged.train.train.resume_path = dir.path(optimizer + "_damaged_best.safetensors");
      save_safetensors(damaged.train.train.resume_path, state.tensors, state.metadata);
      testkit::expect_error([&] { run_tiger_pipeline(data.ds, damaged, Device::CPU, log); },
                            {damaged.train.train.resume_path + ": best-epoch parameter '" + best->first + "' holds nan"});
    }

    TigerPipelineOptions second = o;
    second.vectors.texts.clear();  // nothing to refit from: the tokenizer comes from the state
    second.train.train.resume_path = first.train.train.last_checkpoint_path;
    second.train.train.checkpoint_path = dir.path(optimizer + "_resumed.safetensors");
    second.train.train.last_checkpoint_path = first.train.train.last_checkpoint_path;
    TrainResult rest = run_tiger_pipeline(data.ds, second, Device::CPU, log);

    ASSERT_EQ(full.epoch_losses.size(), 4u);
    ASSERT_EQ(rest.epoch_losses.size(), 2u);
    EXPECT_EQ(rest.epoch_losses[0], full.epoch_losses[2]) << optimizer;
    EXPECT_EQ(rest.epoch_losses[1], full.epoch_losses[3]) << optimizer;
    EXPECT_EQ(rest.best_epoch, full.best_epoch) << optimizer;
    EXPECT_EQ(rest.test_at_best.to_json(), full.test_at_best.to_json()) << optimizer;
    SafetensorsFile a = load_safetensors(straight.train.train.checkpoint_path);
    SafetensorsFile b = load_safetensors(second.train.train.checkpoint_path);
    for (const auto& [name, tensor] : a.tensors) {
      const Tensor& other = b.at(name);
      ASSERT_EQ(tensor.shape(), other.shape()) << name;
      EXPECT_EQ(std::memcmp(tensor.raw_data(), other.raw_data(), tensor.nbytes()), 0) << optimizer << " " << name;
    }
    TigerBundle bundle = load_tiger_checkpoint(a, Device::CPU);
    EXPECT_EQ(bundle.model->config().encoder_blocks, encoder_blocks);
    if (encoder_blocks > 0) {
      // Read as the decoder-only model (its config edited), the encoder's parameters are refused.
      SafetensorsFile as_decoder_only = a;
      TigerConfig config = TigerConfig::from_json(a.metadata.at("config"));
      config.encoder_blocks = 0;
      as_decoder_only.metadata["config"] = config.to_json();
      testkit::expect_error([&] { load_tiger_checkpoint(as_decoder_only, Device::CPU); },
                            {"parameter 'param.", "is not in this model"});
    }
    {  // A history window no file could hold is refused before a model that long is built.
      SafetensorsFile long_history = a;
      nlohmann::json config = nlohmann::json::parse(a.metadata.at("config"));
      config["max_items"] = 100000000;
      long_history.metadata["config"] = config.dump();
      testkit::expect_error([&] { load_tiger_checkpoint(long_history, Device::CPU); },
                            {"its config asks for a parameter of (sid-history + 1) x d = "});
    }
    const TigerEvalOptions test_eval{o.train.generate, o.train.train.eval.filter_seen, 0, o.train.test_users,
                                     o.train.train.seed};
    EXPECT_EQ(evaluate_tiger(*bundle.model, bundle.catalog, data.ds, data::EvalSplit::Test, test_eval).to_json(),
              full.test_at_best.to_json())
        << optimizer;

    // The finished state (after epoch 4) resumes to the test alone, with the best epoch's parameters.
    TigerPipelineOptions finished = second;
    finished.train.train.checkpoint_path.clear();
    finished.train.train.last_checkpoint_path.clear();
    TrainResult retest = run_tiger_pipeline(data.ds, finished, Device::CPU, log);
    EXPECT_TRUE(retest.epoch_losses.empty());
    EXPECT_EQ(retest.test_at_best.to_json(), full.test_at_best.to_json()) << optimizer;
  }
  // A file that is not a tiger training state is refused, naming it.
  TigerPipelineOptions bad;
  bad.model = small_config({});
  bad.train = small_train_options(2, "adamw");
  bad.train.train.resume_path = dir.path("adamw_straight.safetensors");  // a best checkpoint, no training state
  std::ostringstream log;
  try {
    run_tiger_pipeline(data.ds, bad, Device::CPU, log);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.train.train.resume_path), std::string::npos) << e.what();
  }
}

// --patience ends a TIGER run as it ends a sequential one, and the test runs on the best epoch's
// parameters: the same metrics as a run that ends at that epoch (constant schedule, deterministic
// on the CPU, so both runs train the same epochs alike). The stop is read off the trace of the
// run without patience: the first validation that does not beat the best.
TEST(TigerPipeline, PatienceStopsTheRunAndTestsTheBestEpoch) {
  TopicData data = topic_data();
  TempDir dir;
  TigerPipelineOptions o = topic_pipeline(data, 8, "adamw");
  o.train.train.optimizer.adamw.lr = 0.1f;  // too high for this model: validation does not rise steadily
  o.train.train.eval_every = 1;
  o.train.valid_users = 40;
  o.train.test_users = 40;
  o.train.train.metrics_path = dir.path("all.jsonl");
  std::ostringstream all_log;
  TrainResult all = run_tiger_pipeline(data.ds, o, Device::CPU, all_log);
  ASSERT_EQ(all.epoch_losses.size(), 8u);
  int64_t best_epoch = 0, stop_epoch = 0;
  double best = -1;
  std::ifstream trace(o.train.train.metrics_path);
  for (std::string line; std::getline(trace, line) && stop_epoch == 0;) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.at("kind") != "epoch") continue;
    const double ndcg10 = record.at("valid").at("ndcg10");
    if (ndcg10 > best) {
      best = ndcg10;
      best_epoch = record.at("epoch");
    } else {
      stop_epoch = record.at("epoch");
    }
  }
  ASSERT_GT(stop_epoch, 1) << "validation improved at every epoch: no stop to test\n" << all_log.str();
  ASSERT_LT(stop_epoch, 8);

  o.train.train.metrics_path.clear();
  o.train.train.patience = 1;
  std::ostringstream log;
  TrainResult stopped = run_tiger_pipeline(data.ds, o, Device::CPU, log);
  EXPECT_EQ(stopped.epoch_losses.size(), static_cast<size_t>(stop_epoch));
  EXPECT_EQ(stopped.patience_stop_epoch, stop_epoch);
  EXPECT_EQ(stopped.best_epoch, best_epoch);
  EXPECT_NE(log.str().find("early stop after epoch " + std::to_string(stop_epoch)), std::string::npos) << log.str();

  TigerPipelineOptions until_best = o;
  until_best.train.train.patience = 0;
  until_best.train.train.epochs = best_epoch;
  std::ostringstream best_log;
  TrainResult at_best = run_tiger_pipeline(data.ds, until_best, Device::CPU, best_log);
  EXPECT_EQ(at_best.best_epoch, best_epoch);
  EXPECT_GT(stopped.test_at_best.users, 0);
  EXPECT_EQ(stopped.test_at_best.to_json(), at_best.test_at_best.to_json());
}

TEST(TigerPipeline, ItemVectorSources) {
  TempDir dir;
  const std::string data_path = dir.write("Toy.txt", "1 1 2 3\n2 2 3 1\n");
  data::SequenceDataset ds = dataset_from({{1, 2, 3}, {2, 3, 1}}, 3);
  ds.source = data_path;

  // auto: toy_item_asin.txt + toy_item_titles.txt beside the data file.
  ItemVectorOptions o;
  o.embedding.width = 8;
  o.embedding.tfidf.min_df = 1;
  EXPECT_THROW(item_content_vectors(ds, o), Error);  // no side files yet
  dir.write("toy_item_asin.txt", "1 A1\n2 A2\n3 A3\n");
  dir.write("toy_item_titles.txt", "A1 red soap\nA2 red brush\nA3 blue soap\n");
  ItemVectors v = item_content_vectors(ds, o);
  EXPECT_EQ(v.dim, 8);
  EXPECT_EQ(v.values.size(), 4u * 8u);
  EXPECT_NE(v.source.find(dir.path("toy_item_titles.txt")), std::string::npos) << v.source;
  {  // Side files of that name in the working directory are another dataset's: "auto" looks beside the data.
    fs::create_directory(dir.path("elsewhere"));
    dir.write("elsewhere/toy_item_asin.txt", "1 A1\n2 A2\n3 A3\n");
    dir.write("elsewhere/toy_item_titles.txt", "A1 wrong\nA2 wrong\nA3 wrong\n");
    const fs::path working = fs::current_path();
    fs::current_path(dir.path("elsewhere"));
    std::string source;
    const std::vector<std::string> texts = load_item_texts(ds, o, &source, "test");
    fs::current_path(working);
    EXPECT_EQ(texts, (std::vector<std::string>{"", "red soap", "red brush", "blue soap"})) << source;
  }
  // Both --movies and --item-text name the texts: refused, not one of them silently ignored.
  ItemVectorOptions both = o;
  both.movies = dir.write("movies.dat", "1::Toy Story (1995)::Animation\n");
  both.item_text = "toy";
  testkit::expect_error([&] { item_content_vectors(ds, both); }, {"--movies", "and --item-text toy both name"});
  // The id file of a whole catalogue, for data holding some of its items (a sample of its users):
  // the ids past the data's largest are skipped and counted.
  dir.write("toy_item_asin.txt", "1 A1\n2 A2\n3 A3\n4 A4\n5 A5\n");
  ds.report.largest_file_item = 3;
  const ItemVectors sampled = item_content_vectors(ds, o);
  EXPECT_EQ(sampled.values, v.values);
  EXPECT_NE(sampled.source.find("; 2 ids past the data's largest item 3 skipped"), std::string::npos)
      << sampled.source;

  // A collaborative model's item table: rows 1..n, L2-normalised.
  const std::string ckpt = dir.path("sasrec.safetensors");
  save_safetensors(ckpt, {{"param.item.weight", Tensor::from_f32({0, 0, 3, 4, 0, 2, 1, 0}, {4, 2})}});
  o.checkpoint = ckpt;
  v = item_content_vectors(ds, o);
  EXPECT_EQ(v.dim, 2);
  EXPECT_EQ(v.values, (std::vector<float>{0, 0, 0.6f, 0.8f, 0, 1, 1, 0}));
  ds.n_items = 4;
  EXPECT_THROW(item_content_vectors(ds, o), Error);  // the table is too short for 4 items
  ds.n_items = 3;
  // A model of other data: another item count, or the same count numbered otherwise.
  save_safetensors(ckpt, {{"param.item.weight", Tensor::from_f32(std::vector<float>(12, 1.0f), {6, 2})}},
                   {{"config", R"({"kind": "sasrec", "n_items": 5})"}});
  testkit::expect_error([&] { item_content_vectors(ds, o); }, {ckpt, "a model of 5 items", "has 3"});
  data::SequenceDataset renumbered = ds;
  renumbered.item_source_ids[2] = 7;
  std::map<std::string, std::string> numbering;
  add_item_numbering(numbering, renumbered);
  save_safetensors(ckpt, {{"param.item.weight", Tensor::from_f32({0, 0, 3, 4, 0, 2, 1, 0}, {4, 2})}}, numbering);
  testkit::expect_error([&] { item_content_vectors(ds, o); }, {ckpt, "numbers its items otherwise"});
  EXPECT_EQ(item_content_vectors(renumbered, o).dim, 2);
}

TEST(TigerPipeline, MoviesOfADenseFileAreReadThroughTheMapBesideIt) {
  // The SASRec ML-1M file numbers movies 1..n its own way; sas_to_original_items.txt beside it maps
  // them to MovieIDs. Reading its ids as MovieIDs would title item 1 "Toy Story" without a word.
  TempDir dir;
  const std::string movies = dir.write("movies.dat", "1::Toy Story (1995)::Animation\n"
                                                     "2::Jumanji (1995)::Adventure\n"
                                                     "3::Grumpier Old Men (1995)::Comedy\n"
                                                     "5::Heat (1995)::Action\n");
  const data::SequenceDataset dense = data::read_dataset(dir.write("ml.txt", "1 1\n1 2\n1 3\n2 2\n2 3\n2 1\n"));
  ItemVectorOptions o;
  o.movies = movies;
  o.movie_genres = false;
  std::string source;
  auto titles = [&](const data::SequenceDataset& ds) { return load_item_texts(ds, o, &source, "test"); };
  using Titles = std::vector<std::string>;
  EXPECT_EQ(titles(dense), (Titles{"", "Toy Story (1995)", "Jumanji (1995)", "Grumpier Old Men (1995)"}));
  EXPECT_NE(source.find("item ids as MovieIDs"), std::string::npos) << source;  // no map beside it yet

  dir.write("sas_to_original_items.txt", "1 5\n2 1\n3 2\n");
  EXPECT_EQ(titles(dense), (Titles{"", "Heat (1995)", "Toy Story (1995)", "Jumanji (1995)"}));
  EXPECT_NE(source.find("sas_to_original_items.txt (found beside the data"), std::string::npos) << source;
  o.movie_map = "none";
  EXPECT_EQ(titles(dense), (Titles{"", "Toy Story (1995)", "Jumanji (1995)", "Grumpier Old Men (1995)"}));

  // A file of MovieIDs beside it: read as they are (ids up to the largest MovieID, more items than the
  // map numbers), or renumbered by the reader (ratings.dat: the source ids are the MovieIDs).
  o.movie_map = "auto";
  const data::SequenceDataset movie_ids = data::read_dataset(dir.write("ids.txt", "1 1\n1 2\n1 5\n2 5\n2 2\n2 1\n"));
  EXPECT_EQ(titles(movie_ids),
            (Titles{"", "Toy Story (1995)", "Jumanji (1995)", "Grumpier Old Men (1995)", "", "Heat (1995)"}));
  const data::SequenceDataset ratings = data::read_dataset(
      dir.write("ratings.dat", "1::1::5::1\n1::2::5::2\n1::5::5::3\n2::5::5::1\n2::2::5::2\n2::1::5::3\n"));
  EXPECT_EQ(titles(ratings), (Titles{"", "Toy Story (1995)", "Jumanji (1995)", "Heat (1995)"}));
  o.movie_map = dir.path("sas_to_original_items.txt");  // ids that are MovieIDs already: no map applies
  testkit::expect_error([&] { titles(ratings); },
                        {"--movie-map " + o.movie_map + " maps item ids to MovieIDs", "names its items by MovieID"});
  o.movie_map = "auto";

  // A k-core renumbers the file's items (here item 1, seen once, leaves the 2-core): the map still
  // numbers the file's ids, and the texts follow the items to their new ids.
  fs::create_directory(dir.path("core"));
  dir.write("core/sas_to_original_items.txt", "1 5\n2 1\n3 2\n4 3\n");
  data::ReadOptions two_core;
  two_core.preprocessing.k_core = 2;
  const data::SequenceDataset core =
      data::read_dataset(dir.write("core/ml.txt", "1 4\n1 2\n1 3\n1 1\n2 2\n2 3\n2 4\n"), two_core);
  ASSERT_EQ(core.item_source_ids, (std::vector<int64_t>{0, 2, 3, 4}));
  EXPECT_EQ(titles(core), (Titles{"", "Toy Story (1995)", "Jumanji (1995)", "Grumpier Old Men (1995)"}));
  EXPECT_NE(source.find("item texts: 3 items, 3 with text"), std::string::npos) << source;  // the core's, not the map's
}

// Beauty-style titles for RecBole files: string item tokens (ASINs) join the titles file on the
// token; integer tokens are the side file's ids, mapped to the renumbered dataset ids; --movies reads
// no string tokens.
TEST(TigerPipeline, TitlesOfRecBoleItemsFollowTheirTokens) {
  TempDir dir;
  dir.write("shop_item_asin.txt", "3 B003\n1 B001\n2 B002\n7 B007\n");
  dir.write("shop_item_titles.txt", "B001 red soap\nB002 blue brush\nB003 green towel\nB007 old comb\n");
  const std::string header = "user_id:token\titem_id:token\ttimestamp:float\n";
  const data::SequenceDataset named = data::read_dataset(dir.write(
      "shop.inter", header + "u1\tB003\t1\nu1\tB001\t2\nu1\tB009\t3\nu2\tB001\t1\nu2\tB003\t2\nu2\tB009\t3\n"));
  ItemVectorOptions o;
  std::string source;
  using Titles = std::vector<std::string>;
  ASSERT_EQ(named.item_tokens, (Titles{"", "B001", "B003", "B009"}));
  EXPECT_EQ(load_item_texts(named, o, &source, "test"), (Titles{"", "red soap", "green towel", ""}));
  EXPECT_NE(source.find("by the data's item tokens"), std::string::npos) << source;

  const data::SequenceDataset numbered = data::read_dataset(
      dir.write("shop2.inter", header + "1\t3\t1\n1\t7\t2\n1\t2\t3\n2\t7\t1\n2\t3\t2\n2\t2\t3\n"));
  ASSERT_EQ(numbered.item_source_ids, (std::vector<int64_t>{0, 2, 3, 7}));
  o.item_text = dir.path("shop");
  EXPECT_EQ(load_item_texts(numbered, o, &source, "test"), (Titles{"", "blue brush", "green towel", "old comb"}));
  EXPECT_NE(source.find("3 items, 3 with text"), std::string::npos) << source;  // the data's items, not the file's
  // String tokens need the titles alone.
  fs::remove(dir.path("shop_item_asin.txt"));
  o.item_text = "auto";
  EXPECT_EQ(load_item_texts(named, o, &source, "test"), (Titles{"", "red soap", "green towel", ""}));
  testkit::expect_error([&] { load_item_texts(numbered, o, &source, "test"); }, {"no item texts found"});

  o.movies = dir.write("movies.dat", "1::Toy Story (1995)::Animation\n");
  testkit::expect_error([&] { load_item_texts(named, o, &source, "test"); },
                        {"--movies reads item ids as MovieIDs", "names its items by string tokens"});
}

// muonrec prepare renumbers items (here item 1, seen once, leaves the 2-core, and item 9 becomes 3);
// the ASIN file numbers the source's items, and PREFIX_items.tsv beside the prepared file leads back
// to them. Looked up by the prepared ids instead, every item would get another item's title.
TEST(TigerPipeline, TitlesOfAPreparedFileGoThroughItsSourceIds) {
  TempDir dir;
  dir.write("shop_item_asin.txt", "1 B001\n2 B002\n4 B004\n9 B009\n");
  dir.write("shop_item_titles.txt", "B001 red soap\nB002 blue brush\nB004 green towel\nB009 old comb\n");
  data::ReadOptions two_core;
  two_core.preprocessing.k_core = 2;
  const data::SequenceDataset source_data =
      data::read_dataset(dir.write("Shop.txt", "1 4 2 9 1\n2 9 4 2\n"), two_core);
  ASSERT_EQ(source_data.item_source_ids, (std::vector<int64_t>{0, 2, 4, 9}));
  fs::create_directory(dir.path("prepared"));
  data::write_prepared_dataset(source_data, dir.path("prepared/core"));
  const data::SequenceDataset prepared = data::read_dataset(dir.path("prepared/core.txt"));
  ASSERT_EQ(prepared.item_source_ids, (std::vector<int64_t>{0, 1, 2, 3}));
  ItemVectorOptions o;
  o.item_text = dir.path("shop");
  std::string source;
  using Titles = std::vector<std::string>;
  EXPECT_EQ(load_item_texts(prepared, o, &source, "test"), (Titles{"", "blue brush", "green towel", "old comb"}));
  EXPECT_NE(source.find("by the source's item ids in " + dir.path("prepared/core_items.tsv")), std::string::npos)
      << source;
  EXPECT_EQ(source.find("skipped"), std::string::npos) << source;  // ids past the prepared file's are the source's
  // An item the map does not name has no source id, and no title.
  const std::string map = data::read_whole_file(dir.path("prepared/core_items.tsv"));
  dir.write("prepared/core_items.tsv", "item\tsource\n1\t2\n3\t9\n");
  EXPECT_EQ(load_item_texts(prepared, o, &source, "test"), (Titles{"", "blue brush", "", "old comb"}));
  dir.write("prepared/core_items.tsv", map);

  // A source naming its items by ASIN: the prepared map holds the ASINs, and the titles join on them.
  const std::string header = "user_id:token\titem_id:token\ttimestamp:float\n";
  const data::SequenceDataset named = data::read_dataset(
      dir.write("shop.inter",
                header + "u1\tB009\t1\nu1\tB002\t2\nu1\tB004\t3\nu2\tB004\t1\nu2\tB009\t2\nu2\tB002\t3\n"));
  data::write_prepared_dataset(named, dir.path("prepared/named"));
  o.item_text = dir.path("shop");
  EXPECT_EQ(load_item_texts(data::read_dataset(dir.path("prepared/named.txt")), o, &source, "test"),
            (Titles{"", "blue brush", "green towel", "old comb"}));
  EXPECT_NE(source.find("by the source's item tokens in"), std::string::npos) << source;
  // A damaged map names its file and line.
  dir.write("prepared/named_items.tsv", "item\tsource\n1\tB002\n1\tB004\n");
  testkit::expect_error([&] { load_item_texts(data::read_dataset(dir.path("prepared/named.txt")), o, &source, "t"); },
                        {"named_items.tsv:3: item id 1 listed twice"});
}

// Item tables: a RecBole .item file gives each item its text fields (not its numbers), a CSV table
// every column but item_id; both join on the data's item names; bad tables name file and line.
TEST(TigerPipeline, ItemTablesGiveTexts) {
  TempDir dir;
  const std::string header = "user_id:token\titem_id:token\ttimestamp:float\n";
  const data::SequenceDataset named = data::read_dataset(
      dir.write("shop.inter", header + "u1\tB3\t1\nu1\tB1\t2\nu1\tB9\t3\nu2\tB1\t1\nu2\tB3\t2\nu2\tB9\t3\n"));
  ItemVectorOptions o;
  std::string source;
  using Titles = std::vector<std::string>;
  o.item_text = dir.write("shop.item",
                          "item_id:token\ttitle:token_seq\tprice:float\tbrand:token\n"
                          "B1\tred soap\t3.5\tacme\n"
                          "B3\tgreen towel\t\t\n"
                          "B7\told comb\t1\tzed\n");
  EXPECT_EQ(load_item_texts(named, o, &source, "test"), (Titles{"", "red soap acme", "green towel", ""}));
  EXPECT_NE(source.find("shop.item by the data's item names; item texts: 3 items, 2 with text"), std::string::npos)
      << source;
  o.item_text = dir.write("shop.csv", "title,item_id\n\"soap, red\",B1\ntowel,B9\n");
  EXPECT_EQ(load_item_texts(named, o, &source, "test"), (Titles{"", "soap, red", "", "towel"}));

  // A dense file's items are named by their ids.
  const data::SequenceDataset dense = data::read_dataset(dir.write("d.txt", "1 1\n1 2\n1 3\n"));
  o.item_text = dir.write("items.tsv", "item_id\ttitle\n2\tsecond\n3\tthird\n");
  EXPECT_EQ(load_item_texts(dense, o, &source, "test"), (Titles{"", "", "second", "third"}));

  // RecBole rows are not quoted: a title may begin with a quote.
  o.item_text = dir.write("quotes.item", "item_id:token\ttitle:token_seq\n2\t\"Weird\" Al soap\n");
  EXPECT_EQ(load_item_texts(dense, o, &source, "test"), (Titles{"", "", "\"Weird\" Al soap", ""}));
  // Zero-padded ids are names, joined as written; a table that names none of the items is refused.
  const data::SequenceDataset padded = data::read_dataset(
      dir.write("padded.inter", "user_id:token\titem_id:token\nu\t007\nu\t010\nu\t011\n"));
  o.item_text = dir.write("padded.item", "item_id:token\ttitle:token_seq\n007\tbond\n010\tten\n011\televen\n");
  EXPECT_EQ(load_item_texts(padded, o, &source, "test"), (Titles{"", "bond", "ten", "eleven"}));
  o.item_text = dir.write("other.csv", "item_id,title\n7,bond\n10,ten\n");
  testkit::expect_error([&] { load_item_texts(padded, o, &source, "test"); },
                        {"other.csv names none of the data's items (the data names them like '007'"});
  o.item_text = dir.write("commas.item", "item_id:token,title:token_seq\n2,x\n");
  testkit::expect_error([&] { load_item_texts(dense, o, &source, "test"); },
                        {"commas.item, line 1", "expected a RecBole header of tab-separated 'name:type' fields"});

  o.item_text = dir.write("noid.csv", "title,name\na,b\n");
  testkit::expect_error([&] { load_item_texts(dense, o, &source, "test"); },
                        {"noid.csv, line 1", "needs an item_id column"});
  o.item_text = dir.write("twice.csv", "item_id,title\n2,a\n2,b\n");
  testkit::expect_error([&] { load_item_texts(dense, o, &source, "test"); },
                        {"twice.csv, line 3", "item '2' already has a row on line 2"});
  o.item_text = dir.write("short.item", "item_id:token\ttitle:token_seq\n2\n");
  testkit::expect_error([&] { load_item_texts(dense, o, &source, "test"); },
                        {"short.item, line 2", "expected 2 fields"});
}

TEST(TigerPipeline, CooccurrenceAndSideBySideVectors) {
  // Users 0 and 1 hold out their last two events (validation, test): item 5 appears only there, so
  // the co-occurrence vectors must not have seen it (a random vector, counted as without pairs).
  data::SequenceDataset ds = dataset_from({{1, 2, 3, 4, 5, 5}, {2, 1, 4, 3, 5, 5}, {3, 4, 1, 2}}, 5);
  ItemVectorOptions o;
  o.kind = "cooccurrence";
  o.embedding.width = 4;
  ItemVectors c = item_content_vectors(ds, o);
  EXPECT_EQ(c.dim, 4);
  EXPECT_NE(c.source.find("1 items without pairs"), std::string::npos) << c.source;

  o.kind = "text+cooccurrence";
  o.texts = {"", "red soap", "red brush", "blue soap", "blue brush", "green soap"};
  o.embedding.tfidf.min_df = 1;
  ItemVectors both = item_content_vectors(ds, o);
  o.kind = "text";
  ItemVectors text = item_content_vectors(ds, o);
  ASSERT_EQ(both.dim, 8);
  const float s = 1.0f / std::sqrt(2.0f);
  for (int64_t item = 1; item <= 5; ++item)
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_FLOAT_EQ(both.values[item * 8 + j], text.values[item * 4 + j] * s);
      EXPECT_FLOAT_EQ(both.values[item * 8 + 4 + j], c.values[item * 4 + j] * s);
    }
  o.kind = "pictures";
  testkit::expect_error([&] { item_content_vectors(ds, o); }, {"unknown kind 'pictures'"});
}

// End to end on the built-in synthetic dataset (CPU): the model learns far beyond the most-popular
// baseline, training is deterministic for a seed, and a checkpoint reproduces the test metrics.
#include <fstream>
#include <sstream>

#include "data/synthetic.h"
#include "models/trainer.h"
#include "test_util.h"

using namespace muonrec;

namespace {

data::SequenceDataset small_dataset() {
  data::SyntheticOptions o;
  o.users = 400;
  o.items = 120;
  o.min_length = 10;
  o.max_length = 30;
  o.seed = 3;
  return data::make_synthetic_dataset(o);
}

ModelConfig small_config(int64_t n_items) {
  ModelConfig c;
  c.n_items = n_items;
  c.max_len = 20;
  c.d = 32;
  c.blocks = 1;
  c.heads = 2;
  c.dropout = 0.1f;
  return c;
}

TrainOptions small_options(int64_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 64;
  o.adamw.lr = 5e-3f;
  o.eval_every = epochs;
  o.progress_seconds = 1e9;
  return o;
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("muonrec_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST(Training, sasrec_beats_most_popular_and_checkpoint_reproduces_test_metrics) {
  data::SequenceDataset ds = small_dataset();
  auto model = make_model(small_config(ds.n_items), Device::CPU, 1);
  TrainOptions options = small_options(8);
  options.checkpoint_path = temp_file("ckpt.safetensors");
  options.metrics_path = temp_file("metrics.jsonl");
  std::ostringstream log;
  TrainResult result = train_model(*model, ds, options, log);
  EXPECT_NE(log.str().find("steps/s"), std::string::npos);
  EXPECT_NE(log.str().find("ETA"), std::string::npos);

  RankingMetrics pop = evaluate_popularity(ds, data::EvalSplit::Test, options.eval);
  EXPECT_GT(result.test_at_best.ndcg10, 2.0 * pop.ndcg10) << "model " << result.test_at_best.summary()
                                                          << " vs popularity " << pop.summary();

  auto restored = load_model_checkpoint(options.checkpoint_path, Device::CPU);
  EvalOptions eval = options.eval;
  eval.max_len = restored->config().max_len;
  RankingMetrics again = evaluate_model(*restored, ds, data::EvalSplit::Test, eval);
  EXPECT_EQ(again.to_json(), result.test_at_best.to_json());

  std::ifstream metrics(options.metrics_path);
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) ++lines;
  EXPECT_EQ(lines, 9);  // 8 epochs and the result
  std::filesystem::remove(options.checkpoint_path);
  std::filesystem::remove(options.metrics_path);
}

TEST(Training, same_seed_gives_identical_results) {
  data::SequenceDataset ds = small_dataset();
  auto run = [&]() {
    auto model = make_model(small_config(ds.n_items), Device::CPU, 5);
    std::ostringstream log;
    train_model(*model, ds, small_options(2), log);
    return model->parameters().find("blocks.0.fc1.weight").to_f32_vector();
  };
  EXPECT_EQ(run(), run());
}

TEST(Training, popularity_metrics_are_exact_on_a_tiny_dataset) {
  // Three users; item 1 is the most popular in the training parts.
  data::SequenceDataset ds;
  ds.source = "handmade";
  ds.n_items = 4;
  ds.sequences = {{1, 2, 3, 4}, {1, 3, 2, 1}, {1, 4, 3, 2}};
  ds.user_ids = {1, 2, 3};
  EvalOptions o;
  o.filter_seen = false;
  RankingMetrics m = evaluate_popularity(ds, data::EvalSplit::Test, o);
  // train counts: item1 3, item2 1, item3 1, item4 1 -> ties rank items 2..4 at 1 (strictly greater counts only)
  EXPECT_EQ(m.users, 3);
  EXPECT_NEAR(m.hr1, 1.0 / 3.0, 1e-12);  // user 2's target (item 1) ranks first
  EXPECT_NEAR(m.mrr, (0.5 + 1.0 + 0.5) / 3.0, 1e-12);
}

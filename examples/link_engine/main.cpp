// Trains a small SASRec on the built-in synthetic data through the C++ API, keeps the best
// validation epoch's parameters in a checkpoint, reads them back, and prints the test metrics and
// the first user's top 5 next items.
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

#include <muonrec/models/recommend.h>
#include <muonrec/models/trainer.h>

#include "data/dataset.h"  // the prototype's own, beside the engine's muonrec/data/dataset.h

int main() {
  using namespace muonrec;
  const data::SequenceDataset dataset = prototype::example_dataset();

  ModelConfig config;
  config.n_items = dataset.n_items;
  config.max_len = 20;
  config.d = 32;
  config.blocks = 1;
  const Device device = parse_device("auto");
  auto model = make_model(config, device, /*seed=*/1);

  TrainOptions options;
  options.epochs = 4;
  options.batch_size = 64;
  options.optimizer.adamw.lr = 5e-3f;
  options.eval_every = 2;
  // train_model leaves the last epoch's parameters in `model`; the checkpoint keeps the best one's,
  // in a file of this run's own (runs at once do not share it), removed however the run ends.
  struct TemporaryFile {
    std::filesystem::path path;
    ~TemporaryFile() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  };
  const TemporaryFile best{std::filesystem::temp_directory_path() /
                           ("link_engine_best_" + std::to_string(std::random_device{}()) + ".safetensors")};
  options.checkpoint_path = best.path.string();
  TrainResult result = train_model(*model, dataset, options, std::cout);

  auto best_model = load_model_checkpoint(options.checkpoint_path, device);
  const RankingMetrics test = evaluate_model(*best_model, dataset, data::EvalSplit::Test, options.eval);
  std::cout << "test at epoch " << result.best_epoch << ": " << test.summary() << "\n";

  RecommendOptions serve;
  serve.k = 5;
  std::vector<ScoredItem> top = recommend(*best_model, dataset, {0}, serve).front();
  std::cout << "user " << dataset.user_ids[0] << " next:";
  for (const ScoredItem& s : top) std::cout << " " << dataset.item_source_ids[s.item] << " (" << s.score << ")";
  std::cout << "\n";
  const bool reproduced = test.users == dataset.num_users() && test.ndcg10 == result.test_at_best.ndcg10;
  return reproduced && top.size() == 5 ? 0 : 1;
}

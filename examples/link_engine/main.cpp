// Trains a small SASRec on the built-in synthetic data through the C++ API, prints the test metrics
// and the first user's top 5 next items.
#include <iostream>

#include "data/synthetic.h"
#include "models/recommend.h"
#include "models/trainer.h"

int main() {
  using namespace muonrec;
  data::SyntheticOptions data_options;
  data_options.users = 300;
  data_options.items = 100;
  data::SequenceDataset dataset = data::make_synthetic_dataset(data_options);

  ModelConfig config;
  config.n_items = dataset.n_items;
  config.max_len = 20;
  config.d = 32;
  config.blocks = 1;
  auto model = make_model(config, parse_device("auto"), /*seed=*/1);

  TrainOptions options;
  options.epochs = 3;
  options.batch_size = 64;
  options.optimizer.adamw.lr = 5e-3f;
  options.eval_every = 3;
  TrainResult result = train_model(*model, dataset, options, std::cout);
  std::cout << "test: " << result.test_at_best.summary() << "\n";

  RecommendOptions serve;
  serve.k = 5;
  std::vector<ScoredItem> top = recommend(*model, dataset, {0}, serve).front();
  std::cout << "user " << dataset.user_ids[0] << " next:";
  for (const ScoredItem& s : top) std::cout << " " << dataset.item_source_ids[s.item] << " (" << s.score << ")";
  std::cout << "\n";
  return result.test_at_best.users == dataset.num_users() && top.size() == 5 ? 0 : 1;
}

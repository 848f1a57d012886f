// Trains a small SASRec on the built-in synthetic data through the C++ API and prints test metrics.
#include <iostream>

#include "data/synthetic.h"
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
  return result.test_at_best.users == dataset.num_users() ? 0 : 1;
}

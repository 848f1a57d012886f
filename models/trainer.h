// The training loop: shuffled left-padded windows, AdamW, periodic validation with full ranking,
// the test metrics of the best validation epoch, JSONL metrics and safetensors checkpoints.
#pragma once

#include <iosfwd>
#include <string>

#include "data/dataset.h"
#include "models/evaluate.h"
#include "models/sequential_model.h"
#include "optim/adamw.h"

namespace muonrec {

struct TrainOptions {
  int64_t epochs = 20;
  int64_t batch_size = 128;
  AdamWOptions adamw;
  uint64_t seed = 1;
  int64_t eval_every = 5;           // validate every N epochs (and after the last)
  double progress_seconds = 2.0;    // a progress line at most this often
  EvalOptions eval;
  std::string metrics_path;         // JSONL, appended; empty: none
  std::string checkpoint_path;      // safetensors, written at each new best validation; empty: none
};

struct TrainResult {
  RankingMetrics best_valid, test_at_best;
  int64_t best_epoch = 0;
  int64_t steps = 0;
  double train_seconds = 0;
};

TrainResult train_model(SequentialModel& model, const data::SequenceDataset& dataset, const TrainOptions& options,
                        std::ostream& log);

// Checkpoints hold the model config, the parameters ("param.*"), the optimizer state ("adamw.*")
// and the training position in the metadata.
void save_checkpoint(const std::string& path, SequentialModel& model, const AdamW& optimizer,
                     const std::map<std::string, std::string>& metadata);
// Rebuilds the model a checkpoint describes on `device` and loads its parameters.
std::unique_ptr<SequentialModel> load_model_checkpoint(const std::string& path, Device device,
                                                       SafetensorsFile* file_out = nullptr);

}  // namespace muonrec

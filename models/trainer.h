// The training loop: shuffled left-padded windows, AdamW and/or Muon, periodic validation with
// full ranking, the test metrics of the best validation epoch, JSONL metrics, safetensors
// checkpoints, and exact resumption from the last epoch's checkpoint.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/sequential_model.h"
#include "muonrec/optim/param_groups.h"

namespace muonrec {

struct TrainOptions {
  int64_t epochs = 20;
  int64_t batch_size = 128;
  OptimizerConfig optimizer;        // its schedule's total_steps is filled in from epochs
  uint64_t seed = 1;
  float max_grad_norm = 0.0f;       // global-norm gradient clipping; 0: off
  int64_t eval_every = 5;           // validate every N epochs (and after the last)
  double progress_seconds = 2.0;    // a progress line at most this often
  EvalOptions eval;
  std::string metrics_path;         // JSONL, appended; empty: none
  std::string checkpoint_path;      // the best-validation model, rewritten at each new best; empty: none
  std::string last_checkpoint_path; // the full training state after every epoch (for --resume); empty: none
  std::string resume_path;          // continue from such a state; empty: start fresh
  int64_t stop_after_epoch = 0;     // end the run early after this epoch (0: run all), e.g. for time-boxed jobs
  // Early stopping: end the run once this many validations in a row have not raised the best
  // validation NDCG@10 (0: never). Counts validations, not epochs (see eval_every). The test
  // metrics are those of the best epoch either way.
  int64_t patience = 0;
  // How the run was started, for the record: the command line (or whatever a program embedding
  // the engine wants to say) and the settings it was given (the CLI writes the flags given on the
  // command line and in a --config file, except output paths, as TOML that `muonrec train
  // --config` reads back; flags left out take the defaults of the version that reads them). Both
  // go into the metrics file's "run" record and into the checkpoints' metadata; empty: not
  // recorded.
  std::string command;
  std::string settings;
  std::string all_settings;  // the same with every flag's default too (for comparing runs); may be empty
  // Settings, by flag name, that a resumed run must keep besides the model's and the optimizer's
  // (what a pipeline built before training: TIGER's semantic-ID flags). See RunIdentity::fixed.
  std::map<std::string, std::string> fixed_settings;

  // Throws, prefixed by `who`, on settings no run can use: non-positive epochs, batch size or
  // eval interval; negative patience, clipping norm, warmup, learning rates or cosine floor; or a
  // run stopped early with nowhere to save its state (no last_checkpoint_path).
  void check(const std::string& who) const;
  // Throws where the warm-up is not shorter than the run's epochs x steps_per_epoch optimizer steps
  // (naming the flags), before the optimizer's own check says it without them.
  void check_warmup_fits(const std::string& who, int64_t steps_per_epoch) const;
  // Throws when two outputs (--metrics, --checkpoint, --save-last) name one file, or one of them
  // could not be written or is one of `inputs` (the data file): found before the first epoch rather
  // than after it.
  void check_output_files(const std::vector<std::string>& inputs) const;
};

struct TrainResult {
  RankingMetrics best_valid, test_at_best;
  int64_t best_epoch = 0;
  int64_t patience_stop_epoch = 0;   // the epoch after which --patience ended the run (0: it did not)
  int64_t steps = 0;                 // optimizer steps taken in this call
  double train_seconds = 0;          // training steps only (no evaluation), this call
  int64_t tokens = 0;                // positions with a target trained on, this call
  std::vector<double> epoch_losses;  // mean training loss of each epoch run in this call
  std::vector<double> epoch_seconds;
  bool checkpoint_written = false;   // this call wrote TrainOptions::checkpoint_path

  double tokens_per_second() const { return tokens / std::max(train_seconds, 1e-9); }
  double median_epoch_seconds() const;
  // "best validation epoch N: ..." and "test at that epoch: ..." lines, each only when there is
  // something to say (a run stopped early to be resumed may not have validated or tested yet).
  std::string summary_lines() const;
  // "checkpoint: PATH", or why this call did not write it (a resumed run that never beat the best
  // epoch before it; a run stopped before any validation). "" without a path.
  std::string checkpoint_line(const std::string& path) const;
};

// Trains `model` in place. It returns with the parameters of the last epoch run, while the result's
// test metrics are those of the best validation epoch: to keep that epoch's parameters, give
// options.checkpoint_path and read it back with load_model_checkpoint (the file also records how the
// data numbered its items: check_item_numbering in models/training_position.h refuses data that
// numbers them otherwise).
TrainResult train_model(SequentialModel& model, const data::SequenceDataset& dataset, const TrainOptions& options,
                        std::ostream& log);

// Checkpoints hold the model config and the training position in the metadata, the parameters
// ("param.*") and the optimizer state ("adamw.*", "muon.*").
void save_checkpoint(const std::string& path, SequentialModel& model, const OptimizerSet& optimizer,
                     const std::map<std::string, std::string>& metadata);
// A model alone, for `eval`, `recommend` and load_model_checkpoint: its parameters and config, and
// how `dataset` numbers its items, so check_item_numbering refuses data that numbers them otherwise.
void save_model(const std::string& path, SequentialModel& model, const data::SequenceDataset& dataset);
// Rebuilds the model a checkpoint describes on `device` and loads its parameters.
std::unique_ptr<SequentialModel> load_model_checkpoint(const std::string& path, Device device,
                                                       SafetensorsFile* file_out = nullptr);
std::unique_ptr<SequentialModel> load_model_checkpoint(const SafetensorsFile& file, Device device);

}  // namespace muonrec

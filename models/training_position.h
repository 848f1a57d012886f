// Where a training run stands between epochs: everything a resumed run needs besides the tensors
// (parameters, optimizer state), kept in a --save-last file's metadata. Shared by the sequential
// trainer and TIGER's.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "data/dataset.h"
#include "engine/safetensors.h"
#include "models/evaluate.h"
#include "models/trainer.h"

namespace muonrec {

struct TrainingPosition {
  int64_t epoch = 0;            // the last finished epoch
  uint64_t dropout_offset = 0;  // the dropout generator's offset after it
  double best_valid = -1.0;     // best validation NDCG@10 so far
  int64_t best_epoch = 0;
  std::string best_valid_json = RankingMetrics().to_json(), test_at_best_json = RankingMetrics().to_json();

  std::map<std::string, std::string> to_metadata() const;
  // Throws naming the file and the missing key when the file is not a training state.
  static TrainingPosition from_metadata(const SafetensorsFile& file);
};

RankingMetrics metrics_from_json(const std::string& text);  // RankingMetrics::to_json's inverse

// The metadata a --save-last file carries besides the position: the model config (JSON) and the
// data's shape, which open_training_state compares with the resuming run's.
std::map<std::string, std::string> training_state_metadata(const TrainingPosition& position,
                                                           const std::string& config_json,
                                                           const data::SequenceDataset& dataset);

// A --resume file, opened and checked before any tensor is read from it.
struct TrainingState {
  SafetensorsFile file;
  TrainingPosition position;
};
// Throws, naming the file, when it is not a training state (a best-epoch --checkpoint has no
// position), when it was written for another model config (naming each field that differs) or
// for data of another shape, or when --stop-after-epoch does not lie after its epoch.
TrainingState open_training_state(const TrainOptions& options, const std::string& config_json,
                                  const data::SequenceDataset& dataset);

// The last epoch this run trains: --stop-after-epoch when given, else the last of all.
int64_t last_epoch_of_run(const TrainOptions& options);
// "stopped after epoch N of M: continue with --resume FILE"
std::string stopped_early_line(const TrainOptions& options);

}  // namespace muonrec

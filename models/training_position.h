// Where a training run stands between epochs: everything a resumed run needs besides the tensors
// (parameters, optimizer state), kept in a --save-last file's metadata. Shared by the sequential
// trainer and TIGER's.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "engine/safetensors.h"
#include "models/evaluate.h"

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

}  // namespace muonrec

// For training tests: a short run whose test NDCG@10 must beat the most-popular baseline by a
// factor (the model learned the data's structure, not just its popularity).
#pragma once

#include <gtest/gtest.h>

#include <sstream>

#include "muonrec/data/synthetic.h"
#include "muonrec/models/trainer.h"

namespace muonrec::testkit {

// By default 300 users over 100 items, histories of 8 to 20 events: big enough to learn, small
// enough for a few seconds of CPU training.
inline data::SequenceDataset small_synthetic_dataset(int64_t users = 300, int64_t items = 100, int64_t min_length = 8,
                                                     int64_t max_length = 20) {
  data::SyntheticOptions options;
  options.users = users;
  options.items = items;
  options.min_length = min_length;
  options.max_length = max_length;
  options.seed = 3;
  return data::make_synthetic_dataset(options);
}

inline TrainResult expect_beats_popularity(SequentialModel& model, const data::SequenceDataset& dataset,
                                           const TrainOptions& options, double factor) {
  std::ostringstream log;
  TrainResult result = train_model(model, dataset, options, log);
  RankingMetrics popularity = evaluate_popularity(dataset, data::EvalSplit::Test, options.eval);
  EXPECT_GT(result.test_at_best.ndcg10, factor * popularity.ndcg10)
      << "model " << result.test_at_best.summary() << " vs popularity " << popularity.summary();
  return result;
}

}  // namespace muonrec::testkit

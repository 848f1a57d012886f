// For training tests: a short run whose test NDCG@10 must beat the most-popular baseline by a
// factor (the model learned the data's structure, not just its popularity).
#pragma once

#include <gtest/gtest.h>

#include <sstream>

#include "models/trainer.h"

namespace muonrec::testkit {

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

// The step benchmark (models/step_benchmark.h) for TIGER: training steps of a semantic-ID
// generator on synthetic histories over a catalogue of random codes, batched as its trainer batches
// real ones (models/tiger_batches.h). Tokens are semantic-ID tokens (levels + 1 per item).
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/step_benchmark.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_tokens.h"

namespace muonrec {

struct TigerBenchmarkData {
  data::SequenceDataset dataset;   // every history long enough to fill the model's window
  TigerCatalog catalog;
  std::vector<int64_t> vocab_sizes;  // per level, the disambiguation token's last: TigerConfig::vocab_sizes
};

// `users` histories of history_items + 3 items drawn uniformly from 1..n_items (train, validation
// and test parts: the training part fills a window of history_items), and each item a code of
// `levels` values uniform in 0..codebook-1 plus the disambiguation token. Deterministic by seed.
TigerBenchmarkData make_tiger_benchmark_data(int64_t n_items, int64_t levels, int64_t codebook, int64_t history_items,
                                             int64_t users, uint64_t seed);

// The passes on `model` (its config's vocab_sizes must be data.vocab_sizes), over the batches of as
// many epochs of data.dataset as the steps need, in the trainer's order.
StepBenchmarkResult benchmark_tiger_steps(TigerModel& model, const TigerBenchmarkData& data,
                                          const OptimizerConfig& optimizer, const StepBenchmarkOptions& options);

}  // namespace muonrec

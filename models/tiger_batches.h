// The examples a TIGER model trains on and the batches its trainer steps through (models/tiger.h).
// Decoder-only: one example per user, the token window of the user's whole training part, every
// position a target at once (fill_training_window). Encoder-decoder: one example per item of a
// user's training part after the first, the items before it as the generation window and its
// tokens as the decoder's targets. Batches hold examples of similar history length and are cut to
// their longest window, so short histories cost less; shapes vary from batch to batch.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_tokens.h"

namespace muonrec {

// Throws when `dataset` gives the model no training example, saying why (before the item vectors and
// k-means that would come first): the encoder-decoder learns each training item after a user's first
// from the ones before it, so it needs a user with two training items.
void check_tiger_has_examples(const data::SequenceDataset& dataset, const TigerConfig& config);

class TigerTrainingBatches {
 public:
  // Keeps references: catalog and dataset must outlive it.
  TigerTrainingBatches(const TigerCatalog& catalog, const data::SequenceDataset& dataset, const TigerConfig& config);
  TigerTrainingBatches(const TigerCatalog&, data::SequenceDataset&&, const TigerConfig&) = delete;
  TigerTrainingBatches(TigerCatalog&&, const data::SequenceDataset&, const TigerConfig&) = delete;

  int64_t examples() const { return static_cast<int64_t>(user_.size()); }
  int64_t steps_per_epoch(int64_t batch_size) const { return (examples() + batch_size - 1) / batch_size; }
  // The examples of each batch of an epoch, in the order they are stepped through: a pure function
  // of (dataset, batch size, seed, epoch).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t batch_size, uint64_t seed, int64_t epoch) const;
  // The batch of those examples on `device`.
  TigerBatch batch(const std::vector<int64_t>& picked, Device device) const;

 private:
  TigerBatch window_batch(const std::vector<int64_t>& picked, Device device) const;
  TigerBatch seq2seq_batch(const std::vector<int64_t>& picked, Device device) const;

  const TigerCatalog* catalog_;
  const data::SequenceDataset* dataset_;
  TigerConfig config_;
  std::vector<int64_t> user_, count_;  // each example: a user's first `count` items
};

}  // namespace muonrec

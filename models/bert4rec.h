// BERT4Rec (Sun et al. 2019): the pre-LN transformer of SASRec (models/transformer.h, same
// parameter names: item, pos, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}, ln) with bidirectional
// attention, trained as a cloze task. The item table has n_items + 2 rows: 0 is padding, n_items + 1
// the [MASK] token. The output is tied to items 1..n.
//
// Training (prepare_training_batch): each window of the user's training items is masked at random
// (cloze_mask) and the model predicts the original items at the masked positions. Evaluation
// (prepare_eval_batch): the last T-1 items of the history followed by [MASK], scored at T-1.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/models/sequential_model.h"
#include "muonrec/models/transformer.h"

namespace muonrec {

struct ClozeWindows {
  std::vector<int64_t> ids;      // [rows, T]: the items with masked positions set to the mask token
  std::vector<int64_t> targets;  // [rows, T]: the original item at masked positions, 0 elsewhere
};

// Cloze masking of left-padded windows items [rows, T] (row-major, 0 = padding): each non-padding
// position becomes mask_token with probability mask_prob; a row with items but no masked position
// gets one, chosen uniformly among its items, so every non-empty row trains. Padding is never
// masked. A pure function of (seed, offset, items): the draw for position i is philox_uniform(seed,
// offset, i), the fallback of row r uses index rows * T + r of the same stream.
ClozeWindows cloze_mask(const std::vector<int64_t>& items, int64_t rows, int64_t T, int64_t mask_token,
                        float mask_prob, uint64_t seed, uint64_t offset);

class BERT4Rec : public SequentialModel {
 public:
  BERT4Rec(const ModelConfig& config, Device device, uint64_t seed);
  int64_t mask_token() const { return config_.n_items + 1; }

  Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) override;
  Tensor scoring_matrix() override;
  Tensor item_embeddings() override { return encoder_.item(); }
  // The window of the last T training items (the batcher's inputs shifted by one and its last
  // target), cloze-masked with config().mask_prob; one generator stream per batch. No timestamps.
  SequenceBatch prepare_training_batch(const data::Batch& batch, PhiloxGenerator& generator) override;
  // The last T-1 items of the evaluation window followed by [MASK]. No timestamps.
  SequenceBatch prepare_eval_batch(const data::Batch& batch) override;
  data::TrainingTargets training_targets() const override { return data::TrainingTargets::masked_items; }

 private:
  TransformerEncoder encoder_;
};

}  // namespace muonrec

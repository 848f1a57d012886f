// The pre-LN transformer of reference/MODELS.md (SASRec's), shared by SASRec (causal attention)
// and BERT4Rec (bidirectional): item and position embeddings, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}
// and the final ln, registered in the PyTorch peer's order so names and initial draws match it.
#pragma once

#include <vector>

#include "models/sequential_model.h"

namespace muonrec {

class TransformerEncoder {
 public:
  TransformerEncoder() = default;
  // Registers item.weight [item_rows, d] (row 0, padding, zero), pos.weight [max_len, d], the blocks
  // and ln in `params`, drawing initial weights from `gen`. Errors name config.kind.
  TransformerEncoder(ParameterList& params, const ModelConfig& config, int64_t item_rows, PhiloxGenerator& gen,
                     Device device);
  // x = item[ids] * sqrt(d) + pos[0..T), dropout, zeroed at padding; the blocks (attention causal or
  // bidirectional); then ln. Returns [B, T, d].
  Tensor forward(const SequenceBatch& batch, bool causal, bool training, PhiloxGenerator& gen) const;
  const Tensor& item() const { return item_; }

 private:
  struct Block {
    LayerNorm ln1, ln2;
    Linear qkv, proj, fc1, fc2;
  };
  ModelConfig config_;
  Tensor item_, pos_;
  std::vector<Block> blocks_;
  LayerNorm ln_;
};

}  // namespace muonrec

// SASRec (Kang & McAuley 2018) in the pre-LN form of reference/MODELS.md, with the parameter names
// of the PyTorch peer: item, pos, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}, ln. Causal attention,
// next-item targets at every position, tied output.
#pragma once

#include <cstdint>

#include "muonrec/models/sequential_model.h"
#include "muonrec/models/transformer.h"

namespace muonrec {

class SASRec : public SequentialModel {
 public:
  SASRec(const ModelConfig& config, Device device, uint64_t seed);
  Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) override;
  Tensor scoring_matrix() override;
  Tensor item_embeddings() override { return encoder_.item(); }

 private:
  TransformerEncoder encoder_;
};

}  // namespace muonrec

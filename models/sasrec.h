// SASRec (Kang & McAuley 2018) in the pre-LN form of reference/MODELS.md, with the parameter names
// of the PyTorch peer: item, pos, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}, ln. Tied output.
#pragma once

#include <vector>

#include "models/sequential_model.h"

namespace muonrec {

class SASRec : public SequentialModel {
 public:
  SASRec(const ModelConfig& config, Device device, uint64_t seed);
  Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) override;
  Tensor scores(const Tensor& h) override;

 private:
  struct Block {
    LayerNorm ln1, ln2;
    Linear qkv, proj, fc1, fc2;
  };
  Tensor item_, pos_;
  std::vector<Block> blocks_;
  LayerNorm ln_;
};

}  // namespace muonrec

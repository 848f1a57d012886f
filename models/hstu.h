// HSTU (Zhai et al. 2024, the research layer of reference/MODELS.md) with the parameter names of
// the PyTorch peer: item, pos, blocks.{b}.{pos_bias, time_bias, uvqk, out}. L2-normalised user and
// item vectors, scores divided by a temperature of 0.05.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/kernels/hstu_time_bucket.h"
#include "muonrec/models/sequential_model.h"

namespace muonrec {

using kernels::kHstuTimeBuckets;  // the time-bias table has one entry per log-scale bucket

class HSTU : public SequentialModel {
 public:
  HSTU(const ModelConfig& config, Device device, uint64_t seed);
  // Uses batch.timestamps (time bias) when defined; without timestamps the time biases are unused.
  Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) override;
  Tensor scoring_matrix() override;
  // The raw table: the sampled softmax trains (and ranks by) the full softmax's cosine logits with
  // its L2 normalisation and a temperature of kScoreTemperature, which `muonrec train` sets for HSTU.
  Tensor item_embeddings() override { return item_; }

  static constexpr float kScoreTemperature = 0.05f;  // scores = cosine similarity / temperature

 private:
  struct Block {
    Tensor pos_bias, time_bias;
    Linear uvqk, out;
  };
  Tensor item_, pos_;
  std::vector<Block> blocks_;
};

}  // namespace muonrec

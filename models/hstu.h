// HSTU (Zhai et al. 2024, the research layer of reference/MODELS.md) with the parameter names of
// the PyTorch peer: item, pos, blocks.{b}.{pos_bias, time_bias, uvqk, out}. L2-normalised user and
// item vectors, scores divided by a temperature of 0.05.
#pragma once

#include <cstdint>
#include <vector>

#include "models/sequential_model.h"

namespace muonrec {

// Log-scale buckets of the gap between two timestamps: 0..128.
constexpr int64_t kHstuTimeBuckets = 129;
// clamp(floor(ln(max(|dt|, 1)) / 0.301), 0, 128), in double as torch_ref.time_buckets.
int64_t hstu_time_bucket(int64_t dt);
// Buckets [B, T, T] (row-major) of ts_next[i] - ts[j] for timestamps [B, T] (row-major), where
// ts_next[i] = ts[i + 1] and the last position uses its own timestamp: query i is scored by the
// time of the event it predicts.
std::vector<int64_t> hstu_time_buckets(const std::vector<int64_t>& timestamps, int64_t batch, int64_t seq);

class HSTU : public SequentialModel {
 public:
  HSTU(const ModelConfig& config, Device device, uint64_t seed);
  // Uses batch.timestamps (time bias) when defined; without timestamps the time biases are unused.
  Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) override;
  Tensor scoring_matrix() override;
  // The raw table: with --loss sampled, pass --l2-normalize --temperature 0.05 to train the cosine
  // logits scores() uses.
  Tensor item_embeddings() override { return item_; }

 private:
  struct Block {
    Tensor pos_bias, time_bias;
    Linear uvqk, out;
  };
  Tensor item_, pos_;
  std::vector<Block> blocks_;
};

}  // namespace muonrec

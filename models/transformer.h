// The pre-LN transformer of reference/MODELS.md (SASRec's), shared by SASRec (causal attention)
// and BERT4Rec (bidirectional): item and position embeddings, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}
// and the final ln, registered in the PyTorch peer's order so names and initial draws match it.
#pragma once

#include <cstdint>
#include <vector>

#include "models/sequential_model.h"

namespace muonrec {

// The pre-LN blocks alone (blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}), for models that embed their
// input differently (TIGER's semantic-ID tokens) but share the block math:
//   x += drop(proj(attention(qkv(ln1 x))));  x += drop(fc2(drop(gelu(fc1(ln2 x)))))
class TransformerBlocks {
 public:
  TransformerBlocks() = default;
  // Registers `count` blocks of width d (feed-forward ff) in `params`, drawing from `gen`.
  TransformerBlocks(ParameterList& params, int64_t count, int64_t d, int64_t ff, PhiloxGenerator& gen,
                    Device device);
  // Each block's packed q, k, v of a context, kept so that continuations of the context (the beams of
  // a generative decoder) run only their new positions: a KV cache.
  struct Cache {
    std::vector<Tensor> qkv;  // per block: [rows, T, 3d]
    Tensor valid;             // [rows, T], the context's key mask
  };

  // x [B, T, d] through every block; valid [B, T] masks attention keys (see ops::attention). With
  // `cache` (causal, evaluation only), also records each block's q, k, v for forward_continued.
  Tensor forward(Tensor x, const Tensor& valid, int64_t heads, bool causal, float dropout, bool training,
                 PhiloxGenerator& gen, Cache* cache = nullptr) const;
  // Causal continuation, evaluation mode: x [N, S, d] are S new positions appended to context row
  // context_rows[n] of `cache`. Returns them after every block, as forward() over the concatenated
  // [context, new] rows would (up to rounding), while the context's positions cost nothing again.
  Tensor forward_continued(Tensor x, const Cache& cache, const std::vector<int64_t>& context_rows,
                           int64_t heads) const;

 private:
  struct Block {
    LayerNorm ln1, ln2;
    Linear qkv, proj, fc1, fc2;
  };
  // The block after its attention: the projection, the residuals and the feed-forward part.
  static Tensor finish_block(const Block& block, Tensor x, const Tensor& attention, float p, bool training,
                             PhiloxGenerator& gen);
  std::vector<Block> blocks_;
};

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
  ModelConfig config_;
  Tensor item_, pos_;
  TransformerBlocks blocks_;
  LayerNorm ln_;
};

}  // namespace muonrec

// The pre-LN transformer of reference/MODELS.md (SASRec's), shared by SASRec (causal attention)
// and BERT4Rec (bidirectional): item and position embeddings, blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}
// and the final ln, registered in the PyTorch peer's order so names and initial draws match it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/models/sequential_model.h"

namespace muonrec {

// The width of the attention's packed q, k and v (each): heads * head_dim. head_dim 0 means
// d / heads (SASRec's and the peer's layout), which must then divide; a set head_dim decouples the
// attention's width from d, as T5's d_kv does (TIGER's 6 heads of 64 over d = 128). `who` names the
// model in errors.
int64_t attention_width(const char* who, int64_t d, int64_t heads, int64_t head_dim);
// Each head's width under the same rule (for messages; attention_width validates).
inline int64_t head_width(int64_t d, int64_t heads, int64_t head_dim) { return head_dim > 0 ? head_dim : d / heads; }

// The pre-LN blocks alone (blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}), for models that embed their
// input differently (TIGER's semantic-ID tokens) but share the block math:
//   x += drop(proj(attention(qkv(ln1 x))));  x += drop(fc2(drop(gelu(fc1(ln2 x)))))
// qkv maps d to 3 x attention width and proj maps the attention width back to d.
class TransformerBlocks {
 public:
  TransformerBlocks() = default;
  // Registers `count` blocks of width d (attention width `attention`, feed-forward ff) in `params`
  // as {names}{b}.*, drawing from `gen`.
  TransformerBlocks(ParameterList& params, int64_t count, int64_t d, int64_t attention, int64_t ff,
                    PhiloxGenerator& gen, Device device, const std::string& names = "blocks.");
  // Each block's packed q, k, v of a context and of the positions generated after it, kept so that
  // continuations of the context (the beams of a generative decoder) run only their newest
  // position: a KV cache.
  struct Cache {
    std::vector<Tensor> qkv;        // per block: [rows, T, 3 x attention width], the contexts
    Tensor valid;                   // [rows, T], the contexts' key mask
    std::vector<Tensor> generated;  // per block: [beams, S, 3 x attention width], each beam's S generated positions
  };

  // x [B, T, d] through every block; valid [B, T] masks attention keys (see ops::attention). With
  // `cache` (causal, evaluation only), also records each block's q, k, v as the cache's contexts.
  Tensor forward(Tensor x, const Tensor& valid, int64_t heads, bool causal, float dropout, bool training,
                 PhiloxGenerator& gen, Cache* cache = nullptr) const;
  // Causal continuation, evaluation mode: x [N, 1, d] is the newest position of N beams; beam n
  // follows context row context_rows[n] and, when the cache already holds S-1 generated positions
  // per beam, those of beam parent_rows[n] (empty on the first call). Returns x after every block,
  // as forward() over [context, generated, newest] would give at the newest position (up to
  // rounding), and leaves the N beams' S generated positions in the cache.
  Tensor forward_continued(Tensor x, Cache& cache, const std::vector<int64_t>& context_rows,
                           const std::vector<int64_t>& parent_rows, int64_t heads) const;

  // A decoder over an encoded context (TIGER's encoder-decoder): x [N, S, d] runs through the
  // blocks, and each block's causal attention also sees, before x's positions, the valid positions
  // of context [N, T, d] (context_valid [N, T]) projected by that block's own ln1 and qkv. The
  // context is the same in every block (an encoder's output), so this is self- and
  // cross-attention in one softmax. Equal to forward_continued from context_cache(context) with x's
  // positions added one at a time. Returns x after the blocks [N, S, d]; trains (gradients reach
  // the context).
  Tensor forward_with_context(Tensor x, const Tensor& context, const Tensor& context_valid, int64_t heads, float p,
                              bool training, PhiloxGenerator& gen) const;
  // The cache forward_continued needs to decode after `context` as forward_with_context does:
  // each block's q, k, v of the context, and its key mask. Evaluation only.
  Cache context_cache(const Tensor& context, const Tensor& context_valid) const;

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

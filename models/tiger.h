// TIGER-style generative retrieval (Rajput et al. 2023, "Recommender Systems with Generative
// Retrieval"): a transformer reads a user's history as semantic-ID tokens (models/tiger_tokens.h)
// and generates the next item's tokens, one level at a time.
//
// Two architectures (TigerConfig::encoder_blocks):
// - Decoder-only (encoder_blocks 0, the default): history tokens and the generated prefix form one
//   causal sequence through the engine's pre-LN causal blocks (SASRec's math). It trains on every
//   position of the history at once (each item's tokens are predicted from the items before it, as
//   SASRec's all-position training) and generates the code as continued next-token prediction.
// - Encoder-decoder, as the paper's T5: `encoder_blocks` bidirectional blocks read the history
//   (encoder.blocks.*, encoder.ln), and the decoder blocks run over [start, code_0 .. code_{C-2}],
//   each position attending the encoded history and the decoder positions before it in one softmax
//   (TransformerBlocks::forward_with_context: the history's keys and values come from the same
//   ln1 and qkv weights that project the block's decoder positions, where T5 has a separate
//   cross-attention with weights of its own). Decoder position s predicts level s; its input is
//   token * sqrt(d) + decoder.slot[s], the start (s = 0) reading token id 0. It trains on one
//   target item per example: every item of a user's training part after the first, with the items
//   before it as history (the models/tiger_train.h examples). Each decoder block computes the
//   attention of every history position too and keeps the decoder's (a training cost: an attention
//   with only the decoder's queries and a backward would save it).
//
// Parameters: token.weight [vocab, d] (row 0 padding: zero in the decoder-only model; in the
// encoder-decoder it is the start position's token and learns like the others, padding being masked
// anyway), pos.weight [max_items + 1, d] (the recency of a token's item, see
// models/tiger_tokens.h), level.weight [code_length, d] (which level of the tuple a token is),
// blocks.{b}.{ln1,qkv,proj,ln2,fc1,fc2}, ln; the encoder-decoder adds
// encoder.blocks.{b}.{...}, encoder.ln and decoder.slot.weight [code_length, d]. Input =
// token * sqrt(d) + pos + level; output logits tied to token.weight. The softmax of the loss and of
// generation is over the target level's token range only (a token's level is known from where it
// sits in the item's code, so the other levels' tokens are never candidates).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/models/module.h"
#include "muonrec/models/tiger_tokens.h"
#include "muonrec/models/transformer.h"

namespace muonrec {

struct TigerConfig {
  std::vector<int64_t> vocab_sizes;  // per code level (RqKMeans::vocab_sizes())
  int64_t max_items = 20;            // history items in the window
  int64_t d = 64;
  int64_t blocks = 2;
  int64_t heads = 1;
  int64_t head_dim = 0;  // 0: d / heads (see attention_width in models/transformer.h)
  int64_t ff = 0;        // 0: same as d
  float dropout = 0.1f;
  int64_t encoder_blocks = 0;  // 0: decoder-only; else the encoder-decoder's encoder depth

  bool encoder_decoder() const { return encoder_blocks > 0; }

  int64_t code_length() const { return static_cast<int64_t>(vocab_sizes.size()); }
  // Tokens of max_items whole history items: what generation starts from, and the encoder's input.
  int64_t history_window() const { return max_items * code_length(); }
  // Longest token window the blocks read. Decoder-only: the history window and the first
  // code_length - 1 codes of the item being generated after it (a training window ends at its
  // newest item's next-to-last code, a generation step appends up to code_length - 1 codes to the
  // history), so training sees every history item whole, as generation does.
  int64_t window() const { return history_window() + (encoder_decoder() ? 0 : code_length() - 1); }
  // Throws naming the bad setting: what can be checked before the vocabulary is known, so a run
  // fails before minutes of item vectors and k-means rather than at its first step.
  void check_shape() const;
  std::string to_json() const;                                   // with "kind": "tiger"
  // Throws naming the bad field; head_dim and encoder_blocks are optional (older checkpoints lack
  // them: d / heads, decoder-only).
  static TigerConfig from_json(const std::string& text);
};

// One batch on the model's device: ids [B, T] (0 = padding), positions [B, T] (item recency, as the
// window functions of models/tiger_tokens.h fill it), levels [B, T] (each token's level; 0 at
// padding, where the input is zeroed anyway), valid [B, T]. For training, per level l: the
// flat positions (b*T + t) whose target is a level-l token, and those targets' codes. An
// encoder-decoder batch has the history in ids..valid and the decoder's inputs in decoder_ids (the
// target's tokens shifted right, 0 for the start) and decoder_slots [B, code length]; its target
// positions are then decoder positions (b*C + l).
struct TigerBatch {
  Tensor ids, positions, levels, valid;
  Tensor decoder_ids, decoder_slots;
  std::vector<Tensor> target_positions, target_codes;
  std::vector<int64_t> target_counts;
  int64_t targets = 0;
};

// Host arrays [B*T] row-major. targets: next tokens (0 = none), or empty for a generation batch.
TigerBatch make_tiger_batch(const SemanticIdVocab& vocab, const std::vector<int64_t>& ids,
                            const std::vector<int64_t>& positions, const std::vector<int64_t>& targets,
                            int64_t batch, int64_t T, Device device);

// Encoder-decoder training batch: the histories as generation windows (ids, positions [B*T] as
// fill_generation_window fills them) and each row's target item's tokens [B * code length].
TigerBatch make_tiger_seq2seq_batch(const SemanticIdVocab& vocab, const std::vector<int64_t>& ids,
                                    const std::vector<int64_t>& positions, const std::vector<int64_t>& target_tokens,
                                    int64_t batch, int64_t T, Device device);

class TigerModel {
 public:
  TigerModel(const TigerConfig& config, Device device, uint64_t seed);

  // Final hidden states for T <= window(): [B, T, d], or the decoder's [B, code length, d].
  Tensor hidden(const TigerBatch& batch, bool training, PhiloxGenerator& generator);
  // Mean over target positions of the cross-entropy within each target's level.
  Tensor loss(const TigerBatch& batch, bool training, PhiloxGenerator& generator);
  // Log-softmax over level `level`'s codes at the last position of every row, on the host:
  // [B * vocab(level)] row-major. Evaluation mode (no dropout, no gradient). Decoder-only.
  std::vector<float> next_code_log_probs(const TigerBatch& batch, int64_t level);

  // Generation with the histories encoded once. start_generation runs the history windows (a batch
  // without prefix, e.g. from fill_generation_window), keeps every block's keys and values in
  // `cache`, and returns next_code_log_probs(history, 0). Each continue_generation call then adds
  // one code to every beam: beam n appends token tokens[n] (host, level S-1 for the call's S-th
  // code) to beam parent_rows[n] of the previous call (parent_rows empty on the first call) after
  // history row context_rows[n]. Only that newest position runs through the blocks; the cache keeps
  // the generated ones. Returns log-softmax over level S's codes [N * vocab(S)], equal up to rounding
  // to next_code_log_probs on history + the beam's whole prefix. Encoder-decoder: the history is
  // encoded once, the cache holds each decoder block's projection of it, start_generation runs the
  // start position (which the first continuation's beams extend), and the results equal the
  // training forward's (hidden() on a make_tiger_seq2seq_batch) at the same decoder positions.
  std::vector<float> start_generation(const TigerBatch& history, TransformerBlocks::Cache& cache);
  std::vector<float> continue_generation(TransformerBlocks::Cache& cache, const std::vector<int64_t>& context_rows,
                                         const std::vector<int64_t>& parent_rows,
                                         const std::vector<int64_t>& tokens);

  ParameterList& parameters() { return params_; }
  const TigerConfig& config() const { return config_; }
  const SemanticIdVocab& vocab() const { return vocab_; }
  Device device() const { return device_; }

 private:
  // token * sqrt(d) + pos + level, dropout, zeroed at padding.
  Tensor embed(const TigerBatch& batch, bool training, PhiloxGenerator& gen) const;
  // The encoder-decoder's encoder: the embedded history through the bidirectional blocks and ln.
  Tensor encode(const TigerBatch& history, bool training, PhiloxGenerator& gen) const;
  // The decoder's input: token * sqrt(d) + slot, dropout (ids [N, S], 0 at the start). [N, S, d].
  Tensor embed_decoder(const Tensor& ids, const Tensor& slots, bool training, PhiloxGenerator& gen) const;
  // Log-softmax over level `level`'s codes of the last position of each row of h [B, T, d] (after ln).
  std::vector<float> last_position_log_probs(const Tensor& h, int64_t level) const;

  TigerConfig config_;
  SemanticIdVocab vocab_;
  Device device_;
  ParameterList params_;
  Tensor token_, pos_, level_;
  TransformerBlocks blocks_;
  LayerNorm ln_;
  // Encoder-decoder only.
  TransformerBlocks encoder_;
  LayerNorm encoder_ln_;
  Tensor slot_;
};

// "tiger (decoder-only) d=64 blocks=2 heads=2x32 ff=64 history=20 items (80 tokens) vocabulary
// 1+256+256+256+2 dropout=0.1 (N parameters) on cpu": the model's shape, for the start of a report.
std::string describe_tiger_model(TigerModel& model);

}  // namespace muonrec

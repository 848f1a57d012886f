// The interface shared by sequential models (SASRec, BERT4Rec, HSTU): a batch of left-padded
// histories in, hidden states and full-catalogue scores out; the loss (full or sampled softmax)
// and the batch hooks that turn the batcher's windows into a model's input are shared too, so the
// trainer and the evaluator stay model-agnostic.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "muonrec/data/batcher.h"
#include "muonrec/models/module.h"

namespace muonrec {

// One batch on the model's device. ids, targets: i64 [B, T] (0 = padding / no target);
// valid: f32 [B, T] (ids > 0); timestamps: i64 [B, T] or undefined.
struct SequenceBatch {
  Tensor ids, targets, valid, timestamps;
  // Flat positions (b*T + t) with a target, and those targets shifted to class ids (item - 1):
  // the loss is computed on these rows only.
  Tensor target_positions, target_classes;
  // Host copy of the target items (1..n) of those rows: the sampled softmax draws its negatives on
  // the host and masks those equal to the target without reading the device.
  std::vector<int64_t> target_items;
};

// Uploads host arrays ([B*T], row-major) to `device` and derives valid and the target rows.
// targets may hold 0 (no target) anywhere; timestamps may be empty.
SequenceBatch make_sequence_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& targets,
                                  const std::vector<int64_t>& timestamps, int64_t batch, int64_t seq, Device device);

// The training loss. FullSoftmax (the default, what the fixtures test): cross-entropy over every
// item, through the model's scores(). SampledSoftmax: cross-entropy over the target and `negatives`
// uniform draws from items 1..n (draws equal to the target are masked), logits
// <h, e_item> / temperature, with h and the item vectors L2-normalised first when l2_normalize
// (cosine logits, as the HSTU paper trains). The sampled options do not affect FullSoftmax.
struct LossConfig {
  enum class Kind { FullSoftmax, SampledSoftmax };
  Kind kind = Kind::FullSoftmax;
  int64_t negatives = 128;
  float temperature = 1.0f;
  bool l2_normalize = false;
  std::string name() const;      // "full" or "sampled" (the CLI's and the config JSON's spelling)
  std::string describe() const;  // e.g. "sampled softmax (128 negatives, temperature 0.05, L2-normalised)"
  static Kind kind_from_name(const std::string& name);  // throws on anything but full / sampled
};

struct ModelConfig {
  std::string kind = "sasrec";
  int64_t n_items = 0;
  int64_t max_len = 200;
  int64_t d = 64;
  int64_t blocks = 2;
  int64_t heads = 1;
  int64_t head_dim = 0;  // 0: d / heads (see attention_width in models/transformer.h)
  int64_t ff = 0;        // 0: same as d
  float dropout = 0.2f;
  LossConfig loss;
  float mask_prob = 0.2f;  // BERT4Rec: probability that a training position is masked (cloze)
  // Rows of the item table: padding id 0, items 1..n_items, and BERT4Rec's [MASK] token after them.
  int64_t item_table_rows() const { return kind == "bert4rec" ? n_items + 2 : n_items + 1; }
  std::string to_json() const;
  // Throws naming the bad field. The loss, mask_prob and head_dim fields are optional (checkpoints
  // written before they existed load with the defaults).
  static ModelConfig from_json(const std::string& text);
};

class SequentialModel {
 public:
  virtual ~SequentialModel() = default;
  // Final hidden states [B, T, d]. `generator` drives dropout when training.
  virtual Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) = 0;
  // The matrix the full softmax scores items with: logits h @ scoring_matrix()^T, [n_items, d], row c
  // is item c+1 (differentiable: tied item embeddings, normalised and scaled where the model says so).
  virtual Tensor scoring_matrix() = 0;
  // Scores over items 1..n for hidden rows h [N, d]: [N, n_items] (column c is item c+1): the
  // logits of the training loss, h @ scoring_matrix()^T for the full softmax, and for the sampled
  // one its logits against every item (sampled_softmax_scores).
  Tensor scores(const Tensor& h);
  // The item table as the sampled softmax reads it: [rows, d], row i is item i (row 0 padding;
  // rows past n_items, such as BERT4Rec's [MASK], are never candidates). The raw parameter: the
  // loss applies LossConfig's normalisation and temperature itself. Every model must provide it
  // (SASRec, BERT4Rec, HSTU: their item.weight).
  virtual Tensor item_embeddings() = 0;
  // Mean cross-entropy over positions with a target, full or sampled softmax as config().loss
  // says. The sampled path draws its negatives from `generator` (one stream per call).
  virtual Tensor loss(const SequenceBatch& batch, bool training, PhiloxGenerator& generator);

  // Batch hooks: the batcher's fixed-shape windows (data/batcher.h) to this model's input.
  // Training windows carry next-item targets at every position; the default uses them as they
  // are (SASRec, HSTU). BERT4Rec turns them into cloze examples, drawing the masks from
  // `generator`.
  virtual SequenceBatch prepare_training_batch(const data::Batch& batch, PhiloxGenerator& generator);
  // Evaluation windows hold the last T items of each history; the evaluator scores position T-1
  // of the returned batch (which has no loss rows). Default: the window as it is; BERT4Rec: the
  // last T-1 items followed by [MASK].
  virtual SequenceBatch prepare_eval_batch(const data::Batch& batch);
  // What prepare_training_batch trains on, which decides the users that can train.
  virtual data::TrainingTargets training_targets() const { return data::TrainingTargets::next_items; }

  ParameterList& parameters() { return params_; }
  const ModelConfig& config() const { return config_; }
  Device device() const { return device_; }

 protected:
  SequentialModel(const ModelConfig& config, Device device) : config_(config), device_(device) {}
  ModelConfig config_;
  Device device_;
  ParameterList params_;
};

// Builds the model named by config.kind with weights drawn from `seed`.
std::unique_ptr<SequentialModel> make_model(const ModelConfig& config, Device device, uint64_t seed);

}  // namespace muonrec

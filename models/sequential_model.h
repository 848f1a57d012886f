// The interface shared by next-item models (SASRec now; HSTU and BERT4Rec implement it too):
// a batch of left-padded histories in, hidden states and full-catalogue scores out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/module.h"

namespace muonrec {

// One batch on the model's device. ids, targets: i64 [B, T] (0 = padding / no target);
// valid: f32 [B, T] (ids > 0); timestamps: i64 [B, T] or undefined.
struct SequenceBatch {
  Tensor ids, targets, valid, timestamps;
  // Flat positions (b*T + t) with a target, and those targets shifted to class ids (item - 1):
  // the loss is computed on these rows only.
  Tensor target_positions, target_classes;
};

// Uploads host arrays ([B*T], row-major) to `device` and derives valid and the target rows.
// targets may hold 0 (no target) anywhere; timestamps may be empty.
SequenceBatch make_sequence_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& targets,
                                  const std::vector<int64_t>& timestamps, int64_t batch, int64_t seq, Device device);

struct ModelConfig {
  std::string kind = "sasrec";
  int64_t n_items = 0;
  int64_t max_len = 200;
  int64_t d = 64;
  int64_t blocks = 2;
  int64_t heads = 1;
  int64_t ff = 0;  // 0: same as d
  float dropout = 0.2f;
  std::string to_json() const;
  static ModelConfig from_json(const std::string& text);  // throws naming the bad field
};

class SequentialModel {
 public:
  virtual ~SequentialModel() = default;
  // Final hidden states [B, T, d]. `generator` drives dropout when training.
  virtual Tensor hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) = 0;
  // Scores over items 1..n for hidden rows h [N, d]: [N, n_items] (column c is item c+1).
  virtual Tensor scores(const Tensor& h) = 0;
  // Mean full-softmax cross-entropy over positions with a target.
  virtual Tensor loss(const SequenceBatch& batch, bool training, PhiloxGenerator& generator);

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

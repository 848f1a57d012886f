#include "muonrec/models/sequential_model.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"
#include "muonrec/models/bert4rec.h"
#include "muonrec/models/config_json.h"
#include "muonrec/models/hstu.h"
#include "muonrec/models/sampled_softmax.h"
#include "muonrec/models/sasrec.h"

namespace muonrec {

Tensor SequentialModel::loss(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) {
  NVTX_RANGE("loss");
  Tensor h = hidden(batch, training, generator);
  // Only positions with a target enter the loss: gather those rows (an embedding lookup into the
  // flattened hidden states, whose backward scatters the gradient back deterministically).
  Tensor rows = ops::embedding(h.reshape({-1, config_.d}), batch.target_positions);
  const LossConfig& loss = config_.loss;
  if (loss.kind == LossConfig::Kind::SampledSoftmax) {
    MUONREC_CHECK(static_cast<int64_t>(batch.target_items.size()) == rows.dim(0),
                  "sampled softmax: the batch has {} target rows but {} host target items (build batches with "
                  "make_sequence_batch)", rows.dim(0), batch.target_items.size());
    std::vector<int64_t> candidates =
        draw_sampled_candidates(batch.target_items, loss.negatives, config_.n_items, generator);
    return sampled_softmax_loss(rows, item_embeddings(), candidates, 1 + loss.negatives, loss.temperature,
                                loss.l2_normalize);
  }
  // Full softmax over the catalogue in item chunks: the [rows, n_items] logits never exist at once.
  return ops::linear_cross_entropy(rows, scoring_matrix(), batch.target_classes);
}

Tensor SequentialModel::scores(const Tensor& h) {
  NVTX_RANGE("scores");
  // Items are ranked by the logits the loss trained.
  const LossConfig& loss = config_.loss;
  if (loss.kind == LossConfig::Kind::SampledSoftmax)
    return sampled_softmax_scores(h, item_embeddings(), config_.n_items, loss.temperature, loss.l2_normalize);
  return ops::linear(h, scoring_matrix());
}

SequenceBatch SequentialModel::prepare_training_batch(const data::Batch& batch, PhiloxGenerator& /*generator*/) {
  return make_sequence_batch(batch.ids, batch.targets, batch.timestamps, batch.rows, batch.T, device_);
}

SequenceBatch SequentialModel::prepare_eval_batch(const data::Batch& batch) {
  // Only the last position is scored: no loss rows.
  const std::vector<int64_t> no_targets(batch.ids.size(), 0);
  return make_sequence_batch(batch.ids, no_targets, batch.timestamps, batch.rows, batch.T, device_);
}

std::string LossConfig::name() const { return kind == Kind::SampledSoftmax ? "sampled" : "full"; }

std::string LossConfig::describe() const {
  if (kind == Kind::FullSoftmax) return "full softmax";
  return fmt::format("sampled softmax ({} negatives, temperature {}{})", negatives, temperature,
                     l2_normalize ? ", L2-normalised" : "");
}

LossConfig::Kind LossConfig::kind_from_name(const std::string& name) {
  if (name == "full") return Kind::FullSoftmax;
  if (name == "sampled") return Kind::SampledSoftmax;
  MUONREC_FAIL("unknown loss '{}' (available: full, sampled)", name);
}

SequenceBatch make_sequence_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& targets,
                                  const std::vector<int64_t>& timestamps, int64_t batch, int64_t seq, Device device) {
  const size_t n = static_cast<size_t>(batch * seq);
  MUONREC_CHECK(ids.size() == n && targets.size() == n && (timestamps.empty() || timestamps.size() == n),
                "batch arrays do not match [{}, {}]", batch, seq);
  std::vector<float> valid(n);
  std::vector<int64_t> positions, classes;
  SequenceBatch out;
  for (size_t i = 0; i < n; ++i) {
    valid[i] = ids[i] > 0 ? 1.0f : 0.0f;
    if (targets[i] > 0) {
      positions.push_back(static_cast<int64_t>(i));
      classes.push_back(targets[i] - 1);
      out.target_items.push_back(targets[i]);
    }
  }
  out.ids = Tensor::from_i64(ids, {batch, seq}, device);
  out.targets = Tensor::from_i64(targets, {batch, seq}, device);
  out.valid = Tensor::from_f32(valid, {batch, seq}, device);
  if (!timestamps.empty()) out.timestamps = Tensor::from_i64(timestamps, {batch, seq}, device);
  const int64_t count = static_cast<int64_t>(positions.size());
  out.target_positions = Tensor::from_i64(positions, {count}, device);
  out.target_classes = Tensor::from_i64(classes, {count}, device);
  return out;
}

std::string ModelConfig::to_json() const {
  nlohmann::json j = {{"kind", kind},     {"n_items", n_items}, {"maxlen", max_len}, {"d", d},
                      {"blocks", blocks}, {"heads", heads},     {"ff", ff},          {"dropout", dropout}};
  j["loss"] = loss.name();
  j["negatives"] = loss.negatives;
  j["temperature"] = loss.temperature;
  j["l2_normalize"] = loss.l2_normalize;
  j["mask_prob"] = mask_prob;
  j["head_dim"] = head_dim;
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  const nlohmann::json j = parse_config_json(text, "model config");
  ModelConfig c;
  auto field = [&](const char* name, auto& out) { read_config_field(j, name, out, "model config"); };
  field("kind", c.kind);
  // Before the other fields: another family's config (TIGER's) lacks them, and should say so.
  MUONREC_CHECK(c.kind == "sasrec" || c.kind == "bert4rec" || c.kind == "hstu",
                "model config: kind is '{}', not sasrec, bert4rec or hstu{}", c.kind,
                c.kind == "tiger" ? " (a TIGER checkpoint: use it with --model tiger)" : "");
  field("n_items", c.n_items);
  field("maxlen", c.max_len);
  field("d", c.d);
  field("blocks", c.blocks);
  field("heads", c.heads);
  field("ff", c.ff);
  field("dropout", c.dropout);
  // Added later: absent from older checkpoints, which then get the defaults (full softmax).
  auto optional_field = [&](const char* name, auto& out) {
    if (j.contains(name)) field(name, out);
  };
  std::string loss_name = c.loss.name();
  optional_field("loss", loss_name);
  c.loss.kind = LossConfig::kind_from_name(loss_name);
  optional_field("negatives", c.loss.negatives);
  optional_field("temperature", c.loss.temperature);
  optional_field("l2_normalize", c.loss.l2_normalize);
  optional_field("mask_prob", c.mask_prob);
  optional_field("head_dim", c.head_dim);
  return c;
}

std::unique_ptr<SequentialModel> make_model(const ModelConfig& config, Device device, uint64_t seed) {
  // Found here, not at the first training step or evaluation that would use them.
  MUONREC_CHECK(config.dropout >= 0.0f && config.dropout < 1.0f, "{}: dropout must be in [0, 1), got {}", config.kind,
                config.dropout);
  if (config.loss.kind == LossConfig::Kind::SampledSoftmax) {
    MUONREC_CHECK(config.loss.negatives >= 1, "{}: sampled softmax needs at least one negative, got {}", config.kind,
                  config.loss.negatives);
    MUONREC_CHECK(config.loss.temperature > 0.0f && std::isfinite(config.loss.temperature),
                  "{}: the sampled softmax temperature must be a finite number > 0, got {}", config.kind,
                  config.loss.temperature);
  }
  if (config.kind == "sasrec") return std::make_unique<SASRec>(config, device, seed);
  if (config.kind == "bert4rec") return std::make_unique<BERT4Rec>(config, device, seed);
  if (config.kind == "hstu") return std::make_unique<HSTU>(config, device, seed);
  MUONREC_FAIL("unknown model '{}' (available: sasrec, bert4rec, hstu)", config.kind);
}

}  // namespace muonrec

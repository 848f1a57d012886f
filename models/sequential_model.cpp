#include "models/sequential_model.h"

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/ops.h"
#include "models/hstu.h"
#include "models/sasrec.h"

namespace muonrec {

Tensor SequentialModel::loss(const SequenceBatch& batch, bool training, PhiloxGenerator& generator) {
  Tensor h = hidden(batch, training, generator);
  // Only positions with a target enter the loss: gather those rows (an embedding lookup into the
  // flattened hidden states, whose backward scatters the gradient back deterministically).
  Tensor rows = ops::embedding(h.reshape({-1, config_.d}), batch.target_positions);
  return ops::cross_entropy(scores(rows), batch.target_classes);
}

SequenceBatch make_sequence_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& targets,
                                  const std::vector<int64_t>& timestamps, int64_t batch, int64_t seq, Device device) {
  const size_t n = static_cast<size_t>(batch * seq);
  MUONREC_CHECK(ids.size() == n && targets.size() == n && (timestamps.empty() || timestamps.size() == n),
                "batch arrays do not match [{}, {}]", batch, seq);
  std::vector<float> valid(n);
  std::vector<int64_t> positions, classes;
  for (size_t i = 0; i < n; ++i) {
    valid[i] = ids[i] > 0 ? 1.0f : 0.0f;
    if (targets[i] > 0) {
      positions.push_back(static_cast<int64_t>(i));
      classes.push_back(targets[i] - 1);
    }
  }
  SequenceBatch out;
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
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MUONREC_FAIL("model config is not valid JSON: {}", e.what());
  }
  ModelConfig c;
  auto field = [&](const char* name, auto& out) {
    MUONREC_CHECK(j.contains(name), "model config lacks field '{}'", name);
    try {
      j.at(name).get_to(out);
    } catch (const nlohmann::json::exception& e) {
      MUONREC_FAIL("model config field '{}': {}", name, e.what());
    }
  };
  field("kind", c.kind);
  field("n_items", c.n_items);
  field("maxlen", c.max_len);
  field("d", c.d);
  field("blocks", c.blocks);
  field("heads", c.heads);
  field("ff", c.ff);
  field("dropout", c.dropout);
  return c;
}

std::unique_ptr<SequentialModel> make_model(const ModelConfig& config, Device device, uint64_t seed) {
  if (config.kind == "sasrec") return std::make_unique<SASRec>(config, device, seed);
  if (config.kind == "hstu") return std::make_unique<HSTU>(config, device, seed);
  MUONREC_FAIL("unknown model '{}' (available: sasrec, hstu)", config.kind);
}

}  // namespace muonrec

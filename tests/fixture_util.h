// Model conformance against the PyTorch fixtures (shared/fixtures, reference/MODELS.md): the
// config, weights and batch come from the file; the hidden state, last-position scores, loss and
// every parameter gradient must match the float64 reference to relative error under 1e-4.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "muonrec/engine/safetensors.h"
#include "muonrec/models/sequential_model.h"
#include "test_util.h"

namespace muonrec::testkit {

inline ModelConfig config_from_fixture(const SafetensorsFile& file) {
  auto j = nlohmann::json::parse(file.metadata.at("config"));
  ModelConfig c;
  c.kind = j["kind"];
  c.n_items = j["n_items"];
  c.max_len = j["maxlen"];
  c.d = j["d"];
  c.blocks = j["blocks"];
  c.heads = j["heads"];
  c.ff = j["ff"];
  c.dropout = j["dropout"];
  return c;
}

// Runs the check and prints the measured errors (one line), so that a report can quote them.
inline void check_model_against_fixture(const std::string& fixture, Device device) {
  constexpr double kTolerance = 1e-4;
  SafetensorsFile file = load_safetensors(fixture);
  ModelConfig config = config_from_fixture(file);
  auto model = make_model(config, device, 1);
  model->parameters().load_from(file, "param.");
  const Tensor& ids = file.at("input.ids");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  std::vector<int64_t> timestamps = file.contains("input.timestamps") ? file.at("input.timestamps").to_i64_vector()
                                                                      : std::vector<int64_t>{};
  SequenceBatch batch = make_sequence_batch(ids.to_i64_vector(), file.at("input.targets").to_i64_vector(), timestamps,
                                            B, T, device);
  PhiloxGenerator gen(0);
  double hidden_error = 0.0, scores_error = 0.0;
  {
    NoGradGuard no_grad;
    Tensor h = model->hidden(batch, false, gen);
    hidden_error = relative_error(h, file.at("output.hidden"));
    EXPECT_LT(hidden_error, kTolerance) << "hidden";
    std::vector<int64_t> last(B);
    for (int64_t b = 0; b < B; ++b) last[b] = b * T + T - 1;
    Tensor last_h = ops::embedding(h.reshape({B * T, config.d}), Tensor::from_i64(last, {B}, device));
    scores_error = relative_error(model->scores(last_h), file.at("output.last_scores"));
    EXPECT_LT(scores_error, kTolerance) << "last_scores";
  }
  model->parameters().zero_grad();
  Tensor loss = model->loss(batch, false, gen);
  const double expected_loss = file.at("output.loss").item();
  const double loss_error = std::fabs(loss.item() - expected_loss) / std::fabs(expected_loss);
  EXPECT_LT(loss_error, kTolerance) << "loss " << loss.item() << " vs " << expected_loss;
  backward(loss);
  double worst_grad_error = 0.0;
  std::string worst_grad = "none";
  for (const auto& p : model->parameters().all()) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    const double error = relative_error(p.tensor.grad(), file.at("grad." + p.name));
    EXPECT_LT(error, kTolerance) << "grad." << p.name;
    if (error >= worst_grad_error) {
      worst_grad_error = error;
      worst_grad = p.name;
    }
  }
  std::printf("[fixture %s on %s] relative errors: hidden %.2e, last_scores %.2e, loss %.2e, "
              "worst gradient %.2e (%s)\n",
              config.kind.c_str(), device_name(device), hidden_error, scores_error, loss_error, worst_grad_error,
              worst_grad.c_str());
}

}  // namespace muonrec::testkit

// AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW computes it: decoupled weight decay,
// bias-corrected moments, fp32 state. One update per parameter tensor on its device.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "models/module.h"

namespace muonrec {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.98f;  // the peer's setting for sequential recommenders
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

class AdamW {
 public:
  AdamW(std::vector<NamedParameter> params, const AdamWOptions& options);

  // Applies one update to every parameter that has a gradient.
  void step();
  void set_lr(float lr) { options_.lr = lr; }
  float lr() const { return options_.lr; }
  int64_t steps() const { return steps_; }
  const std::vector<NamedParameter>& params() const { return params_; }

  // Moments and step count under `prefix` (for checkpoints), and their restoration.
  std::map<std::string, Tensor> state(const std::string& prefix) const;
  void load_state(const SafetensorsFile& file, const std::string& prefix);

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace muonrec

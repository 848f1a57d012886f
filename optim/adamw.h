// AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW computes it: decoupled weight decay,
// bias-corrected moments, fp32 state. One update per parameter tensor on its device.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace muonrec {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.98f;  // the peer's setting for sequential recommenders
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<NamedParameter> params, const AdamWOptions& options);

  const char* name() const override { return "adamw"; }
  void step() override;
  void set_lr(float lr) override { options_.lr = lr; }
  float lr() const override { return options_.lr; }
  int64_t steps() const override { return steps_; }
  const std::vector<NamedParameter>& params() const override { return params_; }
  std::map<std::string, Tensor> state(const std::string& prefix) const override;
  void load_state(const SafetensorsFile& file, const std::string& prefix) override;
  std::string describe() const override;

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace muonrec

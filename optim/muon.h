// Muon (Jordan et al. 2024) as torch.optim.Muon defines it: EMA momentum (Nesterov by default),
// Newton-Schulz orthogonalization of the update, decoupled weight decay with the unadjusted lr,
// and an lr adjusted to the matrix shape. For 2-D parameters only.
#pragma once

#include "optim/newton_schulz.h"
#include "optim/optimizer.h"

namespace muonrec {

enum class MuonAdjustLr {
  Original,       // lr * sqrt(max(1, rows / cols))
  MatchRmsAdamW,  // lr * 0.2 * sqrt(max(rows, cols))
};
MuonAdjustLr parse_muon_adjust_lr(const std::string& name);  // "original" | "match_rms_adamw"

struct MuonOptions {
  float lr = 0.02f;
  float momentum = 0.95f;
  float weight_decay = 0.0f;
  bool nesterov = true;
  MuonAdjustLr adjust_lr = MuonAdjustLr::Original;
  NewtonSchulzOptions newton_schulz = quintic_newton_schulz();
};

class Muon : public Optimizer {
 public:
  Muon(std::vector<NamedParameter> params, const MuonOptions& options);

  const char* name() const override { return "muon"; }
  void step() override;
  void set_lr(float lr) override { options_.lr = lr; }
  float lr() const override { return options_.lr; }
  int64_t steps() const override { return steps_; }
  const std::vector<NamedParameter>& params() const override { return params_; }
  std::map<std::string, Tensor> state(const std::string& prefix) const override;
  void load_state(const SafetensorsFile& file, const std::string& prefix) override;
  std::string describe() const override;

  // The learning rate applied to a [rows, cols] matrix.
  float adjusted_lr(int64_t rows, int64_t cols) const;

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> momentum_buffer_;
  MuonOptions options_;
  int64_t steps_ = 0;
};

}  // namespace muonrec

// AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW computes it: decoupled weight decay,
// bias-corrected moments, fp32 master weights and state. Fused: one launch updates every tensor on
// a device, through a pointer table and hyperparameters held in device memory (the table is uploaded
// again only when a gradient buffer moves, so with a gradient arena nothing is uploaded but the
// step's scalars).
// One step count serves every tensor: a parameter left without a gradient in some step is skipped
// (its moments and weights stay), but its bias correction still counts that step, where torch keeps
// a count per parameter. Every model here gives every parameter a gradient each step (the gradient
// arena), so the two agree; a caller that skips parameters gets a smaller first update for them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "muonrec/engine/device_value.h"
#include "muonrec/kernels/adamw_math.h"
#include "muonrec/optim/device_table.h"
#include "muonrec/optim/optimizer.h"

namespace muonrec {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.98f;  // the peer's setting for sequential recommenders
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  // Keep a bf16 copy of every parameter, refreshed by each step with stochastic rounding (for
  // bf16 forward passes); read it with bf16_copy(i). Made from the parameters at construction and
  // again by load_state (rounded to nearest there), so load the parameters first.
  bool bf16_copy = false;
  uint64_t seed = 0;  // stochastic rounding stream
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

  // Gradients are multiplied by this in the update (1 unless set: for a caller that folds a gradient
  // scale into the step; the trainers clip by rescaling the gradient arena instead, models/module.h).
  void set_grad_scale(float scale) { grad_scale_ = scale; }
  // The bf16 copy of parameter i (undefined unless options.bf16_copy).
  const Tensor& bf16_copy(size_t i) const { return bf16_copies_[i]; }

 private:
  // The pointer table, chunk list and hyperparameters of one device, kept on that device.
  struct DeviceTables {
    DeviceTable<kernels::AdamWTensor> tensors;
    DeviceTable<kernels::TensorChunk> chunks;
    std::unique_ptr<DeviceValue> hyper;
  };
  void run_device(Device device);

  std::vector<NamedParameter> params_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, bf16_copies_;
  AdamWOptions options_;
  float grad_scale_ = 1.0f;
  int64_t steps_ = 0;
  DeviceTables tables_[2];  // indexed by Device
};

}  // namespace muonrec

// Muon (Jordan et al. 2024) as torch.optim.Muon defines it: EMA momentum (Nesterov by default),
// Newton-Schulz orthogonalization of the update, decoupled weight decay with the unadjusted lr,
// and an lr adjusted to the matrix shape. For 2-D parameters only.
//
// Three paths compute the same step. The step-by-step path (momentum kernel, Newton-Schulz through
// gemm, update kernel) runs on any device and is the reference; the GPU takes it in fp32 mode. On
// the GPU in bf16 mode, every matrix whose iterate fits in shared memory (a side up to about 128,
// i.e. most recommendation models) goes through one fused launch for all of them, and larger
// matrices are stacked by shape and orthogonalized with strided-batched bf16 GEMMs, their
// elementwise work in one launch per pass for all of them. Either way a step uploads nothing but
// the hyperparameters, and those only when the learning rate changed.
#pragma once

#include <cstdint>
#include <memory>

#include "muonrec/engine/device_value.h"
#include "muonrec/kernels/muon_types.h"
#include "muonrec/optim/device_table.h"
#include "muonrec/optim/newton_schulz.h"
#include "muonrec/optim/optimizer.h"

namespace muonrec {
#ifdef MUONREC_WITH_CUDA
namespace kernels::cuda {
class MuonBatchedStep;
}
#endif

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
  ~Muon() override;

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
  enum class Path { StepByStep, Fused, Batched };
  // The path parameter i takes.
  Path path(size_t i) const;

 private:
  // adjusted_lr / lr for a [rows, cols] matrix (in double, so host and device agree bit for bit).
  double lr_scale(int64_t rows, int64_t cols) const;
  void step_matrix(size_t i);
  void step_fused(const std::vector<size_t>& indices);
  void step_batched(const std::vector<size_t>& indices);
  kernels::MuonMatrix table_entry(size_t i) const;
  void upload_hyper();

  std::vector<NamedParameter> params_;
  std::vector<Tensor> momentum_buffer_, scratch_;
  MuonOptions options_;
  int64_t steps_ = 0;
  // The GPU paths' tables and hyperparameters in device memory, uploaded when they change.
  DeviceTable<kernels::MuonMatrix> fused_table_, batched_table_;
  kernels::MuonHyper uploaded_hyper_{};
  std::unique_ptr<DeviceValue> hyper_on_device_;
#ifdef MUONREC_WITH_CUDA
  std::unique_ptr<kernels::cuda::MuonBatchedStep> batched_;  // rebuilt when the batched shapes change
#endif
};

}  // namespace muonrec

#include "muonrec/optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/dispatch.h"

namespace muonrec {

AdamW::AdamW(std::vector<NamedParameter> params, const AdamWOptions& options)
    : params_(std::move(params)), options_(options) {
  check_learning_rate_and_decay("adamw", options.lr, options.weight_decay);
  MUONREC_CHECK(options.beta1 >= 0 && options.beta1 < 1, "adamw: beta1 must be in [0, 1), got {}", options.beta1);
  MUONREC_CHECK(options.beta2 >= 0 && options.beta2 < 1, "adamw: beta2 must be in [0, 1), got {}", options.beta2);
  MUONREC_CHECK(options.eps > 0 && std::isfinite(options.eps), "adamw: eps must be a finite number > 0, got {}",
                options.eps);
  for (const auto& p : params_) {
    exp_avg_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
    exp_avg_sq_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
    bf16_copies_.push_back(options.bf16_copy ? p.tensor.to_dtype(DType::BF16) : Tensor());
  }
}

namespace {

// Chunks of at most this many elements: the unit a CUDA block takes from the chunk list, so a large
// table spreads over every SM and a small tensor costs one chunk.
constexpr int64_t kChunkElements = 1 << 16;

}  // namespace

void AdamW::step() {
  NVTX_RANGE("adamw.step");
  ++steps_;
  run_device(Device::CPU);
  run_device(Device::CUDA);
}

void AdamW::run_device(Device device) {
  DeviceTables& tables = tables_[static_cast<int>(device)];
  std::vector<kernels::AdamWTensor> tensors;
  std::vector<kernels::TensorChunk> chunks;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    // No gradient this step: skipped (the step count still advances, see adamw.h).
    if (p.device() != device || !g.defined()) continue;
    const auto index = static_cast<int64_t>(tensors.size());
    tensors.push_back({p.data<float>(), g.data<float>(), exp_avg_[i].data<float>(), exp_avg_sq_[i].data<float>(),
                       bf16_copies_[i].defined() ? bf16_copies_[i].data<uint16_t>() : nullptr, p.numel()});
    for (int64_t begin = 0; begin < p.numel(); begin += kChunkElements)
      chunks.push_back({index, begin, std::min(begin + kChunkElements, p.numel())});
  }
  if (chunks.empty()) return;
  if (!tables.hyper) tables.hyper = std::make_unique<DeviceValue>(sizeof(kernels::AdamWHyper), device);
  const kernels::AdamWHyper hyper{options_.lr,           options_.beta1, options_.beta2, options_.eps,
                                  options_.weight_decay, grad_scale_,    steps_,         options_.seed};
  tables.hyper->write(&hyper, sizeof hyper);
  MUONREC_DISPATCH(device, adamw_multi_tensor, tables.tensors.sync(tensors, device), tables.chunks.sync(chunks, device),
                   static_cast<int64_t>(chunks.size()),
                   static_cast<const kernels::AdamWHyper*>(tables.hyper->device_ptr()));
}

std::map<std::string, Tensor> AdamW::state(const std::string& prefix) const {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out[prefix + "exp_avg." + params_[i].name] = exp_avg_[i];
    out[prefix + "exp_avg_sq." + params_[i].name] = exp_avg_sq_[i];
  }
  out[prefix + "step"] = Tensor::from_i64({steps_}, {1});
  return out;
}

void AdamW::load_state(const SafetensorsFile& file, const std::string& prefix) {
  for (size_t i = 0; i < params_.size(); ++i) {
    load_state_tensor(file, prefix + "exp_avg." + params_[i].name, exp_avg_[i]);
    load_state_tensor(file, prefix + "exp_avg_sq." + params_[i].name, exp_avg_sq_[i], /*lowest=*/0.0f);
  }
  steps_ = load_state_step(file, prefix + "step");
  if (options_.bf16_copy)
    for (size_t i = 0; i < params_.size(); ++i) bf16_copies_[i] = params_[i].tensor.to_dtype(DType::BF16);
}

std::string AdamW::describe() const {
  return fmt::format("AdamW (fused) lr={} betas=({}, {}) eps={} weight_decay={}{}", options_.lr, options_.beta1,
                     options_.beta2, options_.eps, options_.weight_decay,
                     options_.bf16_copy ? " with a stochastically rounded bf16 copy" : "");
}

}  // namespace muonrec

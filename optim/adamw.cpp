#include "optim/adamw.h"

#include "engine/dispatch.h"

namespace muonrec {

AdamW::AdamW(std::vector<NamedParameter> params, const AdamWOptions& options)
    : params_(std::move(params)), options_(options) {
  MUONREC_CHECK(options.lr >= 0 && options.eps > 0 && options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 &&
                    options.beta2 < 1 && options.weight_decay >= 0,
                "adamw: invalid hyperparameters (lr {}, betas ({}, {}), eps {}, weight decay {})", options.lr,
                options.beta1, options.beta2, options.eps, options.weight_decay);
  for (const auto& p : params_) {
    exp_avg_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
    exp_avg_sq_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
  }
}

void AdamW::step() {
  NVTX_RANGE("adamw.step");
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (!g.defined()) continue;  // unused in this step's graph: torch skips it too
    MUONREC_DISPATCH(p.device(), adamw_step, p.data<float>(), g.data<float>(), exp_avg_[i].data<float>(),
                     exp_avg_sq_[i].data<float>(), p.numel(), options_.lr, options_.beta1, options_.beta2,
                     options_.eps, options_.weight_decay, steps_);
  }
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
    load_state_tensor(file, prefix + "exp_avg_sq." + params_[i].name, exp_avg_sq_[i]);
  }
  steps_ = file.at(prefix + "step").to_i64_vector()[0];
}

std::string AdamW::describe() const {
  return fmt::format("AdamW lr={} betas=({}, {}) eps={} weight_decay={}", options_.lr, options_.beta1, options_.beta2,
                     options_.eps, options_.weight_decay);
}

void load_state_tensor(const SafetensorsFile& file, const std::string& key, Tensor& into) {
  const Tensor& src = file.at(key);
  MUONREC_CHECK(src.shape() == into.shape() && src.dtype() == into.dtype(),
                "{}: optimizer state '{}' is {} {}, expected {} {}", file.path, key, dtype_name(src.dtype()),
                shape_str(src.shape()), dtype_name(into.dtype()), shape_str(into.shape()));
  into.copy_from(src);
}

}  // namespace muonrec

#include "optim/muon.h"

#include <cmath>

#include "engine/dispatch.h"
#include "kernels/cpu/muon.h"
#ifdef MUONREC_WITH_CUDA
#include "kernels/cuda/muon.h"
#endif

namespace muonrec {

MuonAdjustLr parse_muon_adjust_lr(const std::string& name) {
  if (name == "original") return MuonAdjustLr::Original;
  if (name == "match_rms_adamw") return MuonAdjustLr::MatchRmsAdamW;
  MUONREC_FAIL("unknown Muon lr adjustment '{}' (available: original, match_rms_adamw)", name);
}

Muon::Muon(std::vector<NamedParameter> params, const MuonOptions& options)
    : params_(std::move(params)), options_(options) {
  MUONREC_CHECK(options.lr >= 0 && options.momentum >= 0 && options.momentum < 1 && options.weight_decay >= 0,
                "muon: invalid hyperparameters (lr {}, momentum {}, weight decay {})", options.lr, options.momentum,
                options.weight_decay);
  MUONREC_CHECK(!options.newton_schulz.coefficients.empty(), "muon: empty Newton-Schulz coefficient table");
  for (const auto& p : params_) {
    MUONREC_CHECK(p.tensor.rank() == 2, "muon: parameter '{}' has shape {}; Muon updates 2-D matrices only (give it "
                  "to AdamW)", p.name, shape_str(p.tensor.shape()));
    momentum_buffer_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
  }
}

float Muon::adjusted_lr(int64_t rows, int64_t cols) const {
  const double r = static_cast<double>(rows), c = static_cast<double>(cols);
  if (options_.adjust_lr == MuonAdjustLr::Original) return static_cast<float>(options_.lr * std::sqrt(std::max(1.0, r / c)));
  return static_cast<float>(options_.lr * 0.2 * std::sqrt(std::max(r, c)));
}

void Muon::step() {
  NVTX_RANGE("muon.step");
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const Device device = p.device();
    Tensor update = Tensor::empty(p.shape(), DType::F32, device);
    MUONREC_DISPATCH(device, muon_momentum, g.data<float>(), momentum_buffer_[i].data<float>(), update.data<float>(),
                     p.numel(), options_.momentum, options_.nesterov);
    newton_schulz(update, options_.newton_schulz);
    MUONREC_DISPATCH(device, decay_and_add, p.data<float>(), update.data<float>(), p.numel(),
                     1.0f - options_.lr * options_.weight_decay, -adjusted_lr(p.dim(0), p.dim(1)));
  }
}

std::map<std::string, Tensor> Muon::state(const std::string& prefix) const {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) out[prefix + "momentum_buffer." + params_[i].name] = momentum_buffer_[i];
  out[prefix + "step"] = Tensor::from_i64({steps_}, {1});
  return out;
}

void Muon::load_state(const SafetensorsFile& file, const std::string& prefix) {
  for (size_t i = 0; i < params_.size(); ++i)
    load_state_tensor(file, prefix + "momentum_buffer." + params_[i].name, momentum_buffer_[i]);
  steps_ = file.at(prefix + "step").to_i64_vector()[0];
}

std::string Muon::describe() const {
  return fmt::format("Muon lr={} momentum={} nesterov={} weight_decay={} adjust_lr={} ns_steps={} precision={}",
                     options_.lr, options_.momentum, options_.nesterov, options_.weight_decay,
                     options_.adjust_lr == MuonAdjustLr::Original ? "original" : "match_rms_adamw",
                     options_.newton_schulz.coefficients.size(),
                     options_.newton_schulz.precision == NsPrecision::BF16 ? "bf16" : "fp32");
}

}  // namespace muonrec

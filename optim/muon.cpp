#include "optim/muon.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
  MUONREC_CHECK(options.newton_schulz.coefficients.size() <= static_cast<size_t>(kernels::kMaxNewtonSchulzSteps),
                "muon: at most {} Newton-Schulz steps, got {}", kernels::kMaxNewtonSchulzSteps,
                options.newton_schulz.coefficients.size());
  for (const auto& p : params_) {
    MUONREC_CHECK(p.tensor.rank() == 2, "muon: parameter '{}' has shape {}; Muon updates 2-D matrices only (give it "
                  "to AdamW)", p.name, shape_str(p.tensor.shape()));
    momentum_buffer_.push_back(Tensor::zeros(p.tensor.shape(), DType::F32, p.tensor.device()));
  }
  for (size_t i = 0; i < params_.size(); ++i)
    scratch_.push_back(path(i) == Path::Fused ? Tensor::empty(params_[i].tensor.shape(), DType::F32, Device::CUDA)
                                              : Tensor());
}

Muon::Path Muon::path(size_t i) const {
  const Tensor& p = params_[i].tensor;
  if (p.device() != Device::CUDA || options_.newton_schulz.precision != NsPrecision::BF16) return Path::StepByStep;
#ifdef MUONREC_WITH_CUDA
  static const int64_t max_shared = kernels::cuda::muon_fused_max_shared_bytes();
  if (kernels::muon_fused_shared_bytes(p.dim(0), p.dim(1)) <= max_shared) return Path::Fused;
#endif
  return Path::Batched;
}

float Muon::adjusted_lr(int64_t rows, int64_t cols) const {
  const double r = static_cast<double>(rows), c = static_cast<double>(cols);
  if (options_.adjust_lr == MuonAdjustLr::Original) return static_cast<float>(options_.lr * std::sqrt(std::max(1.0, r / c)));
  return static_cast<float>(options_.lr * 0.2 * std::sqrt(std::max(r, c)));
}

void Muon::step() {
  NVTX_RANGE("muon.step");
  ++steps_;
  std::vector<size_t> fused_indices, batched_indices;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].tensor.grad().defined()) continue;  // no gradient this step: torch skips it too
    switch (path(i)) {
      case Path::StepByStep: step_matrix(i); break;
      case Path::Fused: fused_indices.push_back(i); break;
      case Path::Batched: batched_indices.push_back(i); break;
    }
  }
  if (fused_indices.empty() && batched_indices.empty()) return;
  upload_hyper();
  step_fused(fused_indices);
  step_batched(batched_indices);
}

kernels::MuonMatrix Muon::table_entry(size_t i) const {
  const Tensor& p = params_[i].tensor;
  return {p.data<float>(), p.grad().data<float>(), momentum_buffer_[i].data<float>(),
          scratch_[i].defined() ? scratch_[i].data<float>() : nullptr, static_cast<int32_t>(p.dim(0)),
          static_cast<int32_t>(p.dim(1)), adjusted_lr(p.dim(0), p.dim(1))};
}

void Muon::upload_hyper() {
  if (!hyper_on_device_) hyper_on_device_ = std::make_unique<DeviceValue>(sizeof(kernels::MuonHyper), Device::CUDA);
  kernels::MuonHyper hyper{};
  hyper.lr = options_.lr;
  hyper.momentum = options_.momentum;
  hyper.weight_decay = options_.weight_decay;
  hyper.eps = options_.newton_schulz.eps;
  hyper.norm_factor = options_.newton_schulz.norm_factor;
  hyper.nesterov = options_.nesterov ? 1 : 0;
  hyper.ns_steps = static_cast<int32_t>(options_.newton_schulz.coefficients.size());
  for (int s = 0; s < hyper.ns_steps; ++s)
    for (int k = 0; k < 3; ++k) hyper.coefficients[s][k] = options_.newton_schulz.coefficients[s][k];
  hyper_on_device_->write(&hyper, sizeof hyper);
}

void Muon::step_matrix(size_t i) {
  const Tensor& p = params_[i].tensor;
  Tensor g = p.grad();
  const Device device = p.device();
  Tensor update = Tensor::empty(p.shape(), DType::F32, device);
  MUONREC_DISPATCH(device, muon_momentum, g.data<float>(), momentum_buffer_[i].data<float>(), update.data<float>(),
                   p.numel(), options_.momentum, options_.nesterov);
  newton_schulz(update, options_.newton_schulz);
  MUONREC_DISPATCH(device, decay_and_add, p.data<float>(), update.data<float>(), p.numel(),
                   1.0f - options_.lr * options_.weight_decay, -adjusted_lr(p.dim(0), p.dim(1)));
}

void Muon::step_fused(const std::vector<size_t>& indices) {
#ifdef MUONREC_WITH_CUDA
  if (indices.empty()) return;
  std::vector<kernels::MuonMatrix> table;
  int64_t shared_bytes = 0;
  for (size_t i : indices) {
    table.push_back(table_entry(i));
    shared_bytes = std::max(shared_bytes, kernels::muon_fused_shared_bytes(table.back().rows, table.back().cols));
  }
  const size_t table_bytes = table.size() * sizeof(table[0]);
  if (table.size() != fused_table_.size() || std::memcmp(table.data(), fused_table_.data(), table_bytes) != 0) {
    fused_table_ = table;
    fused_table_on_device_ = std::make_unique<DeviceValue>(table_bytes, Device::CUDA);
    fused_table_on_device_->write(table.data(), table_bytes);
    fused_shared_bytes_ = shared_bytes;
  }
  kernels::cuda::muon_fused_small(static_cast<const kernels::MuonMatrix*>(fused_table_on_device_->device_ptr()),
                                  static_cast<int32_t>(table.size()),
                                  static_cast<const kernels::MuonHyper*>(hyper_on_device_->device_ptr()),
                                  fused_shared_bytes_, current_stream());
#else
  (void)indices;
#endif
}

void Muon::step_batched(const std::vector<size_t>& indices) {
#ifdef MUONREC_WITH_CUDA
  // Group by shape, in first-appearance order so the grouping is the same every step.
  std::vector<std::vector<size_t>> groups;
  for (size_t i : indices) {
    auto same_shape = [&](const std::vector<size_t>& g) { return params_[g[0]].tensor.shape() == params_[i].tensor.shape(); };
    auto it = std::find_if(groups.begin(), groups.end(), same_shape);
    if (it == groups.end()) {
      groups.push_back({i});
    } else {
      it->push_back(i);
    }
  }
  batched_tables_.resize(std::max(batched_tables_.size(), groups.size()));
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<kernels::MuonMatrix> table;
    for (size_t i : groups[g]) table.push_back(table_entry(i));
    const size_t bytes = table.size() * sizeof(table[0]);
    if (!batched_tables_[g] || batched_tables_[g]->bytes() != bytes)
      batched_tables_[g] = std::make_unique<DeviceValue>(bytes, Device::CUDA);
    batched_tables_[g]->write(table.data(), bytes);
    kernels::cuda::muon_batched_step(static_cast<const kernels::MuonMatrix*>(batched_tables_[g]->device_ptr()),
                                     static_cast<int32_t>(table.size()), table[0].rows, table[0].cols,
                                     static_cast<const kernels::MuonHyper*>(hyper_on_device_->device_ptr()),
                                     static_cast<int32_t>(options_.newton_schulz.coefficients.size()),
                                     current_stream());
  }
#else
  (void)indices;
#endif
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

#include "muonrec/optim/muon.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "muonrec/engine/dispatch.h"
#include "muonrec/kernels/cpu/muon.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/kernels/cuda/muon.h"
#endif

namespace muonrec {

MuonAdjustLr parse_muon_adjust_lr(const std::string& name) {
  if (name == "original") return MuonAdjustLr::Original;
  if (name == "match_rms_adamw") return MuonAdjustLr::MatchRmsAdamW;
  MUONREC_FAIL("unknown Muon lr adjustment '{}' (available: original, match_rms_adamw)", name);
}

Muon::Muon(std::vector<NamedParameter> params, const MuonOptions& options)
    : params_(std::move(params)), options_(options) {
  check_learning_rate_and_decay("muon", options.lr, options.weight_decay);
  MUONREC_CHECK(options.momentum >= 0 && options.momentum < 1, "muon: momentum must be in [0, 1), got {}",
                options.momentum);
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
    scratch_.push_back(path(i) == Path::Fused ? Tensor::empty(params_[i].tensor.shape(), DType::BF16, Device::CUDA)
                                              : Tensor());
}

Muon::~Muon() = default;

Muon::Path Muon::path(size_t i) const {
  const Tensor& p = params_[i].tensor;
  if (p.device() != Device::CUDA || options_.newton_schulz.precision != NsPrecision::BF16) return Path::StepByStep;
#ifdef MUONREC_WITH_CUDA
  static const int64_t max_shared = kernels::cuda::muon_fused_max_shared_bytes();
  if (kernels::muon_fused_shared_bytes(p.dim(0), p.dim(1)) <= max_shared) return Path::Fused;
#endif
  return Path::Batched;
}

double Muon::lr_scale(int64_t rows, int64_t cols) const {
  const double r = static_cast<double>(rows), c = static_cast<double>(cols);
  if (options_.adjust_lr == MuonAdjustLr::Original) return std::sqrt(std::max(1.0, r / c));
  return 0.2 * std::sqrt(std::max(r, c));
}

float Muon::adjusted_lr(int64_t rows, int64_t cols) const {
  return static_cast<float>(static_cast<double>(options_.lr) * lr_scale(rows, cols));
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
  return {p.data<float>(),
          p.grad().data<float>(),
          momentum_buffer_[i].data<float>(),
          scratch_[i].defined() ? scratch_[i].data<uint16_t>() : nullptr,
          lr_scale(p.dim(0), p.dim(1)),
          static_cast<int32_t>(p.dim(0)),
          static_cast<int32_t>(p.dim(1))};
}

void Muon::upload_hyper() {
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
  // Only the learning rate ever changes: a constant-rate run uploads once.
  if (hyper_on_device_ && std::memcmp(&hyper, &uploaded_hyper_, sizeof hyper) == 0) return;
  if (!hyper_on_device_) hyper_on_device_ = std::make_unique<DeviceValue>(sizeof hyper, Device::CUDA);
  hyper_on_device_->write(&hyper, sizeof hyper);
  uploaded_hyper_ = hyper;
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
  kernels::cuda::muon_fused_small(fused_table_.sync(table, Device::CUDA), static_cast<int32_t>(table.size()),
                                  static_cast<const kernels::MuonHyper*>(hyper_on_device_->device_ptr()),
                                  shared_bytes, current_stream());
#else
  (void)indices;
#endif
}

void Muon::step_batched(const std::vector<size_t>& indices) {
#ifdef MUONREC_WITH_CUDA
  if (indices.empty()) return;
  // Equal shapes side by side (groups in first-appearance order, so the same every step): each
  // group is one stack of the batched step.
  std::vector<size_t> order;
  for (size_t i : indices) {
    if (std::find(order.begin(), order.end(), i) != order.end()) continue;
    for (size_t j : indices)
      if (params_[j].tensor.shape() == params_[i].tensor.shape()) order.push_back(j);
  }
  std::vector<kernels::cuda::MuonBatchedStep::Shape2> shapes;
  std::vector<kernels::MuonMatrix> table;
  for (size_t i : order) {
    table.push_back(table_entry(i));
    shapes.push_back({table.back().rows, table.back().cols});
  }
  if (!batched_ || batched_->shapes() != shapes)
    batched_ = std::make_unique<kernels::cuda::MuonBatchedStep>(shapes, options_.newton_schulz.coefficients);
  batched_->run(batched_table_.sync(table, Device::CUDA),
                static_cast<const kernels::MuonHyper*>(hyper_on_device_->device_ptr()), current_stream());
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
  steps_ = load_state_step(file, prefix + "step");
}

std::string Muon::describe() const {
  return fmt::format("Muon lr={} momentum={} nesterov={} weight_decay={} adjust_lr={} ns_steps={} precision={}",
                     options_.lr, options_.momentum, options_.nesterov, options_.weight_decay,
                     options_.adjust_lr == MuonAdjustLr::Original ? "original" : "match_rms_adamw",
                     options_.newton_schulz.coefficients.size(),
                     options_.newton_schulz.precision == NsPrecision::BF16 ? "bf16" : "fp32");
}

}  // namespace muonrec

#include "muonrec/optim/param_groups.h"

#include <algorithm>
#include <regex>

#include "muonrec/engine/error.h"

namespace muonrec {

std::vector<bool> muon_assignment(const std::vector<NamedParameter>& params, const std::string& policy) {
  std::vector<bool> to_muon(params.size(), false);
  if (policy == "muonrec") {
    for (size_t i = 0; i < params.size(); ++i)
      to_muon[i] = !params[i].embedding && params[i].tensor.rank() == 2;  // Muon orthogonalises matrices only
  } else if (policy == "hidden") {
    for (size_t i = 0; i < params.size(); ++i)
      to_muon[i] = params[i].tensor.rank() == 2 && (params[i].name.rfind("blocks.", 0) == 0 ||
                                                    params[i].name.rfind("encoder.blocks.", 0) == 0);
  } else if (policy.rfind("regex:", 0) == 0) {
    std::regex pattern;
    try {
      pattern = std::regex(policy.substr(6));
    } catch (const std::regex_error& e) {
      MUONREC_FAIL("--param-policy: invalid regular expression '{}': {}", policy.substr(6), e.what());
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (!std::regex_match(params[i].name, pattern)) continue;
      MUONREC_CHECK(params[i].tensor.rank() == 2, "--param-policy {} selects '{}' of shape {}: Muon needs 2-D tensors",
                    policy, params[i].name, shape_str(params[i].tensor.shape()));
      to_muon[i] = true;
    }
    if (std::find(to_muon.begin(), to_muon.end(), true) == to_muon.end()) {
      std::string names;
      for (size_t i = 0; i < params.size(); ++i)
        if (params[i].tensor.rank() == 2) names += (names.empty() ? "" : ", ") + params[i].name;
      MUONREC_FAIL("--param-policy {} selects no parameter (the pattern must match a whole name); the 2-D ones: {}",
                   policy, names);
    }
  } else {
    MUONREC_FAIL("unknown parameter policy '{}' (available: muonrec, hidden, regex:PATTERN)", policy);
  }
  // Otherwise "--optim muon" would run AdamW alone under Muon's name (a model without blocks).
  MUONREC_CHECK(std::find(to_muon.begin(), to_muon.end(), true) != to_muon.end(),
                "--param-policy {} gives Muon no parameter: the model has no 2-D weight it selects (no blocks?); "
                "train it with --optim adamw",
                policy);
  return to_muon;
}

namespace {

// The first Muon setting `config` changes from its default ("" for none): under AdamW alone it would
// go unheard, so it is refused, as the command line refuses Muon's flags under --optim adamw.
std::string changed_muon_setting(const OptimizerConfig& config) {
  const OptimizerConfig defaults;
  const MuonOptions &muon = config.muon, &usual = defaults.muon;
  const NewtonSchulzOptions &ns = muon.newton_schulz, &usual_ns = usual.newton_schulz;
  if (config.param_policy != defaults.param_policy) return "param_policy";
  if (muon.lr != usual.lr) return "muon.lr";
  if (muon.momentum != usual.momentum) return "muon.momentum";
  if (muon.weight_decay != usual.weight_decay) return "muon.weight_decay";
  if (muon.nesterov != usual.nesterov) return "muon.nesterov";
  if (muon.adjust_lr != usual.adjust_lr) return "muon.adjust_lr";
  if (ns.coefficients != usual_ns.coefficients || ns.eps != usual_ns.eps || ns.norm_factor != usual_ns.norm_factor ||
      ns.precision != usual_ns.precision)
    return "muon.newton_schulz";
  return "";
}

}  // namespace

OptimizerSet::OptimizerSet(const std::vector<NamedParameter>& params, const OptimizerConfig& config)
    : schedule_(config.schedule) {
  std::vector<NamedParameter> adam_params, muon_params;
  if (config.optimizer == "adamw") {
    const std::string unheard = changed_muon_setting(config);
    MUONREC_CHECK(unheard.empty(), "optimizer 'adamw' trains every parameter with AdamW, so its {} would go unheard: "
                  "set optimizer 'muon' to use it, or leave it at its default", unheard);
    adam_params = params;
  } else if (config.optimizer == "muon") {
    std::vector<bool> to_muon = muon_assignment(params, config.param_policy);
    for (size_t i = 0; i < params.size(); ++i) (to_muon[i] ? muon_params : adam_params).push_back(params[i]);
  } else {
    MUONREC_FAIL("unknown optimizer '{}' (available: adamw, muon)", config.optimizer);
  }
  const LrSchedule& schedule = config.schedule;
  MUONREC_CHECK(schedule.kind != LrSchedule::Kind::Cosine || schedule.total_steps > 0,
                "the cosine schedule needs the run's length (schedule.total_steps), got {}: it would reach its floor "
                "after one step",
                schedule.total_steps);
  MUONREC_CHECK(schedule.total_steps <= 0 || schedule.warmup_steps < schedule.total_steps,
                "a warm-up of {} steps is not shorter than the run's {} steps: the learning rate would never reach "
                "its base value",
                schedule.warmup_steps, schedule.total_steps);
  const auto check_floor = [&](const char* group, float base_lr) {
    MUONREC_CHECK(schedule.kind != LrSchedule::Kind::Cosine || schedule.min_lr <= base_lr,
                  "the cosine schedule's floor (--min-lr {}) is above the {} learning rate {}: it would never anneal",
                  schedule.min_lr, group, base_lr);
  };
  if (!adam_params.empty()) {
    check_floor("AdamW", config.adamw.lr);
    optimizers_.push_back(std::make_unique<AdamW>(adam_params, config.adamw));
    base_lr_.push_back(config.adamw.lr);
  }
  if (!muon_params.empty()) {
    check_floor("Muon", config.muon.lr);
    optimizers_.push_back(std::make_unique<Muon>(muon_params, config.muon));
    base_lr_.push_back(config.muon.lr);
  }
}

void OptimizerSet::step() {
  for (size_t g = 0; g < optimizers_.size(); ++g) {
    optimizers_[g]->set_lr(schedule_.lr_at(steps_, base_lr_[g]));
    optimizers_[g]->step();
  }
  ++steps_;
}

std::vector<std::string> OptimizerSet::describe() const {
  std::vector<std::string> lines;
  for (size_t g = 0; g < optimizers_.size(); ++g) {
    const Optimizer& opt = *optimizers_[g];
    int64_t numel = 0;
    std::string names;
    for (const auto& p : opt.params()) {
      numel += p.tensor.numel();
      names += (names.empty() ? "" : ", ") + p.name + shape_str(p.tensor.shape());
    }
    lines.push_back(fmt::format("{} on {} tensors ({} values): {}", opt.describe(), opt.params().size(), numel, names));
  }
  lines.push_back("schedule: " + schedule_.describe());
  return lines;
}

std::map<std::string, Tensor> OptimizerSet::state() const {
  std::map<std::string, Tensor> out;
  for (const auto& opt : optimizers_)
    for (auto& [k, v] : opt->state(std::string(opt->name()) + ".")) out[k] = v;
  out["optimizer_set.step"] = Tensor::from_i64({steps_}, {1});
  return out;
}

void OptimizerSet::load_state(const SafetensorsFile& file) {
  for (const auto& opt : optimizers_) opt->load_state(file, std::string(opt->name()) + ".");
  steps_ = load_state_step(file, "optimizer_set.step");
  // Optimizer state this set does not own (a parameter's moments the model lacks, another
  // optimizer's buffers) belongs to another run: a damaged or edited file, refused rather than ignored.
  const std::map<std::string, Tensor> owned = state();
  for (const auto& [name, tensor] : file.tensors) {
    const bool optimizer_state = name.rfind("adamw.", 0) == 0 || name.rfind("muon.", 0) == 0 ||
                                 name.rfind("optimizer_set.", 0) == 0;
    MUONREC_CHECK(!optimizer_state || owned.count(name), "{}: optimizer state '{}' belongs to no parameter of this "
                  "run's optimizers (a damaged file, or the state of another run)", file.path, name);
  }
}

}  // namespace muonrec

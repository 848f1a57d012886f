// Parameter groups: which tensors Muon updates and which AdamW updates, and the set of optimizers
// a training run steps together (each group with its own rate, decay and momentum, one schedule).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "muonrec/optim/adamw.h"
#include "muonrec/optim/muon.h"
#include "muonrec/optim/schedule.h"

namespace muonrec {

// Policies (--param-policy):
//   muonrec       MuonRec's recipe: embeddings and every parameter that is not 2-D go to AdamW,
//                 the other matrices (scoring heads included) to Muon.
//   hidden        only the 2-D weights inside the blocks ("blocks.*", and a TIGER encoder's
//                 "encoder.blocks.*") go to Muon (the peer's split).
//   regex:PATTERN the 2-D parameters whose name matches PATTERN (ECMAScript, whole name) go to Muon.
// Returns, per parameter, whether Muon takes it. Throws on an unknown policy, or when a regex
// selects a tensor that is not 2-D or no tensor at all.
std::vector<bool> muon_assignment(const std::vector<NamedParameter>& params, const std::string& policy);

struct OptimizerConfig {
  std::string optimizer = "adamw";  // adamw: AdamW for everything; muon: split by param_policy
  std::string param_policy = "muonrec";
  AdamWOptions adamw;
  MuonOptions muon;
  LrSchedule schedule;
};

class OptimizerSet {
 public:
  OptimizerSet(const std::vector<NamedParameter>& params, const OptimizerConfig& config);

  // Sets every group's rate for the coming step from the schedule, then steps each optimizer.
  void step();
  int64_t steps() const { return steps_; }
  // Lines for the start-of-run report: each optimizer's settings and the tensors it owns.
  std::vector<std::string> describe() const;
  std::map<std::string, Tensor> state() const;
  void load_state(const SafetensorsFile& file);
  const std::vector<std::unique_ptr<Optimizer>>& optimizers() const { return optimizers_; }

 private:
  std::vector<std::unique_ptr<Optimizer>> optimizers_;
  std::vector<float> base_lr_;
  LrSchedule schedule_;
  int64_t steps_ = 0;
};

}  // namespace muonrec

// The model and optimizer flags that `muonrec train` and `muonrec bench` share: registered on a
// subcommand, then resolved after parsing (names to enums, flags the chosen model, loss, optimizer
// or schedule does not read refused).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "muonrec/models/sequential_model.h"
#include "muonrec/optim/param_groups.h"
#include "muonrec/tools/cli_checks.h"

namespace muonrec {

struct ModelCliArgs {
  ModelConfig config;
  OptimizerConfig optimizer;
  // Spelt-out choices, turned into config / optimizer fields by resolve().
  std::string loss_name = "full";
  std::string schedule = "constant";
  std::string muon_adjust = "original";
  std::string ns_table = "quintic";
  std::string ns_precision = "bf16";
  bool muon_no_nesterov = false;

  // What resolve() and the callers' own checks need to see.
  const CLI::Option* ff = nullptr;
  const CLI::Option* head_dim = nullptr;
  const CLI::Option* maxlen = nullptr;
  const CLI::Option* loss = nullptr;
  const CLI::Option* mask_prob = nullptr;
  const CLI::Option* min_lr = nullptr;
  CLI::Option* temperature = nullptr;
  CLI::Option* l2_normalize = nullptr;
  std::vector<const CLI::Option*> sampled_loss_options;  // --negatives, --temperature, --l2-normalize
  std::vector<const CLI::Option*> muon_options;          // --param-policy, --muon-*, --ns-*

  // --model (described by models_help), --d, --blocks, --heads, --head-dim, --ff, --maxlen,
  // --dropout, --mask-prob, --loss and the sampled-loss flags.
  void add_model_flags(CLI::App* cmd, const std::string& models_help);
  // --optim, the AdamW and Muon flags, --schedule, --warmup-steps, --min-lr.
  void add_optimizer_flags(CLI::App* cmd);
  // After parsing: checks --model, fills the loss kind, schedule and Muon settings, and refuses
  // typed flags that the chosen model, loss, optimizer or schedule does not read. HSTU's sampled
  // softmax is L2-normalised with a temperature of 0.05 unless --l2-normalize / --temperature say
  // otherwise: the logits its full softmax trains.
  void resolve(CommandLine& typed);
};

// "model: sasrec d=64 blocks=2 heads=1x64 ff=64 maxlen=200 dropout=0.2 loss: ... (N parameters) on
// cuda (matmul fp32)": what a run trains, for the start of its report.
std::string model_line(SequentialModel& model);

}  // namespace muonrec

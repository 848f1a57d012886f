#include "muonrec/tools/model_cli.h"

#include <fmt/format.h>

#include "muonrec/engine/error.h"
#include "muonrec/engine/precision.h"
#include "muonrec/models/hstu.h"
#include "muonrec/models/transformer.h"
#include "muonrec/optim/newton_schulz.h"

namespace muonrec {

void ModelCliArgs::add_model_flags(CLI::App* cmd, const std::string& models_help) {
  cmd->add_option("--model", config.kind, models_help)->capture_default_str();
  cmd->add_option("--d", config.d, "hidden width")->check(kPositive)->capture_default_str();
  cmd->add_option("--blocks", config.blocks, "transformer blocks")->check(kNotNegative)->capture_default_str();
  cmd->add_option("--heads", config.heads, "attention heads")->check(kPositive)->capture_default_str();
  head_dim = cmd->add_option("--head-dim", config.head_dim,
                             "width of each attention head (0: d / heads); heads x head-dim may differ from d, as "
                             "T5's d_kv (not in HSTU, whose heads split d)")
                 ->check(kNotNegative)
                 ->capture_default_str();
  ff = cmd->add_option("--ff", config.ff, "feed-forward width (0: same as d)")
           ->check(kNotNegative)
           ->capture_default_str();
  maxlen = cmd->add_option("--maxlen", config.max_len, "window length T")->check(kPositive)->capture_default_str();
  cmd->add_option("--dropout", config.dropout, "dropout probability")->check(kFraction)->capture_default_str();
  mask_prob = cmd->add_option("--mask-prob", config.mask_prob, "bert4rec: probability that a training item is masked")
                  ->check(kProbability)
                  ->capture_default_str();
  loss = cmd->add_option("--loss", loss_name, "full (softmax over every item) or sampled (uniform negatives)")
             ->check(CLI::IsMember({"full", "sampled"}))
             ->capture_default_str();
  temperature = cmd->add_option("--temperature", config.loss.temperature,
                                "with --loss sampled: logits divided by this (hstu: 0.05 unless given)")
                    ->capture_default_str();
  l2_normalize = cmd->add_flag("--l2-normalize", config.loss.l2_normalize,
                               "with --loss sampled: L2-normalise hidden states and item vectors (cosine logits; "
                               "hstu: true unless given)");
  sampled_loss_options = {
      cmd->add_option("--negatives", config.loss.negatives, "with --loss sampled: negatives per target")
          ->capture_default_str(),
      temperature, l2_normalize};
}

void ModelCliArgs::add_optimizer_flags(CLI::App* cmd) {
  OptimizerConfig& opt = optimizer;
  cmd->add_option("--optim", opt.optimizer, "adamw (everything) or muon (split by --param-policy)")
      ->check(CLI::IsMember({"adamw", "muon"}))
      ->capture_default_str();
  cmd->add_option("--lr,--adam-lr", opt.adamw.lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--beta1", opt.adamw.beta1, "AdamW beta1")->check(kFraction)->capture_default_str();
  cmd->add_option("--beta2", opt.adamw.beta2, "AdamW beta2")->check(kFraction)->capture_default_str();
  cmd->add_option("--adam-eps", opt.adamw.eps, "AdamW epsilon")->capture_default_str();
  cmd->add_option("--wd,--adam-wd", opt.adamw.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  muon_options = {
      cmd->add_option("--param-policy", opt.param_policy,
                      "with --optim muon: muonrec (embeddings and tensors not 2-D to AdamW, the other matrices to "
                      "Muon), hidden (2-D block weights to Muon), regex:PATTERN (2-D tensors whose whole name matches)")
          ->capture_default_str(),
      cmd->add_option("--muon-lr", opt.muon.lr, "Muon learning rate")->capture_default_str(),
      cmd->add_option("--muon-momentum", opt.muon.momentum, "Muon momentum")->capture_default_str(),
      cmd->add_option("--muon-wd", opt.muon.weight_decay, "Muon decoupled weight decay")->capture_default_str(),
      cmd->add_flag("--muon-no-nesterov", muon_no_nesterov, "plain EMA momentum instead of Nesterov"),
      cmd->add_option("--muon-adjust-lr", muon_adjust, "original or match_rms_adamw")
          ->check(CLI::IsMember({"original", "match_rms_adamw"}))
          ->capture_default_str(),
      cmd->add_option("--ns-coefficients", ns_table, "Newton-Schulz table: quintic or polar-express")
          ->check(CLI::IsMember({"quintic", "polar-express"}))
          ->capture_default_str(),
      cmd->add_option("--ns-precision", ns_precision, "Newton-Schulz products: bf16 (as torch) or fp32")
          ->check(CLI::IsMember({"bf16", "fp32"}))
          ->capture_default_str()};
  cmd->add_option("--schedule", schedule, "constant or cosine")
      ->check(CLI::IsMember({"constant", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--warmup-steps", opt.schedule.warmup_steps, "linear warmup steps")
      ->check(kNotNegative)
      ->capture_default_str();
  min_lr = cmd->add_option("--min-lr", opt.schedule.min_lr, "cosine floor")->capture_default_str();
}

void ModelCliArgs::resolve(CommandLine& typed) {
  MUONREC_CHECK(config.kind == "sasrec" || config.kind == "bert4rec" || config.kind == "hstu" || config.kind == "tiger",
                "unknown model '{}' (available: sasrec, bert4rec, hstu, tiger)", config.kind);
  config.loss.kind = LossConfig::kind_from_name(loss_name);
  optimizer.schedule.kind = parse_schedule_kind(schedule);
  optimizer.muon.nesterov = !muon_no_nesterov;
  optimizer.muon.adjust_lr = parse_muon_adjust_lr(muon_adjust);
  optimizer.muon.newton_schulz = newton_schulz_by_name(ns_table);
  optimizer.muon.newton_schulz.precision = ns_precision == "bf16" ? NsPrecision::BF16 : NsPrecision::FP32;
  // A flag the chosen model, loss, optimizer or schedule does not read is refused (unless a
  // --config file gave it).
  typed.refuse_unread({mask_prob}, config.kind == "bert4rec", "--model bert4rec");
  typed.refuse_unread(muon_options, optimizer.optimizer == "muon", "--optim muon");
  if (optimizer.optimizer != "muon") {  // a --config file's Muon settings, unread: AdamW alone takes none
    const OptimizerConfig defaults;
    optimizer.param_policy = defaults.param_policy;
    optimizer.muon = defaults.muon;
  }
  typed.refuse_unread(sampled_loss_options, loss_name == "sampled" && config.kind != "tiger",
                      "--loss sampled, with --model sasrec, bert4rec or hstu,");
  typed.refuse_unread({min_lr}, schedule == "cosine", "--schedule cosine");
  // HSTU has no feed-forward layer, and its heads split d.
  typed.refuse_unread({ff, head_dim}, config.kind != "hstu", "--model sasrec, bert4rec or tiger");
  // A --config file's values of the flags left unread go back to their defaults, as the Muon ones
  // above: the checkpoint's config, `info` and a resume then hold only what the run read, which is
  // what its recorded settings say.
  const ModelConfig defaults;
  if (config.kind != "bert4rec") config.mask_prob = defaults.mask_prob;
  if (loss_name != "sampled" || config.kind == "tiger") config.loss = LossConfig{config.loss.kind};
  if (loss_name == "sampled" && config.kind == "hstu") {
    // HSTU scores cosines divided by 0.05 (MODELS.md); its sampled softmax trains those logits unless
    // told otherwise. The defaults shown are what a run's recorded settings then say.
    if (temperature->count() == 0) {
      config.loss.temperature = HSTU::kScoreTemperature;
      temperature->default_str(fmt::format("{}", HSTU::kScoreTemperature));
    }
    if (l2_normalize->count() == 0) {
      config.loss.l2_normalize = true;
      l2_normalize->default_str("true");
    }
  }
  if (config.kind == "hstu") {
    config.ff = defaults.ff;
    config.head_dim = defaults.head_dim;
  }
  if (schedule != "cosine") optimizer.schedule.min_lr = OptimizerConfig().schedule.min_lr;
}

std::string model_line(SequentialModel& model) {
  const ModelConfig& config = model.config();
  const std::string masking = config.kind == "bert4rec" ? fmt::format(" mask-prob={}", config.mask_prob) : "";
  const std::string feed_forward =
      config.kind == "hstu" ? "" : fmt::format(" ff={}", config.ff > 0 ? config.ff : config.d);  // HSTU has none
  const Device device = model.device();
  return fmt::format(
      "model: {} d={} blocks={} heads={}x{}{} maxlen={} dropout={}{} loss: {} ({} parameters) on {}{}", config.kind,
      config.d, config.blocks, config.heads, head_width(config.d, config.heads, config.head_dim), feed_forward,
      config.max_len, config.dropout, masking, config.loss.describe(), model.parameters().numel(), device_name(device),
      device == Device::CUDA ? fmt::format(" (matmul {})", matmul_precision_name(matmul_precision())) : "");
}

}  // namespace muonrec

// The muonrec command line: train, eval, recommend, baseline, prepare, bench, compare, info. An error while running
// becomes one line and exit code 1; flag errors get CLI11's message and exit codes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "muonrec/data/dataset_cache.h"
#include "muonrec/data/synthetic.h"
#include "muonrec/engine/device.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"
#include "muonrec/engine/precision.h"
#include "muonrec/engine/version.h"
#include "muonrec/models/checkpoint_info.h"
#include "muonrec/data/export.h"
#include "muonrec/models/rank_comparison.h"
#include "muonrec/models/run_compare.h"
#include "muonrec/models/trainer.h"
#include "muonrec/models/tiger_pipeline.h"
#include "muonrec/models/training_position.h"
#include "muonrec/tools/bench_cli.h"
#include "muonrec/tools/cli_checks.h"
#include "muonrec/tools/config_file.h"
#include "muonrec/tools/model_cli.h"
#include "muonrec/tools/recommend_cli.h"
#include "muonrec/tools/tiger_cli.h"

using namespace muonrec;

namespace {

struct DataArgs {
  std::string path = "synthetic";
  std::string format = "auto";
  int64_t synthetic_users = 2000;
  int64_t synthetic_items = 500;
  uint64_t synthetic_seed = 7;
  data::Preprocessing preprocessing;
  std::string csv_columns;
  std::vector<CLI::Option*> synthetic_options;  // of every subcommand: only the one run counts
  std::vector<CLI::Option*> file_options;       // likewise, for data files only

  void add_to(CLI::App* cmd) {
    cmd->add_option("--data", path, "dataset file, or 'synthetic' for the built-in generator")->capture_default_str();
    file_options.push_back(
        cmd->add_option("--format", format,
                        "auto, pairs ('user item'), sequences ('user i1 i2 ...'), ml-dat, ml-csv, recbole (.inter), "
                        "csv (a header line; columns by name)")
            ->capture_default_str());
    file_options.push_back(cmd->add_option("--csv-columns", csv_columns,
                                           "csv files: the header's names of the user, item and (optional) time "
                                           "columns, USER,ITEM[,TIME] (default: user_id, item_id, timestamp)"));
    file_options.push_back(cmd->add_flag("--dedupe", preprocessing.dedupe,
                                         "keep only each user's first event with an item (before --k-core)"));
    file_options.push_back(cmd->add_option("--k-core", preprocessing.k_core,
                                           "keep users and items with at least N events (users at least 3, which "
                                           "the split needs), repeated until both hold; item ids are then renumbered "
                                           "1..n (0: off)")
                               ->check(kNotNegative)
                               ->capture_default_str());
    synthetic_options.push_back(
        cmd->add_option("--synthetic-users", synthetic_users, "users of the synthetic dataset")->capture_default_str());
    synthetic_options.push_back(
        cmd->add_option("--synthetic-items", synthetic_items, "items of the synthetic dataset")->capture_default_str());
    synthetic_options.push_back(cmd->add_option("--synthetic-seed", synthetic_seed, "seed of the synthetic dataset")
                                    ->check(kNotNegative)
                                    ->capture_default_str());
  }

  // train, whose --config file may hold the flags of another data source (a run's settings rerun
  // on other data): such a flag from the file is left unread (cleared, and out of the run's
  // record); a typed one is refused.
  void resolve(CommandLine& typed) const {
    const bool synthetic = path == "synthetic";
    typed.refuse_unread({file_options.begin(), file_options.end()}, !synthetic, "data files");
    typed.refuse_unread({synthetic_options.begin(), synthetic_options.end()}, synthetic, "--data synthetic");
    for (CLI::Option* option : synthetic ? file_options : synthetic_options) option->clear();
  }

  // The summary lines go to `log` (standard error when standard output carries results).
  data::SequenceDataset load(std::ostream& log = std::cout) const {
    const data::Format parsed_format = data::parse_format(format);  // a misspelt format fails either way
    for (const CLI::Option* option : file_options)
      MUONREC_CHECK(path != "synthetic" || option->count() == 0, "{} applies to data files only (not --data synthetic)",
                    option->get_name());
    for (const CLI::Option* option : synthetic_options)
      MUONREC_CHECK(path == "synthetic" || option->count() == 0, "{} applies to --data synthetic only (not {})",
                    option->get_name(), path);
    data::SequenceDataset ds;
    if (path == "synthetic") {
      data::SyntheticOptions o;
      o.users = synthetic_users;
      o.items = synthetic_items;
      o.seed = synthetic_seed;
      ds = data::make_synthetic_dataset(o);
    } else {
      data::ReadOptions o;
      o.format = parsed_format;
      o.preprocessing = preprocessing;
      o.csv_columns = csv_columns;
      o.cache_dir = data::default_dataset_cache_dir();
      ds = data::read_dataset(path, o);
    }
    log << fmt::format("data: {}: {} users, {} items, {} events{}\n", ds.source, ds.num_users(), ds.n_items,
                       ds.num_events(), ds.has_timestamps() ? ", with timestamps" : "");
    if (ds.report.worth_printing()) log << "data: " << ds.report.summary() << "\n";
    if (!ds.report.cache_note.empty()) log << "data: " << ds.report.cache_note << "\n";
    return ds;
  }
};

// argv as one line a shell would split back into the same words.
std::string command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string word = argv[i];
    const bool plain = !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                               "0123456789-_=+./:,@%") == std::string::npos;
    std::string quoted = "'";
    for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (i ? " " : "") + (plain ? word : quoted + "'");
  }
  return line;
}

// The options given to this run (command line and --config file) as TOML that --config reads back,
// without the ones that say where outputs go or how far this invocation goes (--metrics,
// --checkpoint, --save-last, --resume, --stop-after-epoch): rerunning the settings must not append
// to the first run's metrics or overwrite its checkpoint. The command line keeps them all.
// Nor the flags the run leaves unread (`unread`: a Muon rate under --optim adamw, a --config
// file's or the default), which compare would otherwise set side by side as differences.
// defaults_too: every train flag, the defaults of those not given included (what compare sets
// side by side: a flag given with its default value is no difference).
std::string run_settings(const CLI::App& app, bool defaults_too, const std::set<std::string>& unread) {
  static const std::set<std::string> kJobOnly = {"metrics", "checkpoint", "save-last", "resume", "stop-after-epoch"};
  std::istringstream lines(app.config_to_str(defaults_too, /*write_description=*/false));
  std::string settings;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("train.", 0) != 0) continue;
    const std::string flag = line.substr(6, line.find('=') - 6);
    if (!kJobOnly.count(flag) && !unread.count(flag)) settings += line + "\n";
  }
  return settings;
}

// --no-filter-seen and --filter-seen-last, for every evaluating command. They exclude each other:
// resolve() after parsing refuses both, or lets the typed one win over a --config file's.
struct SeenFilterFlags {
  bool& keep_seen;
  int64_t& filter_seen_last;
  CLI::Option* keep = nullptr;
  CLI::Option* last = nullptr;

  SeenFilterFlags(CLI::App* cmd, bool& keep_seen_, int64_t& filter_seen_last_)
      : keep_seen(keep_seen_), filter_seen_last(filter_seen_last_) {
    keep = cmd->add_flag("--no-filter-seen", keep_seen,
                         "keep items of the input history as candidates (excludes --filter-seen-last)");
    last = cmd->add_option("--filter-seen-last", filter_seen_last,
                           "filter only the last N items of the input history out of the candidates (0: all of "
                           "them); the PyTorch peer filters its model window, N = the training --maxlen")
               ->check(kNotNegative)
               ->capture_default_str();
  }
  void resolve(const CommandLine& typed) const {
    typed.resolve_excluding(keep, last, [this](const CLI::Option* dropped) {
      if (dropped == keep)
        keep_seen = false;
      else
        filter_seen_last = 0;
    });
  }
};

constexpr const char* kMatmulPrecisionHelp =
    "GPU matrix products: fp32 (exact, the default), tf32 or bf16 (tensor cores, fp32 accumulation; the PyTorch "
    "peer trains under bf16 autocast)";

int run_train(const DataArgs& data_args, ModelConfig config, TrainOptions options, const std::string& device_arg,
              bool show_baseline) {
  data::SequenceDataset dataset = data_args.load();
  config.n_items = dataset.n_items;
  Device device = parse_device(device_arg);
  auto model = make_model(config, device, options.seed);
  std::cout << model_line(*model) << "\n";
  std::cout << fmt::format("training: batch {} for {} epochs, seed {}\n", options.batch_size, options.epochs,
                           options.seed);
  TrainResult result = train_model(*model, dataset, options, std::cout);
  std::cout << result.summary_lines();
  if (show_baseline) {
    RankingMetrics pop = evaluate_popularity(dataset, data::EvalSplit::Test, options.eval);
    std::cout << fmt::format("most-popular baseline:  {}\n", pop.summary());
  }
  std::cout << fmt::format(
      "training time{} {:.1f} s ({} steps, {:.1f} steps/s, median epoch {:.3f} s, {:.0f} tokens/s)\n",
      options.resume_path.empty() ? "" : " of this invocation", result.train_seconds, result.steps,
      result.steps / std::max(result.train_seconds, 1e-9),
      result.median_epoch_seconds(), result.tokens_per_second());
  std::cout << result.checkpoint_line(options.checkpoint_path);
  return 0;
}

// batch_given: --batch was on the command line (TIGER then decodes that many users together; its
// default is its own).
int run_eval(const DataArgs& data_args, const std::string& checkpoint, const std::string& device_arg,
             const std::string& split_name, EvalOptions eval, int64_t beam_width, bool batch_given,
             const std::string& ranks_path) {
  MUONREC_CHECK(eval.batch_size > 0, "eval: --batch must be positive, got {}", eval.batch_size);
  if (!ranks_path.empty()) check_output_file("eval: --ranks", ranks_path, {checkpoint, data_args.path});
  data::EvalSplit tiger_split = split_name == "test" ? data::EvalSplit::Test : data::EvalSplit::Validation;
  // Standard output carries the metrics alone (a summary line, then JSON); the data lines go to
  // standard error.
  const SafetensorsFile file = load_safetensors(checkpoint);  // read once: a checkpoint may be large
  if (is_tiger_checkpoint(file))
    return run_eval_tiger(file, data_args.load(std::cerr), tiger_split, eval, beam_width,
                          batch_given ? eval.batch_size : 0, parse_device(device_arg), ranks_path);
  MUONREC_CHECK(beam_width == 0, "eval: --beam applies to tiger checkpoints only ({} is not one)", checkpoint);
  auto model = load_model_checkpoint(file, parse_device(device_arg));
  data::SequenceDataset dataset = data_args.load(std::cerr);
  check_item_numbering(file, dataset);
  std::cerr << seen_filter_note(file, eval) << parameters_epoch_note(file) << time_bias_note(file, dataset);
  data::EvalSplit split = split_name == "test" ? data::EvalSplit::Test : data::EvalSplit::Validation;
  RankingMetrics m = evaluate_model(*model, dataset, split, eval);
  std::cout << fmt::format("{} ({}): {}\n", split_name, checkpoint, m.summary());
  std::cout << m.to_json() << "\n";
  if (!ranks_path.empty()) write_user_ranks(ranks_path, dataset, m, ranks_context(dataset, split, eval));
  return 0;
}

// CLI11's own words for some common slips say neither what was wrong nor what would be right.
std::string cli_failure_message(const CLI::App* failed, const CLI::Error& e) {
  const std::string unparsed = "INI was not able to parse ";
  const std::string what = e.what();
  if (what.rfind(unparsed, 0) == 0)
    return fmt::format("--config: no train flag is called '{}' (keys are 'train.FLAG = value')\n",
                       what.substr(unparsed.size()));
  const std::string repeated = ": At Most 1 required but received ";
  if (const size_t at = what.find(repeated); at != std::string::npos)
    return fmt::format("{} is given {} times (on the command line, or in a --config file); give it once\n",
                       what.substr(0, at), what.substr(at + repeated.size()));
  return CLI::FailureMessage::simple(failed, e);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"muonrec: sequential and generative recommenders trained with Muon and AdamW"};
  app.config_formatter(std::make_shared<TomlConfigReader>());  // before the subcommands, which copy it
  app.set_version_flag("--version", std::string("muonrec ") + version());
  app.require_subcommand(1);

  DataArgs data_args;
  TrainOptions train;
  std::string device = "auto";
  std::string matmul_precision = "fp32";
  bool no_filter_seen = false, baseline = false;

  CLI::App* train_cmd = app.add_subcommand("train", "train a model, validate, report test metrics at the best epoch");
  // `muonrec train --config FILE`: CLI11 reads config files at the top level only, so the option
  // belongs to the app and train hands it up (fallthrough). Keys are "train.FLAG = value" (or
  // FLAG = value under a [train] section); an unknown key is an error, not silently ignored.
  app.set_config("--config", "",
                 "train only: read settings from this TOML file ('train.FLAG = value' lines, as the 'settings' "
                 "of a --metrics file's run record); flags given on the command line win");
  app.allow_config_extras(CLI::config_extras_mode::error);
  train_cmd->fallthrough();
  train_cmd->footer("Settings may also come from a file: muonrec train --config FILE (TOML, 'train.FLAG = value' "
                    "lines, as the 'settings' of a --metrics file's run record); flags typed here win.");
  data_args.add_to(train_cmd);
  ModelCliArgs model_args;
  model_args.add_model_flags(train_cmd, "model: sasrec, bert4rec, hstu or tiger (semantic-ID generation)");
  train_cmd->add_option("--epochs", train.epochs, "epochs")->capture_default_str();
  train_cmd->add_option("--batch", train.batch_size, "users per batch (tiger --encoder-blocks: target items)")
      ->capture_default_str();
  model_args.add_optimizer_flags(train_cmd);
  train_cmd->add_option("--clip-grad-norm", train.max_grad_norm, "global-norm gradient clipping (0: off)")
      ->capture_default_str();
  train_cmd->add_option("--seed", train.seed, "seed for weights, shuffling and dropout")
      ->check(kNotNegative)
      ->capture_default_str();
  train_cmd->add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  std::vector<const CLI::Option*> matmul_options;
  matmul_options.push_back(train_cmd->add_option("--matmul-precision", matmul_precision, kMatmulPrecisionHelp)
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))->capture_default_str());
  train_cmd->add_option("--eval-every", train.eval_every, "validate every N epochs, and after the last")
      ->capture_default_str();
  const CLI::Option* eval_batch_size =
      train_cmd->add_option("--eval-batch", train.eval.batch_size, "users per evaluation batch (tiger: --beam-users)")
          ->capture_default_str();
  const SeenFilterFlags train_seen_filter(train_cmd, no_filter_seen, train.eval.filter_seen_last);
  train_cmd->add_option("--metrics", train.metrics_path, "append per-epoch metrics to this JSONL file");
  train_cmd->add_option("--checkpoint", train.checkpoint_path, "save the best-validation model here (safetensors)");
  train_cmd->add_option("--save-last", train.last_checkpoint_path,
                        "save the full training state here after every epoch (for --resume)");
  train_cmd->add_option(
      "--resume", train.resume_path,
      "continue from a --save-last file, or a sasrec/bert4rec/hstu --checkpoint (same model flags, optimizer "
      "and data)");
  train_cmd->add_option("--patience", train.patience,
                        "early stopping: end the run after N validations in a row without a better validation "
                        "NDCG@10 (0: never); test metrics come from the best epoch")
      ->check(kNotNegative)
      ->capture_default_str();
  train_cmd->add_option("--stop-after-epoch", train.stop_after_epoch,
                        "end the run after this epoch (with --save-last, to resume later; 0: run every epoch)");
  train_cmd->add_flag("--baseline", baseline, "also report the most-popular baseline on the test split");
  TigerCliArgs tiger;
  tiger.add_to(train_cmd);

  std::string checkpoint, split = "test";
  EvalOptions eval;
  CLI::App* eval_cmd = app.add_subcommand("eval", "evaluate a checkpoint with full ranking");
  data_args.add_to(eval_cmd);
  eval_cmd->add_option("--checkpoint", checkpoint, "checkpoint written by 'muonrec train --checkpoint'")->required();
  eval_cmd->add_option("--split", split, "test or valid")
      ->check(CLI::IsMember({"test", "valid"}))
      ->capture_default_str();
  eval_cmd->add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  matmul_options.push_back(eval_cmd->add_option("--matmul-precision", matmul_precision, kMatmulPrecisionHelp)
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))->capture_default_str());
  CLI::Option* eval_batch = eval_cmd
                                ->add_option("--batch", eval.batch_size,
                                             "users per evaluation batch (tiger checkpoints: users decoded together)")
                                ->capture_default_str();
  const SeenFilterFlags eval_seen_filter(eval_cmd, no_filter_seen, eval.filter_seen_last);
  int64_t eval_beam = 0;
  eval_cmd->add_option("--beam", eval_beam, "tiger checkpoints: beam width (0: the width it was trained with)")
      ->capture_default_str();

  RecommendCliArgs recommend_args;
  CLI::App* recommend_cmd =
      app.add_subcommand("recommend", "top-K next items for users from a checkpoint, after their whole histories");
  data_args.add_to(recommend_cmd);
  recommend_args.add_to(recommend_cmd);
  recommend_cmd->add_option("--device", device, "auto, cpu or cuda")->capture_default_str();

  CLI::App* baseline_cmd = app.add_subcommand("baseline", "most-popular baseline with full ranking");
  data_args.add_to(baseline_cmd);
  baseline_cmd->add_option("--split", split, "test or valid")->check(CLI::IsMember({"test", "valid"}))
      ->capture_default_str();
  const SeenFilterFlags baseline_seen_filter(baseline_cmd, no_filter_seen, eval.filter_seen_last);
  std::string ranks_path;
  const std::string ranks_help =
      "write each user's position of the target (1: first) to this TSV, for 'muonrec compare --ranks'";
  for (CLI::App* cmd : {eval_cmd, baseline_cmd}) cmd->add_option("--ranks", ranks_path, ranks_help);

  // `eval --config F` (and the others') reaches the app, which then says --config is train's.
  for (CLI::App* cmd : {eval_cmd, recommend_cmd, baseline_cmd}) cmd->fallthrough();

  CLI::App* prepare_cmd = app.add_subcommand(
      "prepare", "write the data as read and preprocessed (--dedupe, --k-core, short users dropped) in the plain "
                 "'user i1 i2 ...' form other tools read, with the maps back to the source's ids");
  data_args.add_to(prepare_cmd);
  prepare_cmd->fallthrough();  // `prepare --config F` is told --config is train's, as eval is
  std::string prepare_output;
  prepare_cmd
      ->add_option("--output", prepare_output,
                   "prefix of the files written: PREFIX.txt, PREFIX.inter (with timestamps), PREFIX_users.tsv, "
                   "PREFIX_items.tsv")
      ->required();

  BenchCliArgs bench_args;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "time training steps (input, forward, backward, optimizer) of a model on synthetic data: "
               "milliseconds per step, tokens/s, peak tensor memory; no data file, no evaluation");
  bench_args.add_to(bench_cmd);
  bench_cmd->add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  matmul_options.push_back(bench_cmd->add_option("--matmul-precision", matmul_precision, kMatmulPrecisionHelp)
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}))->capture_default_str());
  bench_cmd->fallthrough();  // `bench --config F` is told --config is train's

  CLI::App* info_cmd = app.add_subcommand("info", "build and device information, or what a checkpoint holds");
  std::string info_checkpoint;
  info_cmd->add_option("--checkpoint", info_checkpoint,
                       "describe this checkpoint: model, training position, metrics, the command that wrote it");

  CLI::App* compare_cmd = app.add_subcommand(
      "compare", "runs side by side from their --metrics files: best validation, the test at that epoch, and the "
                 "optimizer steps each needed to reach a common validation target");
  std::vector<std::string> compare_files;
  CompareOptions compare;
  compare_cmd->add_option("files", compare_files,
                          "metrics files written by 'muonrec train --metrics' (with --ranks: pairs of ranks "
                          "files, a b or a1 b1 a2 b2 ...)")
      ->required();
  compare_cmd->add_option("--metric", compare.metric, "validation metric: ndcg10, hr10, mrr, hr1, ndcg50, ...")
      ->capture_default_str();
  compare_cmd->add_option("--target", compare.target,
                          "validation value each run is timed to (0: the lowest best value among the runs)")
      ->check(kNotNegative)
      ->capture_default_str();
  bool compare_markdown = false;
  compare_cmd->add_flag("--markdown", compare_markdown, "print a Markdown table");
  bool compare_ranks = false;
  int64_t compare_resamples = 10000;
  CLI::Option* ranks_flag = compare_cmd->add_flag(
      "--ranks", compare_ranks,
      "the files are per-user ranks ('eval --ranks' or 'baseline --ranks' of the same users), a b or a1 b1 a2 b2 "
      "...: compare the --metric user by user, with a paired bootstrap interval and a sign-flip test (several "
      "pairs: each, then pooled)");
  compare_cmd->add_option("--resamples", compare_resamples, "with --ranks: draws for the interval and the test")
      ->needs(ranks_flag)
      ->check(kPositive)
      ->capture_default_str();
  for (CLI::Option* metrics_only : {compare_cmd->get_option("--target"), compare_cmd->get_option("--markdown")})
    metrics_only->excludes(ranks_flag);

  // CLI11's own words for some common slips say neither what was wrong nor what would be right.
  // A bad value a --config file set is placed in the file (config_lines: the line of each flag).
  require_plain_values(app);
  const std::string config_path = config_file_argument(argc, argv);
  std::map<std::string, int64_t> config_lines;
  app.failure_message([&](const CLI::App* failed, const CLI::Error& e) {
    return with_config_place(cli_failure_message(failed, e), config_path, config_lines, argc, argv);
  });
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; }))
      names.push_back(command->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::cerr << fmt::format("muonrec: unknown command '{}' (available: {})\n", argv[1], fmt::join(names, ", "));
      return 1;
    }
  }
  try {
    // A key names its flag by any of the flag's names ("train.lr" and "train.adam-lr" are one).
    config_lines = check_config_file(config_path, [&](const std::string& key) {
      const size_t dot = key.find('.');
      const CLI::App* command = nullptr;  // get_subcommand_ptr would throw for a prefix no command has
      for (const CLI::App* named : app.get_subcommands([](const CLI::App*) { return true; }))
        if (dot != std::string::npos && named->get_name() == key.substr(0, dot)) command = named;
      const CLI::Option* option = command ? command->get_option_no_throw("--" + key.substr(dot + 1)) : nullptr;
      return option ? key.substr(0, dot + 1) + option->get_single_name() : key;
    });
  } catch (const Error& e) {
    std::cerr << "muonrec: error: " << e.what() << "\n";
    return 1;
  }
  CLI11_PARSE(app, argc, argv);
  try {
    // The subcommands share variables (data, device, filtering), so a file's train.* keys would
    // silently change what eval, recommend or baseline compute.
    MUONREC_CHECK(app.get_config_ptr()->count() == 0 || *train_cmd,
                  "--config applies to 'muonrec train' only (a run's settings are train flags)");
    // Nor may a train --config file hold another subcommand's keys (eval.split = ...): they would
    // set the variables that subcommand shares with train.
    if (*train_cmd)
      for (const CLI::App* other : app.get_subcommands([&](const CLI::App* cmd) { return cmd != train_cmd; }))
        for (const CLI::Option* option : other->get_options())
          MUONREC_CHECK(option->count() == 0, "--config: the file sets {} of '{}', not a train flag (keys are "
                        "'train.FLAG = value')", option->get_name(), other->get_name());
    CommandLine typed{argc, argv};
    // On the device the run will use: 'auto' on a machine without a GPU is the CPU too.
    MUONREC_CHECK(parse_device(device) != Device::CPU || matmul_precision == "fp32" ||
                      std::none_of(matmul_options.begin(), matmul_options.end(),
                                   [&](const CLI::Option* option) { return typed.gave(option); }),
                  "--matmul-precision {} applies to GPU products (the CPU computes in fp32)", matmul_precision);
    set_matmul_precision(parse_matmul_precision(matmul_precision));
    if (*train_cmd) {
      train_seen_filter.resolve(typed);
      train.eval.filter_seen = !no_filter_seen;
      data_args.resolve(typed);
      model_args.resolve(typed);
      const ModelConfig& config = model_args.config;
      train.optimizer = model_args.optimizer;
      typed.refuse_unread(tiger.options, config.kind == "tiger", "--model tiger");
      typed.refuse_unread({model_args.maxlen, model_args.loss, eval_batch_size}, config.kind != "tiger",
                          "--model sasrec, bert4rec or hstu");
      if (config.kind == "tiger") tiger.resolve_flags(typed);  // before the settings are recorded
      train.command = command_line(argc, argv);
      train.settings = run_settings(app, /*defaults_too=*/false, typed.unread);
      train.all_settings = run_settings(app, /*defaults_too=*/true, typed.unread);
      if (config.kind == "tiger") {
        return run_train_tiger(data_args.load(), config, train, tiger, parse_device(device), baseline);
      }
      return run_train(data_args, config, train, device, baseline);
    }
    if (*eval_cmd) {
      eval_seen_filter.resolve(typed);
      eval.filter_seen = !no_filter_seen;
      return run_eval(data_args, checkpoint, device, split, eval, eval_beam, eval_batch->count() > 0, ranks_path);
    }
    if (*recommend_cmd) return run_recommend(recommend_args, data_args.load(std::cerr), parse_device(device));
    if (*prepare_cmd) {
      const data::SequenceDataset ds = data_args.load(std::cout);
      const MappedMovieIds movies = mapped_movie_ids(ds);
      const data::PreparedFiles prepared = data::write_prepared_dataset(ds, prepare_output, movies.ids, {movies.map});
      if (prepared.unused_item_ids > 0)
        std::cout << fmt::format("{} item ids have no event: the items are renumbered 1..{} (the items map names "
                                 "them)\n",
                                 prepared.unused_item_ids, ds.n_items - prepared.unused_item_ids);
      for (const std::string& file : prepared.paths) std::cout << "wrote " << file << "\n";
      return 0;
    }
    if (*bench_cmd) return run_bench(bench_args, typed, parse_device(device));
    if (*baseline_cmd) {
      baseline_seen_filter.resolve(typed);
      eval.filter_seen = !no_filter_seen;  // eval's options: the baseline reads its filtering
      if (!ranks_path.empty()) check_output_file("baseline: --ranks", ranks_path, {data_args.path});
      data::SequenceDataset ds = data_args.load(std::cerr);
      auto s = split == "test" ? data::EvalSplit::Test : data::EvalSplit::Validation;
      const RankingMetrics popularity = evaluate_popularity(ds, s, eval);
      std::cout << fmt::format("most-popular ({}): {}\n", split, popularity.summary());
      if (!ranks_path.empty()) write_user_ranks(ranks_path, ds, popularity, ranks_context(ds, s, eval));
      return 0;
    }
    if (*compare_cmd) {
      if (compare_ranks) {
        MUONREC_CHECK(compare_files.size() >= 2 && compare_files.size() % 2 == 0,
                      "compare --ranks: give pairs of ranks files (a b, or a1 b1 a2 b2 ... for several seeds), "
                      "got {} files",
                      compare_files.size());
        std::vector<UserRanks> as, bs;
        for (size_t i = 0; i < compare_files.size(); i += 2) {
          as.push_back(read_user_ranks(compare_files[i]));
          bs.push_back(read_user_ranks(compare_files[i + 1]));
          if (compare_files.size() > 2) std::cout << fmt::format("pair {}: ", i / 2 + 1);
          std::cout << compare_user_ranks(as.back(), bs.back(), compare.metric, compare_resamples)
                           .format(compare_files[i], compare_files[i + 1]);
        }
        if (as.size() > 1)
          std::cout << fmt::format("pooled over the {} pairs, (pair, user) units: ", as.size())
                    << compare_user_ranks(pool_user_ranks(as), pool_user_ranks(bs), compare.metric, compare_resamples)
                           .format("the a files", "the b files");
        return 0;
      }
      std::vector<RunHistory> runs;
      for (const std::string& file : compare_files) {
        std::ifstream in(file);
        std::string first_line;
        std::getline(in, first_line);
        MUONREC_CHECK(!is_user_ranks_first_line(first_line),
                      "compare: {} is a file of per-user ranks: compare two of them with --ranks", file);
      }
      for (const std::string& file : compare_files)
        for (RunHistory& run : read_run_histories(file, &std::cerr)) runs.push_back(std::move(run));
      std::cout << format_comparison(compare_runs(runs, compare), compare_markdown);
      return 0;
    }
    if (*info_cmd) {
      if (!info_checkpoint.empty()) {
        const SafetensorsFile file = load_safetensors(info_checkpoint);
        // The model is built from it (on the CPU) as eval would: a file eval refuses gets no description.
        if (is_tiger_checkpoint(file)) {
          load_tiger_checkpoint(file, Device::CPU);
        } else {
          load_model_checkpoint(file, Device::CPU);
        }
        std::cout << describe_checkpoint(file);
        return 0;
      }
#ifdef MUONREC_WITH_CUDA
      std::cout << "muonrec " << version() << ": built with CUDA\n";
#else
      std::cout << "muonrec " << version() << ": built without CUDA (CPU only)\n";
#endif
      std::cout << (cuda_available() ? "GPU: available\n" : "GPU: " + cuda_unavailable_reason() + "\n");
      return 0;
    }
  } catch (const std::exception& e) {
    // A run's checks of its settings name flags: one that a --config file set is placed in the file.
    std::cerr << "muonrec: error: " << with_config_place(e.what(), config_path, config_lines, argc, argv) << "\n";
    return 1;
  }
  return 0;
}

#include "muonrec/tools/bench_cli.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "muonrec/engine/precision.h"

#include "muonrec/models/tiger_step_benchmark.h"
#include "muonrec/tools/tiger_cli.h"

namespace muonrec {

void BenchCliArgs::add_to(CLI::App* bench_cmd) {
  model.add_model_flags(bench_cmd, "model: sasrec, bert4rec, hstu or tiger (on a catalogue of random codes)");
  tiger_options = add_tiger_shape_flags(bench_cmd, codes, tiger);
  bench_cmd->add_option("--items", items, "catalogue size (item ids 1..N drawn uniformly)")
      ->check(kPositive)
      ->capture_default_str();
  bench_cmd->add_option("--batch", options.batch_size, "windows (tiger: examples) per step")
      ->check(kPositive)
      ->capture_default_str();
  bench_cmd->add_option("--steps", options.steps, "timed steps (the throughput pass, then the phase pass)")
      ->check(kPositive)
      ->capture_default_str();
  bench_cmd->add_option("--untimed-steps", options.untimed_steps,
                        "steps run before the timed ones (pools filled, optimizer state created; not --warmup-steps, "
                        "the learning rate's warm-up)")
      ->check(kNotNegative)
      ->capture_default_str();
  model.add_optimizer_flags(bench_cmd);
  bench_cmd->add_option("--clip-grad-norm", options.max_grad_norm, "global-norm gradient clipping (0: off)")
      ->check(kNotNegative)
      ->capture_default_str();
  bench_cmd->add_option("--seed", options.seed, "seed for weights, windows and dropout")
      ->check(kNotNegative)
      ->capture_default_str();
}

namespace {

// TIGER: histories long enough to fill the window, four batches' worth of users (the encoder-decoder
// has an example per history item, so more batches).
StepBenchmarkResult bench_tiger(const BenchCliArgs& args, Device device) {
  const int64_t users = std::max<int64_t>(4 * args.options.batch_size, 64);
  const TigerBenchmarkData data = make_tiger_benchmark_data(args.items, args.codes.levels, args.codes.codebook_size,
                                                            args.tiger.max_items, users, args.options.seed);
  TigerConfig config = tiger_config(args.model.config, args.tiger);
  config.vocab_sizes = data.vocab_sizes;
  TigerModel model(config, device, args.options.seed);
  std::cout << "model: " << describe_tiger_model(model) << "\n";
  std::cout << fmt::format("bench: batches of {} examples from {} histories of {} random items over {} items, {} "
                           "untimed and 2 x {} timed steps\n",
                           args.options.batch_size, users, args.tiger.max_items + 3, args.items,
                           args.options.untimed_steps, args.options.steps);
  return benchmark_tiger_steps(model, data, args.model.optimizer, args.options);
}

StepBenchmarkResult bench_sequential(const BenchCliArgs& args, Device device) {
  ModelConfig config = args.model.config;
  config.n_items = args.items;
  auto model = make_model(config, device, args.options.seed);
  std::cout << model_line(*model) << "\n";
  std::cout << fmt::format("bench: batch {} of full windows over {} items, {} untimed and 2 x {} timed steps\n",
                           args.options.batch_size, args.items, args.options.untimed_steps, args.options.steps);
  return benchmark_training_steps(*model, args.model.optimizer, args.options);
}

// What a bench_step record timed, so that records gathered from several runs tell themselves apart.
nlohmann::ordered_json benchmark_setup(const BenchCliArgs& args, Device device) {
  const ModelConfig& config = args.model.config;
  nlohmann::ordered_json setup = {{"model", config.kind}, {"device", device_name(device)}};
  if (device == Device::CUDA) setup["matmul_precision"] = matmul_precision_name(matmul_precision());
  setup["optimizer"] = args.model.optimizer.optimizer;
  setup["items"] = args.items;
  setup["d"] = config.d;
  setup["blocks"] = config.blocks;
  setup["heads"] = config.heads;
  setup["dropout"] = config.dropout;
  if (config.kind == "tiger") {
    setup["sid_levels"] = args.codes.levels;
    setup["sid_codebook"] = args.codes.codebook_size;
    setup["history_items"] = args.tiger.max_items;
  } else {
    setup["maxlen"] = config.max_len;
    setup["loss"] = config.loss.describe();
  }
  return setup;
}

}  // namespace

int run_bench(BenchCliArgs args, CommandLine& typed, Device device) {
  args.model.resolve(typed);
  const bool tiger = args.model.config.kind == "tiger";
  typed.refuse_unread(args.tiger_options, tiger, "--model tiger");
  typed.refuse_unread({args.model.maxlen, args.model.loss}, !tiger, "--model sasrec, bert4rec or hstu");
  const StepBenchmarkResult result = tiger ? bench_tiger(args, device) : bench_sequential(args, device);
  for (const std::string& line : result.optimizer_lines) std::cout << "optimizer: " << line << "\n";
  std::cout << result.summary() << result.to_json(benchmark_setup(args, device).dump()) << "\n";
  return 0;
}

}  // namespace muonrec

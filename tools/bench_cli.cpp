#include "tools/bench_cli.h"

#include <fmt/format.h>

#include <iostream>

namespace muonrec {

void BenchCliArgs::add_to(CLI::App* bench_cmd) {
  model.add_model_flags(bench_cmd, "model: sasrec, bert4rec or hstu");
  bench_cmd->add_option("--items", items, "catalogue size (item ids 1..N drawn uniformly)")
      ->check(kPositive)
      ->capture_default_str();
  bench_cmd->add_option("--batch", options.batch_size, "windows per step")->check(kPositive)->capture_default_str();
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

int run_bench(BenchCliArgs args, const CommandLine& typed, Device device) {
  args.model.resolve(typed, {"sasrec", "bert4rec", "hstu"});
  ModelConfig config = args.model.config;
  config.n_items = args.items;
  auto model = make_model(config, device, args.options.seed);
  std::cout << model_line(*model) << "\n";
  std::cout << fmt::format("bench: batch {} of full windows over {} items, {} untimed and 2 x {} timed steps\n",
                           args.options.batch_size, args.items, args.options.untimed_steps, args.options.steps);
  const StepBenchmarkResult result = benchmark_training_steps(*model, args.model.optimizer, args.options);
  for (const std::string& line : result.optimizer_lines) std::cout << "optimizer: " << line << "\n";
  std::cout << result.summary() << result.to_json() << "\n";
  return 0;
}

}  // namespace muonrec

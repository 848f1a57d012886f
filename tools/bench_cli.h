// `muonrec bench`: training steps of a model timed on synthetic data (models/step_benchmark.h,
// models/tiger_step_benchmark.h), with train's model and optimizer flags.
#pragma once

#include <CLI/CLI.hpp>

#include <vector>

#include "muonrec/engine/device.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/step_benchmark.h"
#include "muonrec/models/tiger.h"
#include "muonrec/tools/cli_checks.h"
#include "muonrec/tools/model_cli.h"

namespace muonrec {

struct BenchCliArgs {
  ModelCliArgs model;
  StepBenchmarkOptions options;
  int64_t items = 3416;  // ML-1M's catalogue: the shape reference/PERF.md times the peer on
  semantic_id::RqKMeansOptions codes;  // tiger: --sid-levels, --sid-codebook
  TigerConfig tiger;                   // tiger: --sid-history, --encoder-blocks
  std::vector<const CLI::Option*> tiger_options;

  // The model and optimizer flags, tiger's shape flags, --items, --batch, --steps, --untimed-steps,
  // --clip-grad-norm, --seed.
  void add_to(CLI::App* bench_cmd);
};

// Resolves the flags, builds the model on `device`, prints what it times, the optimizer lines, the
// result's lines and its JSON record last.
int run_bench(BenchCliArgs args, CommandLine& typed, Device device);

}  // namespace muonrec

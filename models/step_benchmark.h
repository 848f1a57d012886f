// Timing of whole training steps (batch input, forward and loss, backward, optimizer step) of a
// sequential model on synthetic full windows, with no dataset and no evaluation: what `muonrec
// bench` reports, and a clean target for Nsight (its passes and steps are NVTX ranges).
//
// Three passes over the same steps as the trainer's: untimed steps first (allocation pools filled,
// kernels loaded, optimizer state created), a throughput pass timed as a whole (one synchronisation
// at the end, so the host's launches overlap the device's work as in training: its step is a mean),
// and a phase pass that synchronises after each phase to time it alone (its mean step exceeds the
// throughput step by what the synchronisations cost and the overlap they remove; its medians leave
// out the slow steps a mean counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "muonrec/data/batcher.h"
#include "muonrec/models/sequential_model.h"
#include "muonrec/models/training_step.h"
#include "muonrec/optim/param_groups.h"

namespace muonrec {

struct StepBenchmarkOptions {
  int64_t batch_size = 128;
  int64_t untimed_steps = 3;
  int64_t steps = 20;          // in the throughput pass, and again in the phase pass
  float max_grad_norm = 0.0f;  // global-norm clipping inside the optimizer phase, as the trainer does; 0: off
  uint64_t seed = 1;           // the synthetic windows and dropout

  void check() const;  // throws on a non-positive batch size or step count, or negative untimed steps or norm
};

struct StepBenchmarkResult {
  int64_t steps = 0, untimed_steps = 0, batch_size = 0, parameters = 0;
  int64_t window = 0;          // positions of a window (TIGER: tokens)
  double tokens_per_step = 0;  // positions with a target (BERT4Rec: the masked ones), throughput pass's mean
  double step_ms = 0;          // throughput pass: its time over its steps
  double tokens_per_second = 0;
  double synchronised_step_ms = 0;                         // phase pass: median step
  double synchronised_mean_step_ms = 0;                    // phase pass: mean step
  std::vector<std::pair<std::string, double>> phase_ms;    // phase pass: median of each phase, in order
  std::vector<std::string> optimizer_lines;  // OptimizerSet::describe() of the optimizer stepped
  size_t peak_bytes = 0;  // tensor memory at the peak (the engine's live allocations, not a pool's cache)

  std::string summary() const;  // the report's lines
  // One JSON object: "kind": "bench_step", then the fields of `setup`, a JSON object's text (what was
  // timed: model, device, ...), then the results.
  std::string to_json(const std::string& setup) const;
};

// `count` batches of `batch_size` full windows of length T (no padding): items uniform in
// 1..n_items, next-item targets at every position, strictly increasing timestamps. Deterministic
// by seed.
std::vector<data::Batch> make_benchmark_batches(int64_t n_items, int64_t T, int64_t batch_size, int64_t count,
                                                uint64_t seed);

// Runs the passes on `model` (its parameters are trained by the steps: benchmark a fresh model).
StepBenchmarkResult benchmark_training_steps(SequentialModel& model, const OptimizerConfig& optimizer,
                                             const StepBenchmarkOptions& options);

// What the passes time, for any model: one step on its next batch with `optimizer`, after_phase
// called as training_step calls it (models/training_step.h); returns the tokens it trained on.
using BenchmarkStep =
    std::function<int64_t(OptimizerSet& optimizer, const std::function<void(StepPhase)>& after_phase)>;
// The passes over `step` for a model whose parameters are `parameters`, on `device`: resets the
// peak memory count, allocates the gradient arena, builds the optimizer for the steps taken, times
// them. The result's window is the caller's to fill.
StepBenchmarkResult time_training_steps(ParameterList& parameters, Device device, const OptimizerConfig& optimizer,
                                        const StepBenchmarkOptions& options, const BenchmarkStep& step);

}  // namespace muonrec

#include "muonrec/models/step_benchmark.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <numeric>
#include <nlohmann/json.hpp>

#include "muonrec/engine/allocator.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/training_step.h"

namespace muonrec {
namespace {

constexpr int64_t kDistinctBatches = 4;  // cycled, so input preparation sees varied data without a dataset

}  // namespace

void StepBenchmarkOptions::check() const {
  MUONREC_CHECK(batch_size > 0, "bench: the batch size must be positive, got {}", batch_size);
  MUONREC_CHECK(steps > 0, "bench: the step count must be positive, got {}", steps);
  MUONREC_CHECK(untimed_steps >= 0, "bench: the untimed step count must not be negative, got {}", untimed_steps);
  MUONREC_CHECK(max_grad_norm >= 0, "bench: the clipping norm must not be negative, got {}", max_grad_norm);
}

std::vector<data::Batch> make_benchmark_batches(int64_t n_items, int64_t T, int64_t batch_size, int64_t count,
                                                uint64_t seed) {
  MUONREC_CHECK(n_items > 0 && T > 0 && batch_size > 0 && count > 0,
                "benchmark batches need positive items, window, batch size and count (got {}, {}, {}, {})", n_items,
                T, batch_size, count);
  PhiloxGenerator gen(seed);
  constexpr int64_t kStartTime = 1600000000;  // unix seconds
  constexpr uint64_t kMaxGap = 3 * 24 * 3600;  // up to three days between events, as the synthetic dataset
  std::vector<data::Batch> batches(static_cast<size_t>(count));
  std::vector<int64_t> sequence(static_cast<size_t>(T + 1));
  for (data::Batch& batch : batches) {
    batch.reset(batch_size, T, /*with_timestamps=*/true);
    batch.real_rows = batch_size;
    for (int64_t r = 0; r < batch_size; ++r) {
      for (int64_t& item : sequence)
        item = 1 + static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(n_items));
      int64_t time = kStartTime;
      for (int64_t t = 0; t < T; ++t) {
        time += 1 + static_cast<int64_t>(gen.uniform_u64() % kMaxGap);
        batch.ids[r * T + t] = sequence[t];
        batch.targets[r * T + t] = sequence[t + 1];
        batch.timestamps[r * T + t] = time;
      }
      batch.user_rows[r] = r;
      batch.last_train_items[r] = sequence[T];
    }
  }
  return batches;
}

StepBenchmarkResult time_training_steps(ParameterList& parameters, Device device,
                                        const OptimizerConfig& optimizer_config, const StepBenchmarkOptions& options,
                                        const BenchmarkStep& step) {
  options.check();
  reset_peak_allocated_bytes(device);
  parameters.allocate_grad_arena();
  OptimizerConfig config = optimizer_config;
  config.schedule.total_steps = options.untimed_steps + 2 * options.steps;
  OptimizerSet optimizer(parameters.all(), config);
  const std::function<void(StepPhase)> no_hook;

  for (int64_t i = 0; i < options.untimed_steps; ++i) {
    NVTX_RANGE("bench.untimed");
    step(optimizer, no_hook);
  }

  StepBenchmarkResult result;
  device_synchronize();
  {
    NVTX_RANGE("bench.throughput");
    int64_t tokens = 0;
    const auto start = Clock::now();
    for (int64_t i = 0; i < options.steps; ++i) tokens += step(optimizer, no_hook);
    device_synchronize();
    const double seconds = seconds_since(start);
    result.step_ms = 1e3 * seconds / static_cast<double>(options.steps);
    result.tokens_per_second = static_cast<double>(tokens) / std::max(seconds, 1e-12);
    result.tokens_per_step = static_cast<double>(tokens) / static_cast<double>(options.steps);
  }

  constexpr size_t kPhaseCount = std::size(kStepPhases);
  std::vector<std::vector<double>> phase_ms(kPhaseCount);
  std::vector<double> step_ms;
  {
    NVTX_RANGE("bench.phases");
    for (int64_t i = 0; i < options.steps; ++i) {
      auto phase_start = Clock::now();
      double total = 0;
      const std::function<void(StepPhase)> end_of_phase = [&](StepPhase phase) {
        device_synchronize();
        const double ms = 1e3 * seconds_since(phase_start);
        phase_ms[static_cast<size_t>(phase)].push_back(ms);
        total += ms;
        phase_start = Clock::now();
      };
      step(optimizer, end_of_phase);
      step_ms.push_back(total);
    }
  }

  result.steps = options.steps;
  result.untimed_steps = options.untimed_steps;
  result.batch_size = options.batch_size;
  result.parameters = parameters.numel();
  result.synchronised_step_ms = median_time(step_ms);
  result.synchronised_mean_step_ms =
      std::accumulate(step_ms.begin(), step_ms.end(), 0.0) / static_cast<double>(step_ms.size());
  for (StepPhase phase : kStepPhases)
    result.phase_ms.emplace_back(step_phase_name(phase), median_time(phase_ms[static_cast<size_t>(phase)]));
  result.optimizer_lines = optimizer.describe();
  result.peak_bytes = peak_allocated_bytes(device);
  return result;
}

StepBenchmarkResult benchmark_training_steps(SequentialModel& model, const OptimizerConfig& optimizer,
                                             const StepBenchmarkOptions& options) {
  options.check();
  const int64_t T = model.config().max_len;
  const std::vector<data::Batch> batches =
      make_benchmark_batches(model.config().n_items, T, options.batch_size, kDistinctBatches, options.seed);
  PhiloxGenerator rng = training_generator(options.seed);
  size_t next = 0;
  StepBenchmarkResult result = time_training_steps(
      model.parameters(), model.device(), optimizer, options,
      [&](OptimizerSet& optimizer_set, const std::function<void(StepPhase)>& after_phase) {
        const data::Batch& batch = batches[next++ % batches.size()];
        return training_step(model, optimizer_set, batch, rng, options.max_grad_norm, after_phase).tokens;
      });
  result.window = T;
  return result;
}

std::string StepBenchmarkResult::summary() const {
  std::string phases;
  for (const auto& [name, ms] : phase_ms) phases += fmt::format("{}{} {:.3f}", phases.empty() ? "" : ", ", name, ms);
  return fmt::format(
      "step: {:.3f} ms, mean ({} steps after {} untimed; {:.0f} tokens per step, {:.0f} tokens/s)\n"
      "phases, each synchronised (median ms): {}; step median {:.3f}, mean {:.3f}\n"
      "peak tensor memory: {:.1f} MiB\n",
      step_ms, steps, untimed_steps, tokens_per_step, tokens_per_second, phases, synchronised_step_ms,
      synchronised_mean_step_ms,
      static_cast<double>(peak_bytes) / (1024.0 * 1024.0));
}

std::string StepBenchmarkResult::to_json(const std::string& setup) const {
  nlohmann::ordered_json phases = nlohmann::ordered_json::object();
  for (const auto& [name, ms] : phase_ms) phases[name] = ms;
  nlohmann::ordered_json record = {{"kind", "bench_step"}};
  const nlohmann::ordered_json setup_fields = nlohmann::ordered_json::parse(setup);
  MUONREC_CHECK(setup_fields.is_object(), "bench: the setup of a bench_step record must be a JSON object, got {}",
                setup);
  for (const auto& [key, value] : setup_fields.items()) record[key] = value;
  const nlohmann::ordered_json results = {{"steps", steps},
                                          {"untimed_steps", untimed_steps},
                                          {"batch", batch_size},
                                          {"window", window},
                                          {"parameters", parameters},
                                          {"tokens_per_step", tokens_per_step},
                                          {"step_ms", step_ms},
                                          {"tokens_per_s", tokens_per_second},
                                          {"synchronised_step_ms", synchronised_step_ms},
                                          {"synchronised_mean_step_ms", synchronised_mean_step_ms},
                                          {"phase_ms", phases},
                                          {"peak_bytes", peak_bytes}};
  for (const auto& [key, value] : results.items()) record[key] = value;
  return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace muonrec

// The step benchmark (models/step_benchmark.h) and the training step it shares with the trainer
// (models/training_step.h): the synthetic windows, the phases, and what the result reports.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <vector>

#include "muonrec/engine/allocator.h"
#include "muonrec/models/step_benchmark.h"
#include "muonrec/models/tiger_step_benchmark.h"
#include "muonrec/models/training_step.h"
#include "test_util.h"
#include "tiny_model_config.h"

using namespace muonrec;

TEST(StepBenchmark, BatchesAreFullWindowsOfNextItemTargets) {
  const int64_t items = 30, T = 7, rows = 5;
  const std::vector<data::Batch> batches = make_benchmark_batches(items, T, rows, 2, 11);
  ASSERT_EQ(batches.size(), 2u);
  for (const data::Batch& batch : batches) {
    ASSERT_EQ(batch.rows, rows);
    ASSERT_EQ(batch.T, T);
    EXPECT_EQ(batch.real_rows, rows);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(batch.user_rows[r], r);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t at = r * T + t;
        EXPECT_GE(batch.ids[at], 1);
        EXPECT_LE(batch.ids[at], items);
        EXPECT_GE(batch.targets[at], 1);
        EXPECT_LE(batch.targets[at], items);
        if (t + 1 < T) EXPECT_EQ(batch.targets[at], batch.ids[at + 1]) << r << "," << t;
        if (t > 0) EXPECT_GT(batch.timestamps[at], batch.timestamps[at - 1]) << r << "," << t;
      }
      EXPECT_EQ(batch.last_train_items[r], batch.targets[r * T + T - 1]);
    }
  }
  EXPECT_NE(batches[0].ids, batches[1].ids);
  EXPECT_EQ(make_benchmark_batches(items, T, rows, 2, 11)[1].ids, batches[1].ids);  // deterministic by seed
  EXPECT_NE(make_benchmark_batches(items, T, rows, 2, 12)[0].ids, batches[0].ids);
  testkit::expect_error([] { make_benchmark_batches(0, T, rows, 1, 1); }, {"positive items", "got 0"});
}

TEST(StepBenchmark, TrainingStepRunsThePhasesInOrderAndTrains) {
  ModelConfig config = testkit::tiny_model_config("sasrec", 40, 6, 1);
  auto model = make_model(config, Device::CPU, 3);
  model->parameters().allocate_grad_arena();
  OptimizerSet optimizer(model->parameters().all(), OptimizerConfig{});
  const std::vector<float> before = model->parameters().all().front().tensor.to_f32_vector();
  PhiloxGenerator rng(5);
  std::vector<StepPhase> seen;
  const data::Batch batch = make_benchmark_batches(40, 6, 3, 1, 2)[0];
  const TrainingStepOutcome step = training_step(*model, optimizer, batch, rng, /*max_grad_norm=*/0.5f,
                                                 [&](StepPhase phase) { seen.push_back(phase); });
  EXPECT_EQ(seen, std::vector<StepPhase>(std::begin(kStepPhases), std::end(kStepPhases)));
  EXPECT_EQ(step.tokens, 3 * 6);
  EXPECT_GT(step.loss.item(), 0.0f);
  EXPECT_TRUE(step.grad_norm.defined());
  EXPECT_EQ(optimizer.steps(), 1);
  EXPECT_NE(model->parameters().all().front().tensor.to_f32_vector(), before);
  EXPECT_STREQ(step_phase_name(StepPhase::Backward), "backward");
}

TEST(StepBenchmark, ReportsStepsTokensPhasesAndMemory) {
  const int64_t batch = 4, T = 8;
  ModelConfig config = testkit::tiny_model_config("hstu", 50, T, 2);
  auto model = make_model(config, Device::CPU, 1);
  StepBenchmarkOptions options;
  options.batch_size = batch;
  options.untimed_steps = 1;
  options.steps = 3;
  const StepBenchmarkResult result = benchmark_training_steps(*model, OptimizerConfig{}, options);
  EXPECT_EQ(result.steps, 3);
  EXPECT_EQ(result.untimed_steps, 1);
  EXPECT_EQ(result.batch_size, batch);
  EXPECT_EQ(result.window, T);
  EXPECT_EQ(result.parameters, model->parameters().numel());
  EXPECT_DOUBLE_EQ(result.tokens_per_step, static_cast<double>(batch * T));  // full windows: every position
  EXPECT_GT(result.step_ms, 0.0);
  EXPECT_NEAR(result.tokens_per_second, result.tokens_per_step / (result.step_ms / 1e3),
              1e-9 * result.tokens_per_second);
  ASSERT_EQ(result.phase_ms.size(), 4u);
  const char* names[] = {"input", "forward", "backward", "optimizer"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(result.phase_ms[i].first, names[i]);
    EXPECT_GT(result.phase_ms[i].second, 0.0) << names[i];
  }
  EXPECT_GT(result.synchronised_step_ms, 0.0);
  // Parameters, their gradients and AdamW's two moments live through the steps.
  EXPECT_GE(result.peak_bytes, 4 * sizeof(float) * static_cast<size_t>(result.parameters));
  EXPECT_FALSE(result.optimizer_lines.empty());
  const std::string json = result.to_json(R"({"model":"sasrec"})");
  EXPECT_EQ(json.rfind("{\"kind\":\"bench_step\",\"model\":\"sasrec\",\"steps\":", 0), 0u) << json;
  EXPECT_GE(result.synchronised_mean_step_ms, 0.0);
  for (const char* field : {"\"tokens_per_step\":32.0", "\"phase_ms\":{\"input\":", "\"synchronised_mean_step_ms\":"})
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  EXPECT_NE(result.summary().find("tokens/s"), std::string::npos);
}

// The untimed steps, the throughput pass and the phase pass each step the optimizer: the schedule
// spans all of them, and a warm-up shorter than the whole is no error.
TEST(StepBenchmark, TheScheduleSpansEveryStepTheBenchmarkRuns) {
  auto model = make_model(testkit::tiny_model_config("sasrec", 50, 8, 1), Device::CPU, 1);
  StepBenchmarkOptions options;
  options.batch_size = 4;
  options.untimed_steps = 1;
  options.steps = 2;
  OptimizerConfig optimizer;
  optimizer.schedule.kind = LrSchedule::Kind::Cosine;
  optimizer.schedule.warmup_steps = 3;
  const StepBenchmarkResult result = benchmark_training_steps(*model, optimizer, options);
  const std::string lines = fmt::format("{}", fmt::join(result.optimizer_lines, "\n"));
  EXPECT_NE(lines.find("over 5 steps, linear warmup 3 steps"), std::string::npos) << lines;
}

TEST(StepBenchmark, Bert4RecTrainsOnTheMaskedPositionsOnly) {
  ModelConfig config = testkit::tiny_model_config("bert4rec", 50, 10, 1);
  config.mask_prob = 0.3f;
  auto model = make_model(config, Device::CPU, 1);
  StepBenchmarkOptions options;
  options.batch_size = 16;
  options.untimed_steps = 0;
  options.steps = 4;
  const StepBenchmarkResult result = benchmark_training_steps(*model, OptimizerConfig{}, options);
  // 160 positions a step, about 30% masked (each step's count is binomial, sd about 6).
  EXPECT_GT(result.tokens_per_step, 0.2 * 160);
  EXPECT_LT(result.tokens_per_step, 0.4 * 160);
  // Tokens per step and per second describe the same steps.
  EXPECT_NEAR(result.tokens_per_second, result.tokens_per_step / (result.step_ms / 1e3),
              1e-9 * result.tokens_per_second);
}

TEST(StepBenchmark, RefusesEmptyRuns) {
  auto model = make_model(testkit::tiny_model_config("sasrec", 20, 4, 1), Device::CPU, 1);
  StepBenchmarkOptions options;
  options.steps = 0;
  testkit::expect_error([&] { benchmark_training_steps(*model, OptimizerConfig{}, options); },
                        {"step count must be positive", "got 0"});
  options.steps = 1;
  options.batch_size = -2;
  testkit::expect_error([&] { benchmark_training_steps(*model, OptimizerConfig{}, options); },
                        {"batch size must be positive", "got -2"});
}

TEST(Allocator, PeakFollowsTheMostHeldSinceTheReset) {
  Tensor kept = Tensor::zeros({1000});
  reset_peak_allocated_bytes(Device::CPU);
  const size_t base = allocated_bytes(Device::CPU);
  EXPECT_EQ(peak_allocated_bytes(Device::CPU), base);
  {
    Tensor transient = Tensor::zeros({5000});
    EXPECT_EQ(peak_allocated_bytes(Device::CPU), base + 5000 * sizeof(float));
  }
  EXPECT_EQ(allocated_bytes(Device::CPU), base);
  EXPECT_EQ(peak_allocated_bytes(Device::CPU), base + 5000 * sizeof(float));  // freed, still the peak
  reset_peak_allocated_bytes(Device::CPU);
  EXPECT_EQ(peak_allocated_bytes(Device::CPU), base);
}

TEST(StepBenchmark, TimesStepsOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const int64_t batch = 8, T = 16;
  auto model = make_model(testkit::tiny_model_config("sasrec", 300, T, 2), Device::CUDA, 1);
  StepBenchmarkOptions options;
  options.batch_size = batch;
  options.untimed_steps = 2;
  options.steps = 5;
  OptimizerConfig muon;
  muon.optimizer = "muon";
  const StepBenchmarkResult result = benchmark_training_steps(*model, muon, options);
  EXPECT_DOUBLE_EQ(result.tokens_per_step, static_cast<double>(batch * T));
  EXPECT_GT(result.step_ms, 0.0);
  for (const auto& [name, ms] : result.phase_ms) EXPECT_GT(ms, 0.0) << name;
  EXPECT_GE(result.peak_bytes, 4 * sizeof(float) * static_cast<size_t>(result.parameters));  // device memory
}

// ---------------------------------------------------------------------------------------------
// TIGER

TEST(TigerStepBenchmark, DataHasFullHistoriesAndAUniqueCodePerItem) {
  const int64_t items = 40, levels = 2, codebook = 4, history = 5, users = 9;
  const TigerBenchmarkData data = make_tiger_benchmark_data(items, levels, codebook, history, users, 3);
  ASSERT_EQ(data.dataset.num_users(), users);
  for (const std::vector<int64_t>& sequence : data.dataset.sequences) {
    EXPECT_EQ(static_cast<int64_t>(sequence.size()), history + 3);
    for (int64_t item : sequence) {
      EXPECT_GE(item, 1);
      EXPECT_LE(item, items);
    }
  }
  // 40 items on 16 code pairs: some share a pair, and the disambiguation token tells them apart.
  ASSERT_EQ(data.vocab_sizes.size(), 3u);
  EXPECT_EQ(data.vocab_sizes[0], codebook);
  EXPECT_EQ(data.vocab_sizes[1], codebook);
  EXPECT_GE(data.vocab_sizes[2], 3);
  const std::vector<int64_t> codes = data.catalog.tokens.codes();
  for (int64_t item = 1; item <= items; ++item) {
    const std::vector<int64_t> code(codes.begin() + item * 3, codes.begin() + item * 3 + 3);
    EXPECT_EQ(data.catalog.trie.item(code), item);
  }
  EXPECT_EQ(make_tiger_benchmark_data(items, levels, codebook, history, users, 3).dataset.sequences,
            data.dataset.sequences);
  EXPECT_NE(make_tiger_benchmark_data(items, levels, codebook, history, users, 4).dataset.sequences,
            data.dataset.sequences);
}

TEST(TigerStepBenchmark, DecoderOnlyAndEncoderDecoderSteps) {
  const TigerBenchmarkData data = make_tiger_benchmark_data(60, 2, 8, 4, 24, 1);
  StepBenchmarkOptions options;
  options.batch_size = 6;
  options.untimed_steps = 1;
  options.steps = 3;
  for (int64_t encoder_blocks : {0, 1}) {
    TigerConfig config;
    config.vocab_sizes = data.vocab_sizes;
    config.max_items = 4;
    config.d = 16;
    config.blocks = 1;
    config.heads = 2;
    config.encoder_blocks = encoder_blocks;
    TigerModel model(config, Device::CPU, 2);
    const std::vector<float> before = model.parameters().all().front().tensor.to_f32_vector();
    OptimizerConfig muon;
    muon.optimizer = "muon";
    const StepBenchmarkResult result = benchmark_tiger_steps(model, data, muon, options);
    EXPECT_EQ(result.window, config.window());
    EXPECT_EQ(result.parameters, model.parameters().numel());
    // Decoder-only: every history fills the window, each token a target. Encoder-decoder: the
    // target item's code, levels + 1 tokens, per example.
    const int64_t tokens_per_row = encoder_blocks > 0 ? config.code_length() : config.window();
    EXPECT_DOUBLE_EQ(result.tokens_per_step, static_cast<double>(options.batch_size * tokens_per_row))
        << "encoder blocks " << encoder_blocks;
    for (const auto& [name, ms] : result.phase_ms) EXPECT_GT(ms, 0.0) << name;
    EXPECT_NE(model.parameters().all().front().tensor.to_f32_vector(), before);
    ASSERT_GE(result.optimizer_lines.size(), 2u);
    EXPECT_EQ(result.optimizer_lines[1].rfind("Muon", 0), 0u) << result.optimizer_lines[1];
  }
  TigerConfig other;
  other.vocab_sizes = {8, 8, 1};
  TigerModel mismatched(other, Device::CPU, 1);
  testkit::expect_error([&] { benchmark_tiger_steps(mismatched, data, OptimizerConfig{}, options); },
                        {"vocabularies are not the benchmark catalogue's"});
}

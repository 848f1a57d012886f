#include "models/trainer.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "data/batcher.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"

namespace muonrec {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::app);
  MUONREC_CHECK(out, "{}: cannot open the metrics file for appending", path);
  out << record.dump() << '\n';
}

}  // namespace

void save_checkpoint(const std::string& path, SequentialModel& model, const AdamW& optimizer,
                     const std::map<std::string, std::string>& metadata) {
  std::map<std::string, Tensor> tensors = model.parameters().named("param.");
  for (auto& [name, tensor] : optimizer.state("adamw.")) tensors[name] = tensor;
  std::map<std::string, std::string> meta = metadata;
  meta["config"] = model.config().to_json();
  meta["format"] = "muonrec-checkpoint-1";
  save_safetensors(path, tensors, meta);
}

std::unique_ptr<SequentialModel> load_model_checkpoint(const std::string& path, Device device,
                                                       SafetensorsFile* file_out) {
  SafetensorsFile file = load_safetensors(path);
  MUONREC_CHECK(file.metadata.count("config"), "{}: not a muonrec checkpoint (no 'config' metadata)", path);
  ModelConfig config = ModelConfig::from_json(file.metadata.at("config"));
  auto model = make_model(config, device, 0);
  model->parameters().load_from(file, "param.");
  if (file_out) *file_out = std::move(file);
  return model;
}

TrainResult train_model(SequentialModel& model, const data::SequenceDataset& dataset, const TrainOptions& options,
                        std::ostream& log) {
  MUONREC_CHECK(options.epochs > 0 && options.batch_size > 0 && options.eval_every > 0,
                "train: epochs, batch size and eval interval must be positive");
  const int64_t T = model.config().max_len;
  data::TrainBatcher batcher(dataset, T, options.batch_size, options.seed);
  AdamW optimizer(model.parameters().all(), options.adamw);
  PhiloxGenerator dropout_rng(options.seed ^ 0x5eed5eedull);
  EvalOptions eval = options.eval;
  eval.max_len = T;

  TrainResult result;
  double best_valid = -1.0;
  const int64_t steps_per_epoch = batcher.batches_per_epoch();
  const int64_t total_steps = steps_per_epoch * options.epochs;
  auto start = Clock::now();
  auto last_print = start;
  double train_seconds = 0;
  data::Batch batch;
  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    NVTX_RANGE("epoch");
    auto epoch_start = Clock::now();
    batcher.start_epoch(epoch);
    // Losses stay on the device; they are read only when a progress line is printed.
    std::vector<Tensor> pending_losses;
    double loss_sum = 0;
    int64_t loss_count = 0, step_in_epoch = 0;
    while (batcher.next(batch)) {
      NVTX_RANGE("train_step");
      SequenceBatch input =
          make_sequence_batch(batch.ids, batch.targets, batch.timestamps, batch.rows, T, model.device());
      model.parameters().zero_grad();
      Tensor loss = model.loss(input, true, dropout_rng);
      backward(loss);
      optimizer.step();
      pending_losses.push_back(loss);
      ++step_in_epoch;
      ++result.steps;
      if (seconds_since(last_print) >= options.progress_seconds || step_in_epoch == steps_per_epoch) {
        for (const Tensor& l : pending_losses) loss_sum += l.item();
        loss_count += static_cast<int64_t>(pending_losses.size());
        pending_losses.clear();
        double elapsed = train_seconds + seconds_since(epoch_start);
        double rate = result.steps / std::max(elapsed, 1e-9);
        log << fmt::format("epoch {}/{}  step {}/{}  loss {:.4f}  {:.1f} steps/s  ETA {}\n", epoch, options.epochs,
                           step_in_epoch, steps_per_epoch, loss_sum / std::max<int64_t>(loss_count, 1), rate,
                           format_duration((total_steps - result.steps) / std::max(rate, 1e-9)))
            << std::flush;
        last_print = Clock::now();
      }
    }
    device_synchronize();
    const double epoch_seconds = seconds_since(epoch_start);
    train_seconds += epoch_seconds;
    nlohmann::json record = {{"kind", "epoch"},  {"epoch", epoch}, {"loss", loss_sum / std::max<int64_t>(loss_count, 1)},
                             {"seconds", epoch_seconds}, {"steps", result.steps}};
    if (epoch % options.eval_every == 0 || epoch == options.epochs) {
      RankingMetrics valid = evaluate_model(model, dataset, data::EvalSplit::Validation, eval);
      record["valid"] = nlohmann::json::parse(valid.to_json());
      log << fmt::format("epoch {} validation: {}\n", epoch, valid.summary());
      if (valid.ndcg10 > best_valid) {
        best_valid = valid.ndcg10;
        result.best_epoch = epoch;
        result.best_valid = valid;
        result.test_at_best = evaluate_model(model, dataset, data::EvalSplit::Test, eval);
        record["test"] = nlohmann::json::parse(result.test_at_best.to_json());
        log << fmt::format("epoch {} test (new best validation): {}\n", epoch, result.test_at_best.summary());
        if (!options.checkpoint_path.empty()) {
          save_checkpoint(options.checkpoint_path, model, optimizer,
                          {{"epoch", std::to_string(epoch)},
                           {"seed", std::to_string(options.seed)},
                           {"data", dataset.source},
                           {"test_metrics", result.test_at_best.to_json()}});
        }
      }
    }
    append_jsonl(options.metrics_path, record);
  }
  result.train_seconds = train_seconds;
  append_jsonl(options.metrics_path, {{"kind", "result"},
                                      {"best_epoch", result.best_epoch},
                                      {"train_seconds", train_seconds},
                                      {"valid", nlohmann::json::parse(result.best_valid.to_json())},
                                      {"test", nlohmann::json::parse(result.test_at_best.to_json())}});
  return result;
}

}  // namespace muonrec

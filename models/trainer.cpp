#include "muonrec/models/trainer.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"
#include "muonrec/engine/json_text.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/training_position.h"
#include "muonrec/models/training_step.h"

namespace muonrec {
namespace {

using nlohmann::json;

void append_jsonl(const std::string& path, const json& record) { append_jsonl_line(path, json_text(record)); }

// `tensors` and `metadata` with the model's config and the format tag, which loading reads.
void save_model_file(const std::string& path, const SequentialModel& model,
                     const std::map<std::string, Tensor>& tensors, std::map<std::string, std::string> metadata) {
  metadata["config"] = model.config().to_json();
  metadata["format"] = "muonrec-checkpoint-1";
  save_safetensors(path, tensors, metadata);
}

}  // namespace

void save_checkpoint(const std::string& path, SequentialModel& model, const OptimizerSet& optimizer,
                     const std::map<std::string, std::string>& metadata) {
  std::map<std::string, Tensor> tensors = model.parameters().named("param.");
  for (auto& [name, tensor] : optimizer.state()) tensors[name] = tensor;
  save_model_file(path, model, tensors, metadata);
}

void save_model(const std::string& path, SequentialModel& model, const data::SequenceDataset& dataset) {
  std::map<std::string, std::string> metadata{{"data", dataset.source}};
  add_item_numbering(metadata, dataset);
  save_model_file(path, model, model.parameters().named("param."), metadata);
}

std::unique_ptr<SequentialModel> load_model_checkpoint(const std::string& path, Device device,
                                                       SafetensorsFile* file_out) {
  SafetensorsFile file = load_safetensors(path);
  auto model = load_model_checkpoint(file, device);
  if (file_out) *file_out = std::move(file);
  return model;
}

std::unique_ptr<SequentialModel> load_model_checkpoint(const SafetensorsFile& file, Device device) {
  MUONREC_CHECK(file.metadata.count("config"), "{}: not a muonrec checkpoint (no 'config' metadata)", file.path);
  return with_checkpoint_named(file, [&] {
    const ModelConfig config = ModelConfig::from_json(file.metadata.at("config"));
    // The config sizes every table: its item table is checked against the file's before anything
    // is allocated (a damaged config could ask for terabytes).
    const Tensor& items = file.at("param.item.weight");
    MUONREC_CHECK(items.shape() == Shape({config.item_table_rows(), config.d}),
                  "its config ({} with n_items {}, d {}) does not match its item table {}", config.kind,
                  config.n_items, config.d, shape_str(items.shape()));
    check_config_fits_the_file(file, {config.blocks, config.d, config.ff, config.heads, config.head_dim},
                               {{"maxlen x d", static_cast<double>(config.max_len) * static_cast<double>(config.d)}});
    auto model = make_model(config, device, 0);
    model->parameters().load_from(file, "param.");
    return model;
  });
}

void TrainOptions::check(const std::string& who) const {
  for (const auto& [flag, value] : {std::pair<const char*, int64_t>{"--epochs", epochs}, {"--batch", batch_size},
                                    {"--eval-every", eval_every}, {"--eval-batch", eval.batch_size}})
    MUONREC_CHECK(value > 0, "{}: {} must be positive (got {})", who, flag, value);
  MUONREC_CHECK(stop_after_epoch >= 0, "{}: --stop-after-epoch must not be negative (got {})", who, stop_after_epoch);
  MUONREC_CHECK(patience >= 0, "{}: --patience must not be negative (got {})", who, patience);
  const LrSchedule& schedule = optimizer.schedule;
  MUONREC_CHECK(max_grad_norm >= 0 && schedule.warmup_steps >= 0 && schedule.min_lr >= 0,
                "{}: --clip-grad-norm, --warmup-steps and --min-lr must not be negative (got {}, {}, {})", who,
                max_grad_norm, schedule.warmup_steps, schedule.min_lr);
  MUONREC_CHECK(std::isfinite(optimizer.adamw.lr) && optimizer.adamw.lr >= 0 && std::isfinite(optimizer.muon.lr) &&
                    optimizer.muon.lr >= 0,
                "{}: learning rates must be finite numbers >= 0 (got AdamW {}, Muon {})", who, optimizer.adamw.lr,
                optimizer.muon.lr);
  MUONREC_CHECK(stop_after_epoch == 0 || stop_after_epoch >= epochs || !last_checkpoint_path.empty(),
                "{}: --stop-after-epoch {} ends the run before epoch {} with nowhere to keep its state: "
                "add --save-last FILE to resume it later",
                who, stop_after_epoch, epochs);
}

void TrainOptions::check_warmup_fits(const std::string& who, int64_t steps_per_epoch) const {
  const int64_t warmup = optimizer.schedule.warmup_steps, steps = epochs * steps_per_epoch;
  MUONREC_CHECK(warmup < steps,
                "{}: --warmup-steps {} is not shorter than the run's {} optimizer steps (--epochs {} x {} steps per "
                "epoch): the learning rate would never reach its base value",
                who, warmup, steps, epochs, steps_per_epoch);
}

void TrainOptions::check_output_files(const std::vector<std::string>& inputs) const {
  // Two outputs in one file would overwrite each other (a checkpoint renamed over the metrics, or the
  // last epoch's state over the best one's). Compared as absolute paths, '..' and links resolved.
  const std::pair<const std::string*, const char*> outputs[] = {
      {&metrics_path, "--metrics"}, {&checkpoint_path, "--checkpoint"}, {&last_checkpoint_path, "--save-last"}};
  for (size_t i = 0; i < std::size(outputs); ++i)
    for (size_t j = i + 1; j < std::size(outputs); ++j) {
      if (outputs[i].first->empty() || outputs[j].first->empty()) continue;
      const auto resolved = [](const std::string& path) {
        std::error_code error;
        const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, error);
        return error ? std::filesystem::absolute(path).lexically_normal() : canonical;
      };
      MUONREC_CHECK(resolved(*outputs[i].first) != resolved(*outputs[j].first),
                    "{} {} and {} {} name the same file: give each its own", outputs[i].second,
                    *outputs[i].first, outputs[j].second, *outputs[j].first);
    }
  for (const auto& [path, flag] : outputs) {
    if (path->empty()) continue;
    std::vector<std::string> read = inputs;
    // --save-last rewrites the state the run resumed from; the other outputs would destroy it.
    if (path != &last_checkpoint_path) read.push_back(resume_path);
    check_output_file(flag, *path, read);
  }
}

double TrainResult::median_epoch_seconds() const { return median_time(epoch_seconds); }

std::string TrainResult::checkpoint_line(const std::string& path) const {
  if (path.empty()) return "";
  if (checkpoint_written) return fmt::format("checkpoint: {}\n", path);
  if (best_epoch == 0) return fmt::format("checkpoint: {} not written: no validation yet\n", path);
  return fmt::format("checkpoint: {} not written: no validation of this run beat the best one before it (epoch {}), "
                     "whose parameters are in the --checkpoint of the run that reached it\n",
                     path, best_epoch);
}

std::string TrainResult::summary_lines() const {
  std::string out;
  if (best_epoch > 0) out += fmt::format("best validation epoch {}: {}\n", best_epoch, best_valid.summary());
  if (test_at_best.users > 0) out += fmt::format("test at that epoch:     {}\n", test_at_best.summary());
  return out;
}

TrainResult train_model(SequentialModel& model, const data::SequenceDataset& dataset, const TrainOptions& options,
                        std::ostream& log) {
  options.check("train");
  MUONREC_CHECK(dataset.n_items == model.config().n_items, "train: the dataset has {} items, the model {}",
                dataset.n_items, model.config().n_items);
  const int64_t T = model.config().max_len;
  data::TrainBatcher batcher(dataset, T, options.batch_size, options.seed, model.training_targets());
  const int64_t steps_per_epoch = batcher.batches_per_epoch();
  const int64_t total_steps = steps_per_epoch * options.epochs;
  options.check_warmup_fits("train", steps_per_epoch);
  // Gradients in one flat buffer: stable addresses for the fused optimizers, one memset to clear.
  model.parameters().allocate_grad_arena();
  OptimizerConfig optimizer_config = options.optimizer;
  optimizer_config.schedule.total_steps = total_steps;
  OptimizerSet optimizer(model.parameters().all(), optimizer_config);
  for (const std::string& line : optimizer.describe()) log << "optimizer: " << line << "\n";
  PhiloxGenerator dropout_rng = training_generator(options.seed);
  const EvalOptions& eval = options.eval;

  const RunIdentity run = run_identity(
      options, model.config().to_json(),
      [](const std::string& saved) { return ModelConfig::from_json(saved).to_json(); }, total_steps);
  TrainResult result;
  TrainingPosition position;
  if (!options.resume_path.empty()) {
    TrainingState state = open_training_state(options, run, dataset, log);
    restore_training_state(state, model.parameters(), optimizer, dropout_rng, log);
    position = state.position;
    result.best_epoch = position.best_epoch;
    result.best_valid = metrics_from_json(position.best_valid_json);
    result.test_at_best = metrics_from_json(position.test_at_best_json);
  }
  // After the resume checks: a refused state leaves no record of a run that never started.
  options.check_output_files({dataset.source});
  append_jsonl_line(options.metrics_path, run_record_json(run, options, dataset, model.device()));

  ProgressLog progress(log, options.progress_seconds, options.epochs, steps_per_epoch);
  double train_seconds = 0;
  int64_t steps_this_run = 0;
  data::Batch batch;
  for (int64_t epoch = position.epoch + 1; trains_epoch(options, position, epoch); ++epoch) {
    NVTX_RANGE("epoch");
    auto epoch_start = Clock::now();
    batcher.start_epoch(epoch);
    progress.start_epoch(epoch);
    Tensor grad_norm;  // of the latest step, when clipping
    int64_t step_in_epoch = 0;
    while (batcher.next(batch)) {
      const TrainingStepOutcome step = training_step(model, optimizer, batch, dropout_rng, options.max_grad_norm);
      grad_norm = step.grad_norm;
      progress.add_loss(step.loss);
      result.tokens += step.tokens;
      ++step_in_epoch;
      ++steps_this_run;
      progress.after_step(step_in_epoch, grad_norm,
                          steps_this_run / std::max(train_seconds + seconds_since(epoch_start), 1e-9),
                          steps_left(options, epoch, step_in_epoch, steps_per_epoch));
    }
    device_synchronize();
    const double epoch_seconds = seconds_since(epoch_start);
    train_seconds += epoch_seconds;
    const double epoch_loss = progress.epoch_loss();
    result.epoch_losses.push_back(epoch_loss);
    result.epoch_seconds.push_back(epoch_seconds);
    json record = {{"kind", "epoch"}, {"epoch", epoch}, {"loss", epoch_loss}, {"seconds", epoch_seconds},
                   {"steps", optimizer.steps()}};
    // Where the run stands now: the best checkpoint below is a training state too.
    position.epoch = epoch;
    position.dropout_offset = dropout_rng.offset();
    bool new_best = false;
    if (epoch % options.eval_every == 0 || epoch == options.epochs) {
      RankingMetrics valid = evaluate_model(model, dataset, data::EvalSplit::Validation, eval);
      record["valid"] = json::parse(valid.to_json());
      log << fmt::format("epoch {} validation: {}\n", epoch, valid.summary()) << std::flush;
      new_best = position.record_validation(epoch, valid);
      if (new_best) {
        result.best_epoch = epoch;
        result.best_valid = valid;
        result.test_at_best = evaluate_model(model, dataset, data::EvalSplit::Test, eval);
        position.test_at_best_json = result.test_at_best.to_json();
        record["test"] = json::parse(result.test_at_best.to_json());
        log << fmt::format("epoch {} test (new best validation): {}\n", epoch, result.test_at_best.summary())
            << std::flush;
      }
    }
    // The epoch's record before the states that resume after it: a run stopped in between repeats
    // the epoch (the history keeps the later record), where the other order would lose it.
    append_jsonl(options.metrics_path, record);
    if (new_best && !options.checkpoint_path.empty()) {
      save_checkpoint(options.checkpoint_path, model, optimizer, training_state_metadata(position, run, dataset));
      result.checkpoint_written = true;
    }
    if (!options.last_checkpoint_path.empty())
      save_checkpoint(options.last_checkpoint_path, model, optimizer,
                      training_state_metadata(position, run, dataset));
  }
  result.steps = steps_this_run;
  result.train_seconds = train_seconds;
  // A paused run leaves its result to the run that resumes it, as TIGER's does.
  if (end_of_run(options, position, result, log) == RunEnd::Paused) return result;
  append_jsonl(options.metrics_path, {{"kind", "result"},
                                      {"best_epoch", result.best_epoch},
                                      {"patience_stop_epoch", result.patience_stop_epoch},
                                      {"train_seconds", train_seconds},
                                      {"median_epoch_seconds", result.median_epoch_seconds()},
                                      {"tokens_per_s", result.tokens_per_second()},
                                      {"valid", json::parse(result.best_valid.to_json())},
                                      {"test", json::parse(result.test_at_best.to_json())}});
  return result;
}

}  // namespace muonrec

#include "muonrec/models/tiger_train.h"

#include <algorithm>
#include <charconv>
#include <numeric>
#include <nlohmann/json.hpp>
#include <ostream>
#include <system_error>

#include "muonrec/engine/error.h"
#include "muonrec/engine/json_text.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/tiger_batches.h"
#include "muonrec/models/training_position.h"
#include "muonrec/models/training_step.h"

namespace muonrec {
namespace {

using nlohmann::json;

std::vector<Tensor> snapshot(ParameterList& params) {
  std::vector<Tensor> out;
  for (const NamedParameter& p : params.all()) out.push_back(p.tensor.clone());
  return out;
}

void restore(ParameterList& params, const std::vector<Tensor>& saved) {
  for (size_t i = 0; i < saved.size(); ++i) {
    Tensor target = params.all()[i].tensor;  // a handle to the parameter's storage
    target.copy_from(saved[i]);
  }
}

// A training state keeps the best validation epoch's parameters beside the current ones, under
// this prefix, so a resumed run tests the same parameters an uninterrupted one would.
constexpr const char* kBestPrefix = "best.";

std::map<std::string, Tensor> best_tensors(const ParameterList& params, const std::vector<Tensor>& best) {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < best.size(); ++i) out[kBestPrefix + params.all()[i].name] = best[i];
  return out;
}

// The best parameters of a training state (empty when it had no validation yet), on `device`.
std::vector<Tensor> load_best(const SafetensorsFile& state, const ParameterList& params, Device device) {
  std::vector<Tensor> out;
  if (params.all().empty() || !state.contains(kBestPrefix + params.all().front().name)) return out;
  for (const NamedParameter& p : params.all()) {
    const std::string name = kBestPrefix + p.name;
    const Tensor& saved = state.at(name);
    MUONREC_CHECK(saved.shape() == p.tensor.shape(), "{}: {} has shape {}, the model's {}", state.path, name,
                  shape_str(saved.shape()), shape_str(p.tensor.shape()));
    state.check_values(name, "best-epoch parameter");  // F32 and finite, as the parameters themselves
    out.push_back(saved.to(device));
  }
  return out;
}

}  // namespace

TrainResult train_tiger(TigerModel& model, const TigerCatalog& catalog, const data::SequenceDataset& dataset,
                        const TigerTrainOptions& options, std::ostream& log,
                        const semantic_id::RqKMeans* tokenizer) {
  const TrainOptions& o = options.train;
  o.check("tiger train");
  MUONREC_CHECK((o.checkpoint_path.empty() && o.last_checkpoint_path.empty()) || tokenizer != nullptr,
                "tiger train: a checkpoint needs the tokenizer (pass it to train_tiger)");
  dataset.validate();
  MUONREC_CHECK(catalog.tokens.n_items == dataset.n_items, "tiger train: the catalog has {} items, the dataset {}",
                catalog.tokens.n_items, dataset.n_items);
  const TigerConfig& config = model.config();
  const int64_t users = dataset.num_users(), B = o.batch_size;
  check_tiger_has_examples(dataset, config);
  const TigerTrainingBatches examples(catalog, dataset, config);
  const int64_t steps_per_epoch = examples.steps_per_epoch(B);
  const int64_t total_steps = steps_per_epoch * o.epochs;
  o.check_warmup_fits("tiger train", steps_per_epoch);
  model.parameters().allocate_grad_arena();
  OptimizerConfig optimizer_config = o.optimizer;
  optimizer_config.schedule.total_steps = total_steps;
  OptimizerSet optimizer(model.parameters().all(), optimizer_config);
  for (const std::string& line : optimizer.describe()) log << "optimizer: " << line << "\n";
  PhiloxGenerator dropout_rng = training_generator(o.seed);
  TigerEvalOptions valid_eval{options.generate, o.eval.filter_seen, o.eval.filter_seen_last, options.valid_users,
                              o.seed};
  TigerEvalOptions test_eval{options.generate, o.eval.filter_seen, o.eval.filter_seen_last, options.test_users, o.seed};
  // Decoding every user of a real dataset takes minutes on a CPU: progress lines.
  valid_eval.generate.progress = users_progress(log, o.progress_seconds, "validation");
  test_eval.generate.progress = users_progress(log, o.progress_seconds, "test");
  if (options.valid_users > 0)
    log << fmt::format("validation on a fixed sample of {} of {} users\n", std::min(options.valid_users, users), users);
  if (options.test_users > 0)
    log << fmt::format("test on a fixed sample of {} of {} users (muonrec eval tests them all)\n",
                       std::min(options.test_users, users), users);

  RunIdentity run = run_identity(
      o, model.config().to_json(), [](const std::string& saved) { return TigerConfig::from_json(saved).to_json(); },
      total_steps);
  // The validation the best epoch is chosen by.
  run.fixed["beam"] = std::to_string(options.generate.beam_width);
  run.fixed["valid-users"] = std::to_string(options.valid_users);
  // The seed draws that sample: another seed would validate the resumed epochs on other users.
  if (options.valid_users > 0) run.fixed["seed"] = std::to_string(o.seed);
  TrainResult result;
  TrainingPosition position;
  std::vector<Tensor> best_params;
  // The model and tokenizer of the best validation epoch, written at each new best (a run paused or
  // cut short keeps it) and again with the test metrics once the run has tested that epoch.
  auto save_best = [&](const RankingMetrics* test) {
    if (o.checkpoint_path.empty()) return;
    std::map<std::string, std::string> metadata = {{"epoch", std::to_string(result.best_epoch)},
                                                   {"best_valid", result.best_valid.to_json()},
                                                   {"beam_width", std::to_string(options.generate.beam_width)},
                                                   {"fixed_settings", json_text(run.fixed)},
                                                   {"data", dataset.source}};
    if (test) metadata["test_metrics"] = test->to_json();
    add_provenance(metadata, o.command, o.settings);
    add_item_numbering(metadata, dataset);
    save_tiger_checkpoint(o.checkpoint_path, model, *tokenizer, metadata);
    result.checkpoint_written = true;
  };
  if (!o.resume_path.empty()) {
    TrainingState state = open_training_state(o, run, dataset, log);
    restore_training_state(state, model.parameters(), optimizer, dropout_rng, log);
    position = state.position;
    best_params = load_best(state.file, model.parameters(), model.device());
    result.best_epoch = position.best_epoch;
    result.best_valid = metrics_from_json(position.best_valid_json);
  }
  // After the resume checks: a refused state leaves no record of a run that never started.
  o.check_output_files({dataset.source});
  append_jsonl_line(o.metrics_path, run_record_json(run, o, dataset, model.device()));
  ProgressLog progress(log, o.progress_seconds, o.epochs, steps_per_epoch);
  int64_t steps_this_run = 0;
  for (int64_t epoch = position.epoch + 1; trains_epoch(o, position, epoch); ++epoch) {
    NVTX_RANGE("epoch");
    const auto epoch_start = Clock::now();
    const std::vector<std::vector<int64_t>> batches = examples.epoch_batches(B, o.seed, epoch);
    progress.start_epoch(epoch);
    Tensor grad_norm;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      NVTX_RANGE("train_step");
      TigerBatch batch = examples.batch(batches[step], model.device());
      if (batch.targets > 0) {
        const TrainingStepOutcome outcome = step_on_loss(
            model.parameters(), optimizer, [&] { return model.loss(batch, true, dropout_rng); }, o.max_grad_norm);
        grad_norm = outcome.grad_norm;
        progress.add_loss(outcome.loss);
        result.tokens += batch.targets;
        ++steps_this_run;
      }
      progress.after_step(step + 1, grad_norm,
                          steps_this_run / std::max(result.train_seconds + seconds_since(epoch_start), 1e-9),
                          steps_left(o, epoch, step + 1, steps_per_epoch));
    }
    device_synchronize();
    const double epoch_seconds = seconds_since(epoch_start);
    result.train_seconds += epoch_seconds;
    result.epoch_seconds.push_back(epoch_seconds);
    const double epoch_loss = progress.epoch_loss();
    result.epoch_losses.push_back(epoch_loss);
    json record = {{"kind", "epoch"}, {"model", "tiger"},        {"epoch", epoch},
                   {"loss", epoch_loss}, {"seconds", epoch_seconds}, {"steps", optimizer.steps()}};
    if (epoch % o.eval_every == 0 || epoch == o.epochs) {
      const auto eval_start = Clock::now();
      RankingMetrics valid = evaluate_tiger(model, catalog, dataset, data::EvalSplit::Validation, valid_eval);
      record["valid"] = json::parse(valid.to_json());
      log << fmt::format("epoch {} validation: {}  ({:.1f} s)\n", epoch, valid.summary(), seconds_since(eval_start))
          << std::flush;
      if (position.record_validation(epoch, valid)) {
        result.best_epoch = epoch;
        result.best_valid = valid;
        best_params = snapshot(model.parameters());
        save_best(nullptr);
      }
    }
    append_jsonl_line(o.metrics_path, json_text(record));
    position.epoch = epoch;
    position.dropout_offset = dropout_rng.offset();
    if (!o.last_checkpoint_path.empty()) {
      std::map<std::string, Tensor> state = optimizer.state();
      for (auto& [name, tensor] : best_tensors(model.parameters(), best_params)) state[name] = tensor;
      save_tiger_checkpoint(o.last_checkpoint_path, model, *tokenizer,
                            training_state_metadata(position, run, dataset), state);
    }
  }
  result.steps = steps_this_run;
  if (end_of_run(o, position, result, log) == RunEnd::Paused) return result;

  // The test of the best validation epoch, with that epoch's parameters.
  if (!best_params.empty()) restore(model.parameters(), best_params);
  // Decoding every test user takes minutes on a CPU: say what is running.
  log << fmt::format("testing epoch {} (best validation) with beam {}...\n", result.best_epoch,
                     options.generate.beam_width)
      << std::flush;
  const auto test_start = Clock::now();
  result.test_at_best = evaluate_tiger(model, catalog, dataset, data::EvalSplit::Test, test_eval);
  log << fmt::format("epoch {} test (best validation): {}  ({:.1f} s)\n", result.best_epoch,
                     result.test_at_best.summary(), seconds_since(test_start))
      << std::flush;
  save_best(&result.test_at_best);
  append_jsonl_line(o.metrics_path, json{{"kind", "result"},
                                         {"model", "tiger"},
                                         {"best_epoch", result.best_epoch},
                                         {"patience_stop_epoch", result.patience_stop_epoch},
                                         {"train_seconds", result.train_seconds},
                                         {"tokens_per_s", result.tokens_per_second()},
                                         {"valid", json::parse(result.best_valid.to_json())},
                                         {"test", json::parse(result.test_at_best.to_json())}}
                                        .dump());
  return result;
}

void save_tiger_checkpoint(const std::string& path, TigerModel& model, const semantic_id::RqKMeans& tokenizer,
                           const std::map<std::string, std::string>& metadata,
                           const std::map<std::string, Tensor>& training_state) {
  MUONREC_CHECK(tokenizer.vocab_sizes() == model.config().vocab_sizes,
                "{}: the tokenizer's vocabulary does not match the model's", path);
  std::map<std::string, Tensor> tensors = training_state;
  for (auto& [name, tensor] : model.parameters().named("param.")) tensors[name] = tensor;
  for (auto& [name, tensor] : tokenizer.state_dict("semantic_id.")) tensors[name] = tensor;
  std::map<std::string, std::string> meta = metadata;
  for (auto& [key, value] : tokenizer.metadata("semantic_id.")) meta[key] = value;
  meta["config"] = model.config().to_json();
  meta["format"] = "muonrec-checkpoint-1";
  save_safetensors(path, tensors, meta);
}

bool is_tiger_checkpoint(const SafetensorsFile& file) {
  auto it = file.metadata.find("config");
  if (it == file.metadata.end()) return false;
  json j = json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("kind") && j["kind"] == "tiger";  // == is false for a non-string
}

int64_t trained_beam_width(const SafetensorsFile& file, int64_t fallback) {
  // A --checkpoint file says it as beam_width; a --save-last state among the run's fixed settings.
  std::string width;
  if (auto it = file.metadata.find("beam_width"); it != file.metadata.end()) {
    width = it->second;
  } else if (auto fixed = file.metadata.find("fixed_settings"); fixed != file.metadata.end()) {
    const json settings = json::parse(fixed->second, nullptr, /*allow_exceptions=*/false);
    if (settings.is_object() && settings.contains("beam") && settings["beam"].is_string())
      width = settings["beam"].get<std::string>();
  }
  if (width.empty()) return fallback;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(width.data(), width.data() + width.size(), value);
  MUONREC_CHECK(ec == std::errc() && end == width.data() + width.size() && value > 0,
                "{}: its beam width '{}' is not a positive number", file.path, width);
  return value;
}

TigerBundle load_tiger_checkpoint(const SafetensorsFile& file, Device device) {
  MUONREC_CHECK(is_tiger_checkpoint(file), "{}: not a tiger checkpoint (its config has no kind 'tiger')", file.path);
  return with_checkpoint_named(file, [&] {
    TigerBundle out;
    const TigerConfig config = TigerConfig::from_json(file.metadata.at("config"));
    out.tokenizer = semantic_id::RqKMeans::from_state_dict(file.tensors, "semantic_id.", file.metadata);
    MUONREC_CHECK(out.tokenizer.vocab_sizes() == config.vocab_sizes,
                  "the tokenizer's vocabulary does not match the model config");
    // The token table [vocabulary, d] and the recency table [sid-history + 1, d].
    const double d = static_cast<double>(config.d);
    const double vocabulary = std::accumulate(config.vocab_sizes.begin(), config.vocab_sizes.end(), 0.0);
    check_config_fits_the_file(
        file, {config.blocks + config.encoder_blocks, config.d, config.ff, config.heads, config.head_dim},
        {{"token vocabulary x d", vocabulary * d},
         {"(sid-history + 1) x d", (static_cast<double>(config.max_items) + 1) * d}});
    out.model = std::make_unique<TigerModel>(config, device, 0);
    out.model->parameters().load_from(file, "param.");
    out.catalog = TigerCatalog::from_codes(out.tokenizer.item_codes(), out.tokenizer.n_items(), config.vocab_sizes);
    return out;
  });
}

TigerBundle load_tiger_checkpoint(const std::string& path, Device device) {
  return load_tiger_checkpoint(load_safetensors(path), device);
}

}  // namespace muonrec

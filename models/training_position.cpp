#include "muonrec/models/training_position.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <ostream>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "muonrec/data/dataset_cache.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/json_text.h"
#include "muonrec/engine/version.h"

namespace muonrec {

namespace {

std::string data_shape(const data::SequenceDataset& dataset) {
  return fmt::format("{} users, {} items, {} events", dataset.num_users(), dataset.n_items, dataset.num_events());
}

// A fingerprint of every user's history, in order, with its times: data of the same shape and item
// numbering may still be other data (histories reordered, events moved between users).
std::string data_histories(const data::SequenceDataset& dataset) {
  uint64_t hash = 0;
  const auto add = [&](const std::vector<int64_t>& row) {
    const std::string_view bytes(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(int64_t));
    hash = data::content_hash(bytes) ^ (hash * 0x9E3779B97F4A7C15ull + row.size());
  };
  for (const std::vector<int64_t>& history : dataset.sequences) add(history);
  for (const std::vector<int64_t>& times : dataset.timestamps) add(times);
  return fmt::format("{:016x}", hash);
}

const std::string& required(const SafetensorsFile& file, const char* key) {
  auto it = file.metadata.find(key);
  MUONREC_CHECK(it != file.metadata.end(),
                "{}: not a training state (no '{}' metadata); resume from a file written by --save-last", file.path,
                key);
  return it->second;
}

// "--flag value (the state's run: value), ..." for the settings of `now` whose value differs from
// the one the file records under `key` (a JSON object of flag -> value). A flag the file does not
// record was added since it was written and passes.
std::string settings_differences(const SafetensorsFile& file, const char* key,
                                 const std::map<std::string, std::string>& now) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return "";
  const nlohmann::json then = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  MUONREC_CHECK(then.is_object(), "{}: its '{}' metadata is not a JSON object", file.path, key);
  std::string out;
  for (const auto& [flag, value] : now) {
    auto was = then.find(flag);
    if (was == then.end() || !was->is_string() || was->get<std::string>() == as_written_to_json(value)) continue;
    out += fmt::format("{}--{} {} (the state's run: {})", out.empty() ? "" : ", ", flag, value, was->get<std::string>());
  }
  return out;
}

// The flag that sets a model config field, where its name is not the field's ("" otherwise).
std::string flag_of_config_field(const std::string& key) {
  static const std::map<std::string, std::string> flags = {
      {"kind", "--model"},           {"n_items", "the data's items"},     {"l2_normalize", "--l2-normalize"},
      {"mask_prob", "--mask-prob"},  {"head_dim", "--head-dim"},          {"max_items", "--sid-history"},
      {"encoder_blocks", "--encoder-blocks"}};
  const auto it = flags.find(key);
  return it == flags.end() ? "" : it->second;
}

// "d: 64 in the state, 128 now; max_items (--sid-history): ..." for every top-level field that differs.
std::string config_differences(const std::string& saved_json, const std::string& now_json) {
  const nlohmann::json saved = nlohmann::json::parse(saved_json), now = nlohmann::json::parse(now_json);
  std::string out;
  // The configs hold floats widened to double: print them as the floats they are (0.1, not 0.100000001).
  auto text = [](const nlohmann::json* v) {
    if (!v) return std::string("absent");
    return v->is_number_float() ? fmt::format("{}", static_cast<float>(v->get<double>())) : v->dump();
  };
  auto add = [&](const std::string& key, const nlohmann::json* a, const nlohmann::json* b) {
    const std::string flag = flag_of_config_field(key);
    out += fmt::format("{}{}{}: {} in the state, {} now", out.empty() ? "" : "; ", key,
                       flag.empty() ? "" : " (" + flag + ")", text(a), text(b));
  };
  for (auto& [key, value] : saved.items()) {
    auto it = now.find(key);
    if (it == now.end()) add(key, &value, nullptr);
    else if (*it != value) add(key, &value, &*it);
  }
  for (auto& [key, value] : now.items())
    if (!saved.contains(key)) add(key, nullptr, &value);
  return out;
}

}  // namespace

std::map<std::string, std::string> TrainingPosition::to_metadata() const {
  return {{"epoch", std::to_string(epoch)},
          {"dropout_offset", std::to_string(dropout_offset)},
          {"best_valid_ndcg10", fmt::format("{:.17g}", best_valid)},
          {"best_epoch", std::to_string(best_epoch)},
          {"validations_since_best", std::to_string(validations_since_best)},
          {"validated_epoch", std::to_string(validated_epoch)},
          {"best_valid", best_valid_json},
          {"test_metrics", test_at_best_json}};
}

TrainingPosition TrainingPosition::from_metadata(const SafetensorsFile& file) {
  // Every field is checked here, naming the file and the key, before the run says it resumed.
  auto count = [&](const char* key, const std::string& text) {
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    MUONREC_CHECK(error == std::errc() && end == text.data() + text.size() && !text.empty() &&
                      value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                  "{}: its '{}' metadata '{}' is not a count", file.path, key, text);
    return value;
  };
  auto metrics = [&](const char* key) -> const std::string& {
    const std::string& text = required(file, key);
    try {
      metrics_from_json(text);
    } catch (const nlohmann::json::exception& e) {
      MUONREC_FAIL("{}: its '{}' metadata is not a metrics record ({})", file.path, key, e.what());
    }
    return text;
  };
  TrainingPosition p;
  p.epoch = static_cast<int64_t>(count("epoch", required(file, "epoch")));
  p.dropout_offset = count("dropout_offset", required(file, "dropout_offset"));
  const std::string& best = required(file, "best_valid_ndcg10");
  char* best_end = nullptr;
  p.best_valid = std::strtod(best.c_str(), &best_end);
  MUONREC_CHECK(!best.empty() && *best_end == '\0', "{}: its 'best_valid_ndcg10' metadata '{}' is not a number",
                file.path, best);
  // -1 before any validation; NaN would make every validation a new best, and a value above 1 none.
  MUONREC_CHECK(p.best_valid == -1.0 || (p.best_valid >= 0.0 && p.best_valid <= 1.0),
                "{}: its 'best_valid_ndcg10' metadata '{}' is no NDCG (in [0, 1], or -1 before any validation)",
                file.path, best);
  p.best_epoch = static_cast<int64_t>(count("best_epoch", required(file, "best_epoch")));
  MUONREC_CHECK(p.best_epoch <= p.epoch, "{}: its best epoch {} is after its epoch {} (a damaged file)", file.path,
                p.best_epoch, p.epoch);
  const auto since_best = file.metadata.find("validations_since_best");
  if (since_best != file.metadata.end())
    p.validations_since_best = static_cast<int64_t>(count("validations_since_best", since_best->second));
  const auto validated = file.metadata.find("validated_epoch");
  p.validated_epoch =
      validated == file.metadata.end() ? -1 : static_cast<int64_t>(count("validated_epoch", validated->second));
  p.best_valid_json = metrics("best_valid");
  p.test_at_best_json = metrics("test_metrics");
  return p;
}

bool TrainingPosition::record_validation(int64_t epoch, const RankingMetrics& valid) {
  validated_epoch = epoch;
  if (valid.ndcg10 <= best_valid) {
    ++validations_since_best;
    return false;
  }
  best_valid = valid.ndcg10;
  best_epoch = epoch;
  best_valid_json = valid.to_json();
  validations_since_best = 0;
  return true;
}

RankingMetrics metrics_from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);
  RankingMetrics m;
  m.users = j.at("users");
  m.hr1 = j.at("hr1");
  m.hr10 = j.at("hr10");
  m.hr50 = j.at("hr50");
  m.hr200 = j.at("hr200");
  m.ndcg10 = j.at("ndcg10");
  m.ndcg50 = j.at("ndcg50");
  m.ndcg200 = j.at("ndcg200");
  m.mrr = j.at("mrr");
  return m;
}


RunIdentity run_identity(const TrainOptions& options, std::string config_json,
                         std::function<std::string(const std::string&)> normalize_config, int64_t total_steps) {
  RunIdentity run;
  run.config_json = std::move(config_json);
  run.normalize_config = std::move(normalize_config);
  const OptimizerConfig& o = options.optimizer;
  run.optimizer = o.optimizer == "muon" ? fmt::format("muon (policy {})", o.param_policy) : o.optimizer;
  run.batch_size = options.batch_size;
  run.total_steps = total_steps;
  run.seed = options.seed;
  run.command = options.command;
  run.settings = options.settings;
  auto text = [](auto value) { return fmt::format("{}", value); };
  run.tunable = {{"lr", text(o.adamw.lr)},
                 {"beta1", text(o.adamw.beta1)},
                 {"beta2", text(o.adamw.beta2)},
                 {"adam-eps", text(o.adamw.eps)},
                 {"adam-wd", text(o.adamw.weight_decay)},
                 {"schedule", o.schedule.kind == LrSchedule::Kind::Cosine ? "cosine" : "constant"},
                 {"warmup-steps", text(o.schedule.warmup_steps)},
                 {"clip-grad-norm", text(options.max_grad_norm)},
                 // Which epochs validate, so which one is best, and when the run stops early.
                 {"eval-every", text(options.eval_every)},
                 {"patience", text(options.patience)}};
  // The floor is the cosine schedule's only (the command line refuses --min-lr with another).
  if (o.schedule.kind == LrSchedule::Kind::Cosine) run.tunable["min-lr"] = text(o.schedule.min_lr);
  if (o.optimizer == "muon") {
    const MuonOptions& m = o.muon;
    std::string table;
    for (const auto& abc : m.newton_schulz.coefficients)
      table += fmt::format("{}({}, {}, {})", table.empty() ? "" : " ", abc[0], abc[1], abc[2]);
    run.tunable.insert({{"muon-lr", text(m.lr)},
                        {"muon-momentum", text(m.momentum)},
                        {"muon-wd", text(m.weight_decay)},
                        {"muon-no-nesterov", m.nesterov ? "false" : "true"},
                        {"muon-adjust-lr", m.adjust_lr == MuonAdjustLr::Original ? "original" : "match_rms_adamw"},
                        {"ns-coefficients", table},
                        {"ns-precision", m.newton_schulz.precision == NsPrecision::BF16 ? "bf16" : "fp32"}});
  }
  run.fixed = options.fixed_settings;
  run.fixed["no-filter-seen"] = options.eval.filter_seen ? "false" : "true";
  run.fixed["filter-seen-last"] = std::to_string(options.eval.filter_seen_last);
  return run;
}

std::map<std::string, std::string> training_state_metadata(const TrainingPosition& position, const RunIdentity& run,
                                                           const data::SequenceDataset& dataset) {
  std::map<std::string, std::string> meta = position.to_metadata();
  meta["config"] = run.config_json;
  meta["optimizer"] = run.optimizer;
  meta["batch_size"] = std::to_string(run.batch_size);
  meta["total_steps"] = std::to_string(run.total_steps);
  meta["seed"] = std::to_string(run.seed);
  meta["data"] = dataset.source;
  meta["data_shape"] = data_shape(dataset);
  meta["data_histories"] = data_histories(dataset);
  add_item_numbering(meta, dataset);
  meta["tunable_settings"] = json_text(run.tunable);
  meta["fixed_settings"] = json_text(run.fixed);
  add_provenance(meta, run.command, run.settings);
  return meta;
}

std::string run_record_json(const RunIdentity& run, const TrainOptions& options, const data::SequenceDataset& dataset,
                            Device device) {
  nlohmann::json record = {{"kind", "run"},
                           {"muonrec", version()},
                           {"command", run.command},
                           {"settings", run.settings},
                           {"all_settings", options.all_settings},
                           {"model", nlohmann::json::parse(run.config_json)},
                           {"optimizer", run.optimizer},
                           {"batch_size", run.batch_size},
                           {"seed", run.seed},
                           {"epochs", options.epochs},
                           {"total_steps", run.total_steps},
                           {"data",
                            {{"source", dataset.source},
                             {"users", dataset.num_users()},
                             {"items", dataset.n_items},
                             {"events", dataset.num_events()}}},
                           {"device", device_name(device)},
                           {"resumed_from", options.resume_path},
                           // What a later --resume may name: compare joins its epochs to this run.
                           {"save_last", options.last_checkpoint_path},
                           {"checkpoint", options.checkpoint_path},
                           {"cwd", std::filesystem::current_path().string()}};
  return json_text(record);
}

namespace {
std::string item_numbering(const data::SequenceDataset& dataset) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a over the source ids' bytes
  for (int64_t id : dataset.item_source_ids)
    for (int shift = 0; shift < 64; shift += 8) hash = (hash ^ ((static_cast<uint64_t>(id) >> shift) & 0xff)) * 1099511628211ull;
  for (const std::string& token : dataset.item_tokens)  // string ids: the same ranks may be other items
    for (const char c : token + '\n') hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return fmt::format("{} items, fnv1a {:016x}", dataset.n_items, hash);
}
}  // namespace

void add_item_numbering(std::map<std::string, std::string>& metadata, const data::SequenceDataset& dataset) {
  metadata["item_numbering"] = item_numbering(dataset);
  metadata["data_preprocessing"] = dataset.report.preprocessing.describe();
}

void check_item_numbering(const SafetensorsFile& file, const data::SequenceDataset& dataset) {
  // --dedupe and --k-core change the histories and targets even where the numbering stays (a k-core
  // that drops only users), so the metrics would be of other data: refused first, naming the flags.
  auto preprocessing = file.metadata.find("data_preprocessing");
  const std::string here = dataset.report.preprocessing.describe();
  MUONREC_CHECK(preprocessing == file.metadata.end() || preprocessing->second == here,
                "{}: the model was trained on data preprocessed otherwise (its preprocessing: {}; here: {}): give "
                "the same --dedupe and --k-core",
                file.path, preprocessing->second, here);
  auto recorded = file.metadata.find("item_numbering");
  if (recorded == file.metadata.end()) return;
  MUONREC_CHECK(recorded->second == item_numbering(dataset),
                "{}: the model was trained on data that numbers its items otherwise ({}; {} here: {}): its scores "
                "would name the wrong items",
                file.path, recorded->second, dataset.source, item_numbering(dataset));
}

std::string parameters_epoch_note(const SafetensorsFile& file) {
  auto epoch = file.metadata.find("epoch"), best = file.metadata.find("best_epoch");
  if (epoch == file.metadata.end() || best == file.metadata.end() || epoch->second == best->second) return "";
  if (best->second == "0")
    return fmt::format("note: {} holds the parameters after epoch {}; its run has not validated yet\n", file.path,
                       epoch->second);
  return fmt::format("note: {} holds the parameters after epoch {}; its run's best validation was epoch {}, whose "
                     "parameters --checkpoint writes\n",
                     file.path, epoch->second, best->second);
}

std::string time_bias_note(const SafetensorsFile& file, const data::SequenceDataset& dataset) {
  if (dataset.has_timestamps()) return "";
  const bool learned = std::any_of(file.tensors.begin(), file.tensors.end(), [](const auto& entry) {
    const auto& [name, tensor] = entry;
    const std::string suffix = "time_bias";
    if (name.rfind("param.", 0) != 0 || name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 || tensor.dtype() != DType::F32)
      return false;
    const std::vector<float> values = tensor.to_f32_vector();
    return std::any_of(values.begin(), values.end(), [](float v) { return v != 0.0f; });
  });
  if (!learned) return "";
  return fmt::format("note: {} learned a time bias from timestamps that {} lacks: it scores without it, unlike the "
                     "trained model (give the data with its timestamps, e.g. the .inter file muonrec prepare "
                     "writes)\n",
                     file.path, dataset.source);
}

std::string seen_filter_note(const SafetensorsFile& file, const EvalOptions& eval) {
  const std::string differences =
      settings_differences(file, "fixed_settings",
                           {{"no-filter-seen", eval.filter_seen ? "false" : "true"},
                            {"filter-seen-last", std::to_string(eval.filter_seen_last)}});
  if (differences.empty()) return "";
  return fmt::format("note: this evaluation filters seen items otherwise than the run that wrote {} ({}), so its "
                     "metrics differ from that run's\n",
                     file.path, differences);
}

void check_state_data(const SafetensorsFile& file, const data::SequenceDataset& dataset) {
  // The path may differ (another working directory); the data may not.
  auto shape = file.metadata.find("data_shape");
  auto source = file.metadata.find("data");
  MUONREC_CHECK(shape == file.metadata.end() || shape->second == data_shape(dataset),
                "{}: the state was trained on {} ({}), this run reads {} ({})", file.path,
                source == file.metadata.end() ? "other data" : source->second, shape->second, dataset.source,
                data_shape(dataset));
  auto histories = file.metadata.find("data_histories");
  MUONREC_CHECK(histories == file.metadata.end() || histories->second == data_histories(dataset),
                "{}: the state was trained on {}, whose histories differ from those of {} (the same users, items and "
                "events, in other orders, at other times or of other users): resume on the data it trained on",
                file.path, source == file.metadata.end() ? "other data" : source->second, dataset.source);
  check_item_numbering(file, dataset);
}

TrainingState open_training_state(const TrainOptions& options, const RunIdentity& run,
                                  const data::SequenceDataset& dataset, std::ostream& log) {
  TrainingState state{load_safetensors(options.resume_path), {}};
  const SafetensorsFile& file = state.file;
  state.position = TrainingPosition::from_metadata(file);
  check_state_data(file, dataset);
  const std::string differences =
      config_differences(with_checkpoint_named(file, [&] { return run.normalize_config(required(file, "config")); }),
                         run.config_json);
  MUONREC_CHECK(differences.empty(), "{}: the state was written for another model ({}); resume with its flags",
                file.path, differences);
  auto recorded = [&](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  const std::string optimizer = recorded("optimizer");
  MUONREC_CHECK(optimizer.empty() || optimizer == run.optimizer,
                "{}: the state holds the optimizer state of {}, this run asks for {}; resume with its --optim and "
                "--param-policy",
                file.path, optimizer, run.optimizer);
  MUONREC_CHECK(options.stop_after_epoch == 0 || options.stop_after_epoch > state.position.epoch,
                "{}: --stop-after-epoch {} is not after the state's epoch {}", file.path, options.stop_after_epoch,
                state.position.epoch);
  // epoch == epochs is a finished run: resuming it only repeats what follows the last epoch (TIGER's test).
  MUONREC_CHECK(state.position.epoch <= options.epochs, "{}: the state is at epoch {}, past --epochs {}", file.path,
                state.position.epoch, options.epochs);
  // ... unless its run stopped there early, without validating it: this run would end unvalidated.
  const int64_t validated = state.position.validated_epoch;
  MUONREC_CHECK(state.position.epoch < options.epochs || validated < 0 || validated == state.position.epoch,
                "{}: its run stopped after epoch {} without validating it (it was to run more epochs), so --epochs {} "
                "would end this run unvalidated: give --epochs above {}",
                file.path, state.position.epoch, options.epochs, state.position.epoch);
  const std::string fixed_changes = settings_differences(file, "fixed_settings", run.fixed);
  MUONREC_CHECK(fixed_changes.empty(), "{}: the state's run was made with other settings, which a resumed run keeps: "
                "{}; resume with its flags", file.path, fixed_changes);
  std::string changes;
  auto note = [&](const char* what, const std::string& then, const std::string& now) {
    if (!then.empty() && then != now)
      changes += fmt::format("{}{} {} (the state's run: {})", changes.empty() ? "" : ", ", what, now, then);
  };
  note("batch", recorded("batch_size"), std::to_string(run.batch_size));
  note("seed", recorded("seed"), std::to_string(run.seed));
  // Only the cosine schedule's rates depend on the run's length (a constant one, warm-up included,
  // repeats the uninterrupted run whatever --epochs says).
  if (options.optimizer.schedule.kind == LrSchedule::Kind::Cosine)
    note("schedule steps", recorded("total_steps"), std::to_string(run.total_steps));
  const std::string tunable_changes =
      settings_differences(file, "tunable_settings", run.tunable);
  if (!tunable_changes.empty()) changes += (changes.empty() ? "" : ", ") + tunable_changes;
  if (!changes.empty())
    log << fmt::format("resuming with {}: the run will not repeat the uninterrupted one\n", changes);
  return state;
}

void restore_training_state(const TrainingState& state, ParameterList& params, OptimizerSet& optimizer,
                            PhiloxGenerator& dropout_rng, std::ostream& log) {
  params.load_from(state.file, "param.");
  optimizer.load_state(state.file);
  dropout_rng.set_offset(state.position.dropout_offset);
  log << fmt::format("resumed from {} after epoch {} (step {})\n", state.file.path, state.position.epoch,
                     optimizer.steps());
}

bool patience_exhausted(const TrainOptions& options, const TrainingPosition& position) {
  return options.patience > 0 && position.validations_since_best >= options.patience;
}

int64_t last_epoch(const TrainOptions& options) {
  return options.stop_after_epoch > 0 ? std::min(options.stop_after_epoch, options.epochs) : options.epochs;
}

bool trains_epoch(const TrainOptions& options, const TrainingPosition& position, int64_t epoch) {
  return epoch <= last_epoch(options) && !patience_exhausted(options, position);
}

int64_t steps_left(const TrainOptions& options, int64_t epoch, int64_t step_in_epoch, int64_t steps_per_epoch) {
  return (last_epoch(options) - epoch) * steps_per_epoch + (steps_per_epoch - step_in_epoch);
}

RunEnd end_of_run(const TrainOptions& options, const TrainingPosition& position, TrainResult& result,
                  std::ostream& log) {
  if (position.epoch >= options.epochs) return RunEnd::Finished;
  if (patience_exhausted(options, position)) {
    result.patience_stop_epoch = position.epoch;
    log << fmt::format("early stop after epoch {}: validation NDCG@10 has not improved for {} validations (best "
                       "{:.4f} at epoch {})\n",
                       position.epoch, position.validations_since_best, position.best_valid, position.best_epoch);
    return RunEnd::Patience;
  }
  log << fmt::format("stopped after epoch {} of {}: continue with --resume {}\n", position.epoch, options.epochs,
                     options.last_checkpoint_path);
  return RunEnd::Paused;
}

void add_provenance(std::map<std::string, std::string>& metadata, const std::string& command,
                    const std::string& settings) {
  metadata["muonrec_version"] = version();
  if (!command.empty()) metadata["command"] = command;
  if (!settings.empty()) metadata["settings"] = settings;
}

}  // namespace muonrec

#include "muonrec/models/checkpoint_info.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <cstdlib>

#include "muonrec/engine/error.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/training_position.h"

namespace muonrec {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// "blocks=2 d=64 dropout=0.2 ...": the config's fields but its kind, floats printed as the floats
// they are (the JSON holds them widened to double: 0.2 reads 0.20000000298023224).
std::string config_fields(const nlohmann::json& config) {
  std::string out;
  for (const auto& [key, value] : config.items()) {
    if (key == "kind") continue;
    const std::string text = value.is_number_float() ? fmt::format("{}", static_cast<float>(value.get<double>()))
                             : value.is_string()     ? value.get<std::string>()
                                                     : value.dump();
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", key, text);
  }
  return out;
}

}  // namespace

std::string describe_checkpoint(const SafetensorsFile& file) {
  const auto& meta = file.metadata;
  auto value = [&](const char* key) {
    auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  MUONREC_CHECK(meta.count("config"), "{}: not a muonrec checkpoint (no 'config' metadata)", file.path);
  const nlohmann::json config = nlohmann::json::parse(value("config"), nullptr, /*allow_exceptions=*/false);
  MUONREC_CHECK(config.is_object(), "{}: its 'config' metadata is not a JSON object", file.path);
  MUONREC_CHECK(config.contains("kind") && config["kind"].is_string(), "{}: its config names no model kind",
                file.path);
  int64_t parameters = 0, parameter_tensors = 0, optimizer_tensors = 0, tokenizer_tensors = 0, other_tensors = 0;
  std::string other_example;  // tensors no muonrec file holds (a fixture's inputs, another tool's)
  for (const auto& [name, tensor] : file.tensors) {
    if (starts_with(name, "param.")) {
      parameters += tensor.numel();
      ++parameter_tensors;
    } else if (starts_with(name, "semantic_id.")) {
      ++tokenizer_tensors;
    } else if (starts_with(name, "adamw.") || starts_with(name, "muon.") || starts_with(name, "optimizer_set.")) {
      ++optimizer_tensors;
    } else if (!starts_with(name, "best.")) {
      if (other_tensors++ == 0) other_example = name;
    }
  }
  std::string out =
      fmt::format("checkpoint: {} ({})\n", file.path, value("format").empty() ? "no format tag" : value("format"));
  out += fmt::format("model: {} {}\n", config["kind"].get<std::string>(), config_fields(config));
  out += fmt::format("parameters: {} in {} tensors{}{}{}\n", parameters, parameter_tensors,
                     optimizer_tensors ? fmt::format("; optimizer state: {} tensors", optimizer_tensors) : "",
                     tokenizer_tensors ? fmt::format("; semantic-ID tokenizer ({}): {} tensors",
                                                     value("semantic_id.tokenizer"), tokenizer_tensors)
                                       : "",
                     other_tensors ? fmt::format("; {} other tensors (as '{}')", other_tensors, other_example) : "");
  if (!value("data").empty()) {
    const std::string preprocessing = value("data_preprocessing");
    const std::string shape = value("data_shape").empty() ? "" : " (" + value("data_shape") + ")";
    out += fmt::format("data: {}{}{}\n", value("data"), shape,
                       preprocessing.empty() || preprocessing == "none" ? "" : ", preprocessed: " + preprocessing);
  }
  if (!value("optimizer").empty()) {
    // A state written by hand or by another tool may lack a field: said, not printed as a blank.
    auto field = [&](const char* key, const std::string& present, const char* absent) {
      return value(key).empty() ? std::string(absent) : fmt::format(present, value(key));
    };
    // Best epoch 0: a state saved before the run's first validation.
    const std::string best = value("best_epoch") == "0"
                                 ? "no validation yet"
                                 : field("best_epoch", "best validation epoch {}", "best epoch not recorded");
    out += fmt::format("training: {}, {}; optimizer {}, {}, {}, {}\n",
                       field("epoch", "after epoch {}", "epoch not recorded"), best, value("optimizer"),
                       field("batch_size", "batch {}", "batch size not recorded"),
                       field("seed", "seed {}", "seed not recorded"),
                       field("total_steps", "{} steps in the schedule", "schedule length not recorded"));
  } else if (!value("epoch").empty())
    out += fmt::format("training: the parameters of epoch {} (best validation)\n", value("epoch"));
  auto metrics_line = [&](const char* key, const char* label) {
    const std::string text = value(key);
    if (text.empty()) return;
    RankingMetrics metrics;
    try {
      metrics = metrics_from_json(text);
    } catch (const nlohmann::json::exception&) {
      MUONREC_FAIL("{}: its '{}' metadata is not a metrics JSON object", file.path, key);
    }
    if (metrics.users > 0) out += fmt::format("{} {}\n", label, metrics.summary());
  };
  metrics_line("best_valid", "best validation:");
  metrics_line("test_metrics", "test at that epoch:");
  // The metrics above depend on it: `eval` with other filtering gives other numbers.
  const nlohmann::json fixed = nlohmann::json::parse(value("fixed_settings"), nullptr, /*allow_exceptions=*/false);
  auto setting = [&](const char* key) {
    const auto it = fixed.is_object() ? fixed.find(key) : fixed.end();
    return it != fixed.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!setting("no-filter-seen").empty()) {
    const std::string last = setting("filter-seen-last");
    out += fmt::format("evaluated with seen items filtered: {}\n",
                       seen_filter_description(setting("no-filter-seen") != "true",
                                               last.empty() ? 0 : std::strtoll(last.c_str(), nullptr, 10)));
  }
  if (!value("beam_width").empty()) out += fmt::format("beam width: {}\n", value("beam_width"));
  if (!value("muonrec_version").empty()) out += fmt::format("written by: muonrec {}\n", value("muonrec_version"));
  if (!value("command").empty()) out += fmt::format("command: {}\n", value("command"));
  return out;
}

}  // namespace muonrec

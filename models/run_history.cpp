#include "muonrec/models/run_history.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Where a record came from, for error messages.
struct RecordPlace {
  const std::string& path;
  int64_t line;
};

const json& field(const json& record, const char* name, RecordPlace at) {
  auto it = record.find(name);
  MUONREC_CHECK(it != record.end(), "{}, line {}: a '{}' record without '{}'", at.path, at.line,
                record.value("kind", std::string("?")), name);
  return *it;
}

double number(const json& record, const char* name, RecordPlace at) {
  const json& value = field(record, name, at);
  MUONREC_CHECK(value.is_number(), "{}, line {}: '{}' is not a number", at.path, at.line, name);
  return value.get<double>();
}

// A count or a duration: a whole number where `whole`, and at least `least`.
double bounded(const json& record, const char* name, RecordPlace at, double least, bool whole) {
  const double value = number(record, name, at);
  MUONREC_CHECK(value >= least && (!whole || value == std::floor(value)), "{}, line {}: '{}' is {}, not {} >= {}",
                at.path, at.line, name, value, whole ? "a whole number" : "a number", least);
  return value;
}

std::string text(const json& record, const char* name, RecordPlace at) {
  const json& value = field(record, name, at);
  MUONREC_CHECK(value.is_string(), "{}, line {}: '{}' is not a string", at.path, at.line, name);
  return value.get<std::string>();
}

std::map<std::string, double> metric_values(const json& metrics, const char* which, RecordPlace at) {
  MUONREC_CHECK(metrics.is_object(), "{}, line {}: metrics are not a JSON object", at.path, at.line);
  std::map<std::string, double> values;
  for (const auto& [name, value] : metrics.items()) {
    // Dropped without a word, a metric would later be "missing from every record".
    MUONREC_CHECK(value.is_number(), "{}, line {}: '{}.{}' is not a number", at.path, at.line, which, name);
    if (name != "users") values[name] = value.get<double>();
  }
  return values;
}

// A run under construction: its epochs' durations, so that a resumed invocation that redoes an
// epoch (the state was saved before that epoch's record was lost, or after it was written twice)
// replaces what the first invocation recorded from there on.
struct RunBuilder {
  RunHistory run;
  std::map<int64_t, double> epoch_seconds;
  std::set<std::string> states_written;  // its --save-last and --checkpoint files, made absolute

  void add_epoch(const json& record, RecordPlace at) {
    const auto epoch = static_cast<int64_t>(bounded(record, "epoch", at, 1, /*whole=*/true));
    epoch_seconds.erase(epoch_seconds.lower_bound(epoch), epoch_seconds.end());
    while (!run.validations.empty() && run.validations.back().epoch >= epoch) run.validations.pop_back();
    epoch_seconds[epoch] = bounded(record, "seconds", at, 0, /*whole=*/false);
    if (!record.contains("valid")) return;
    ValidationPoint point;
    point.epoch = epoch;
    point.steps = static_cast<int64_t>(bounded(record, "steps", at, 0, /*whole=*/true));
    for (const auto& [e, seconds] : epoch_seconds) point.train_seconds += seconds;
    point.valid = metric_values(record["valid"], "valid", at);
    if (record.contains("test")) point.test = metric_values(record["test"], "test", at);
    run.validations.push_back(std::move(point));
  }
};

// A run record's path field made absolute against the directory the run worked in ("" stays "").
std::string absolute_path(const json& record, const char* name) {
  const std::string given = record.value(name, std::string());
  if (given.empty()) return given;
  const fs::path path(given);
  return (path.is_absolute() ? path : fs::path(record.value("cwd", std::string())) / path).lexically_normal().string();
}

// Adds what a run record says of where the run ran (RunHistory::environment).
void add_environment(const json& record, std::map<std::string, std::string>& environment) {
  std::map<std::string, std::string> recorded;
  if (const auto data = record.find("data"); data != record.end() && data->is_object())
    for (const char* name : {"users", "items", "events"})
      if (const auto count = data->find(name); count != data->end() && count->is_number_integer())
        recorded[name] = count->dump();
  for (const char* name : {"device", "muonrec"})
    if (const auto value = record.find(name); value != record.end() && value->is_string())
      recorded[name] = value->get<std::string>();
  for (const auto& [name, value] : recorded) {
    std::string& kept = environment[name];
    const std::string listed = "," + kept + ",";
    if (kept.empty())
      kept = value;
    else if (listed.find("," + value + ",") == std::string::npos)
      kept += "," + value;
  }
}

// The run a resumed invocation continues: the latest one that wrote the state it resumed from. Files
// written before run records named their outputs join it to the run before it; a state no run of
// this file wrote starts a run of its own (-1).
int64_t resumed_run(const std::vector<RunBuilder>& runs, const json& record) {
  const std::string state = absolute_path(record, "resumed_from");
  if (state.empty()) return -1;
  for (auto run = runs.rbegin(); run != runs.rend(); ++run)
    if (run->states_written.count(state)) return static_cast<int64_t>(runs.rend() - run) - 1;
  return record.contains("save_last") ? -1 : static_cast<int64_t>(runs.size()) - 1;
}

}  // namespace

std::vector<RunHistory> read_run_histories(const std::string& path, std::ostream* notes) {
  std::ifstream in(path);
  MUONREC_CHECK(in.good(), "cannot open metrics file {}", path);
  std::vector<RunBuilder> runs;
  size_t current_run = 0;  // the run that the epoch and result records join
  const auto current = [&]() -> RunBuilder& {
    if (runs.empty()) {  // records from before run records existed
      runs.emplace_back();
      runs.back().run.model = "?";
      runs.back().run.optimizer = "?";
    }
    return runs[current_run];
  };
  int64_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const RecordPlace at{path, line_number};
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() && notes != nullptr) {
      *notes << fmt::format("{}, line {}: not a JSON object (a record cut short?), skipped\n", path, line_number);
      continue;
    }
    MUONREC_CHECK(record.is_object(), "{}, line {}: not a JSON object (a metrics file has one record per line)", path,
                  line_number);
    const std::string kind = text(record, "kind", at);
    if (kind == "run") {
      const int64_t continued = resumed_run(runs, record);
      if (continued < 0) runs.emplace_back();
      current_run = continued < 0 ? runs.size() - 1 : static_cast<size_t>(continued);
      for (const char* output : {"save_last", "checkpoint"})
        if (const std::string state = absolute_path(record, output); !state.empty())
          runs[current_run].states_written.insert(state);
      RunHistory& run = runs[current_run].run;
      const json& model = field(record, "model", at);
      run.model = model.is_object() ? model.value("kind", std::string("?")) : "?";
      run.optimizer = text(record, "optimizer", at);
      run.settings = record.value("settings", std::string());
      run.all_settings = record.value("all_settings", std::string());
      add_environment(record, run.environment);
      run.finished = false;
    } else if (kind == "epoch") {
      current().add_epoch(record, at);
    } else if (kind == "result") {
      RunHistory& run = current().run;
      run.final_test = metric_values(field(record, "test", at), "test", at);
      run.final_test_epoch = static_cast<int64_t>(number(record, "best_epoch", at));
      run.finished = true;
    }
    // Other kinds are not part of a run's curve; newer writers may add some.
  }
  MUONREC_CHECK(!runs.empty(), "{}: no training records (is it a --metrics file?)", path);
  std::vector<RunHistory> histories;
  for (size_t i = 0; i < runs.size(); ++i) {
    RunHistory run = std::move(runs[i].run);
    for (const auto& [epoch, seconds] : runs[i].epoch_seconds) run.train_seconds += seconds;
    run.name = runs.size() == 1 ? path : fmt::format("{}#{}", path, i + 1);
    histories.push_back(std::move(run));
  }
  return histories;
}

}  // namespace muonrec

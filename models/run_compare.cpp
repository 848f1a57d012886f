#include "muonrec/models/run_compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// "train.muon-lr=0.02" -> "muon-lr=0.02", "train.optim=\"muon\"" -> "optim=muon".
std::string short_setting(std::string line) {
  if (line.rfind("train.", 0) == 0) line.erase(0, 6);
  const size_t eq = line.find('=');
  if (eq != std::string::npos && line.size() >= eq + 3 && line[eq + 1] == '"' && line.back() == '"')
    line = line.substr(0, eq + 1) + line.substr(eq + 2, line.size() - eq - 3);
  return line;
}

// "train.lr=1e-3" and "train.lr=0.001" are one setting: a number is written the one way fmt
// writes a double. Whole numbers keep their digits (a double would make two 64-bit seeds one).
std::string canonical_setting(const std::string& line) {
  const size_t eq = line.find('=');
  if (eq == std::string::npos) return line;
  const std::string value = line.substr(eq + 1);
  const bool whole = !value.empty() && value.find_first_not_of("-0123456789") == std::string::npos;
  if (whole) return line;
  double number = 0;
  const char* end = value.data() + value.size();
  auto [stop, ec] = std::from_chars(value.data(), end, number);
  if (ec != std::errc() || stop != end || value.empty()) return line;
  return fmt::format("{}={}", line.substr(0, eq), number);
}

// The settings of each run that are not shared by all of them, space-separated. Runs whose
// records hold every flag's value (defaults too) are compared on those, so that a flag given with
// its default value is no difference; older records hold only the flags given. Where every run
// records it, where a run ran counts as a setting too ("users=6040", "device=cuda"): one data path
// may have held other data, and --device auto finds a GPU or not.
std::vector<std::string> setting_differences(const std::vector<RunHistory>& runs) {
  const bool all_recorded =
      std::all_of(runs.begin(), runs.end(), [](const RunHistory& run) { return !run.all_settings.empty(); });
  std::vector<std::set<std::string>> settings;
  for (const RunHistory& run : runs) {
    std::set<std::string>& own = settings.emplace_back();
    for (const std::string& line : lines_of(all_recorded ? run.all_settings : run.settings))
      own.insert(canonical_setting(line));
    for (const auto& [name, value] : run.environment)
      if (std::all_of(runs.begin(), runs.end(), [&](const RunHistory& other) { return other.environment.count(name); }))
        own.insert(name + "=" + value);
  }
  std::vector<std::string> differences;
  for (const std::set<std::string>& own : settings) {
    std::string words;
    for (const std::string& line : own) {
      const bool shared = std::all_of(settings.begin(), settings.end(),
                                      [&](const std::set<std::string>& other) { return other.count(line) > 0; });
      if (!shared) words += (words.empty() ? "" : " ") + short_setting(line);
    }
    differences.push_back(words);
  }
  return differences;
}

// "ndcg10" -> "NDCG@10", "hr1" -> "HR@1", "mrr" -> "MRR".
std::string display_name(const std::string& metric) {
  std::string name;
  size_t i = 0;
  for (; i < metric.size() && !std::isdigit(static_cast<unsigned char>(metric[i])); ++i)
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(metric[i])));
  return i < metric.size() ? name + "@" + metric.substr(i) : name;
}

// A validation value and the target as the records hold them (6 decimals), not rounded to 4: a target
// copied from the table must be reached by the run that shows it as its best.
std::string metric_text(double value) { return fmt::format("{:.6f}", value); }

std::string steps_change(const RunSummary& run, const RunSummary& first) {
  if (run.reached == nullptr || first.reached == nullptr || first.reached->steps == 0) return "";
  if (&run == &first) return "";
  return fmt::format("{:+.1f}%", 100.0 * (double(run.reached->steps) / double(first.reached->steps) - 1.0));
}

// "| a | b |" lines, a separator under the header row. A '|' in a cell (a regex policy, a setting)
// is escaped, or it would split the cell.
std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (const std::string& cell : rows[r]) {
      out += "| ";
      for (char c : cell) out += c == '|' ? std::string("\\|") : std::string(1, c);
      out += " ";
    }
    out += "|\n";
    if (r == 0) {
      for (size_t c = 0; c < rows[0].size(); ++c) out += "|---";
      out += "|\n";
    }
  }
  return out;
}

// Columns padded to their widest cell, two spaces apart.
std::string aligned(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (widths.size() <= c) widths.push_back(0);
      widths[c] = std::max(widths[c], row[c].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) line += fmt::format("{:<{}}", row[c], c + 1 < row.size() ? widths[c] + 2 : 0);
    out += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
  }
  return out;
}

}  // namespace

RunComparison compare_runs(const std::vector<RunHistory>& runs, const CompareOptions& options) {
  MUONREC_CHECK(!runs.empty(), "compare: no runs");
  RunComparison comparison;
  comparison.metric = options.metric;
  const std::vector<std::string> differences = setting_differences(runs);
  bool metric_seen = false;
  std::optional<double> lowest_best;
  for (size_t i = 0; i < runs.size(); ++i) {
    RunSummary summary;
    summary.run = &runs[i];
    summary.differences = differences[i];
    for (const ValidationPoint& point : runs[i].validations) {
      auto value = point.valid.find(options.metric);
      if (value == point.valid.end()) continue;
      metric_seen = true;
      if (summary.best == nullptr || value->second > summary.best->valid.at(options.metric)) summary.best = &point;
    }
    // The run chose its best epoch by the unrounded NDCG@10: where the records' 6 decimals tie, its
    // choice stands (and the test metrics of that epoch with it).
    if (summary.best != nullptr && options.metric == "ndcg10" && runs[i].final_test_epoch > 0)
      for (const ValidationPoint& point : runs[i].validations) {
        const auto value = point.valid.find("ndcg10");
        if (point.epoch == runs[i].final_test_epoch && value != point.valid.end() &&
            value->second == summary.best->valid.at("ndcg10"))
          summary.best = &point;
      }
    if (summary.best != nullptr) {
      const double best = summary.best->valid.at(options.metric);
      lowest_best = lowest_best ? std::min(*lowest_best, best) : best;
    }
    comparison.runs.push_back(summary);
  }
  if (!metric_seen) {
    std::set<std::string> names;
    for (const RunHistory& run : runs)
      for (const ValidationPoint& point : run.validations)
        for (const auto& [name, value] : point.valid) names.insert(name);
    std::string known;
    for (const std::string& name : names) known += " " + name;
    MUONREC_FAIL("compare: no validation records with the metric '{}'{}", options.metric,
                 known.empty() ? " (the runs have no validation records)" : " (they have:" + known + ")");
  }
  comparison.target = options.target > 0 ? options.target : *lowest_best;
  for (RunSummary& summary : comparison.runs)
    for (const ValidationPoint& point : summary.run->validations) {
      auto value = point.valid.find(options.metric);
      if (value != point.valid.end() && value->second >= comparison.target) {
        summary.reached = &point;
        break;
      }
    }
  return comparison;
}

std::string format_comparison(const RunComparison& comparison, bool markdown) {
  const std::string metric = display_name(comparison.metric);
  std::vector<std::vector<std::string>> rows = {{"run", "model", "optimizer", "best valid " + metric, "epoch", "step",
                                                 "test " + metric, "train s",
                                                 fmt::format("steps to {}", metric_text(comparison.target)),
                                                 "vs first",
                                                 "settings that differ"}};
  for (const RunSummary& summary : comparison.runs) {
    const RunHistory& run = *summary.run;
    std::vector<std::string> row = {run.finished ? run.name : run.name + " (unfinished)", run.model, run.optimizer};
    if (summary.best != nullptr) {
      const ValidationPoint& best = *summary.best;
      // The epoch record's test metrics, or the result record's where they are this epoch's (the
      // run's best by NDCG@10, which another metric's best epoch need not be).
      static const std::map<std::string, double> none;
      const auto& test = !best.test.empty()                  ? best.test
                         : run.final_test_epoch == best.epoch ? run.final_test
                                                              : none;
      auto test_value = test.find(comparison.metric);
      row.insert(row.end(), {metric_text(best.valid.at(comparison.metric)), std::to_string(best.epoch),
                             std::to_string(best.steps),
                             test_value == test.end() ? "-" : fmt::format("{:.4f}", test_value->second),
                             fmt::format("{:.1f}", run.train_seconds)});
    } else {
      row.insert(row.end(), {"-", "-", "-", "-", "-"});
    }
    row.push_back(summary.reached != nullptr ? fmt::format("{} (epoch {}, {:.1f} s)", summary.reached->steps,
                                                           summary.reached->epoch, summary.reached->train_seconds)
                                             : "not reached");
    row.push_back(steps_change(summary, comparison.runs.front()));
    row.push_back(summary.differences.empty() ? "-" : summary.differences);
    rows.push_back(row);
  }
  return markdown ? markdown_table(rows) : aligned(rows);
}

}  // namespace muonrec

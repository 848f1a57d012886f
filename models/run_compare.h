// Runs side by side, as an optimizer study reads them: each run's best validation, its test metrics
// at that epoch, and how many optimizer steps it took to reach a common validation target (the
// MuonRec paper's "converged training steps").
#pragma once

#include <string>
#include <vector>

#include "muonrec/models/run_history.h"

namespace muonrec {

struct CompareOptions {
  std::string metric = "ndcg10";  // a validation metric of the epoch records
  // Validation value every run is timed to. 0: the lowest best value among the runs (so every run
  // reaches it, and the slowest to converge is the one that needed its whole curve).
  double target = 0;
};

struct RunSummary {
  const RunHistory* run = nullptr;
  const ValidationPoint* best = nullptr;     // first validation with the highest metric; null without any
  const ValidationPoint* reached = nullptr;  // first validation at or above the target; null if never
  std::string differences;                   // its settings that not every compared run shares
};

struct RunComparison {
  std::string metric;
  double target = 0;
  std::vector<RunSummary> runs;
};

// Throws when the metric is not among the runs' validation metrics.
RunComparison compare_runs(const std::vector<RunHistory>& runs, const CompareOptions& options);

// A table a row per run, in aligned columns or as a Markdown table; "vs first" is each run's steps to
// the target relative to the first run's ("-32.4%": fewer steps).
std::string format_comparison(const RunComparison& comparison, bool markdown = false);

}  // namespace muonrec

// Two evaluations compared user by user. A metric's mean over 22,000 users moves by a few percent
// from seed to seed; whether one model (or optimizer) really ranks better than another on the same
// users is a paired question: the per-user differences, a bootstrap interval of their mean and a
// sign-flip permutation test. The per-user ranks travel as TSV files ('user<TAB>position', position
// 1 = the target ranked first), written by `muonrec eval --ranks` and read by `muonrec compare --ranks`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/evaluate.h"

namespace muonrec {

struct UserRanks {
  std::string source;              // the file read, for messages
  std::vector<std::string> users;  // as the data names them
  std::vector<int64_t> ranks;      // candidates above the target (position - 1), parallel to users
  // Pooled runs: each unit's user without its run, parallel to users, so that the order of the runs
  // does not change the draws. Empty: the users themselves.
  std::vector<std::string> order_keys;
  // What was ranked (ranks_context, without the beam); empty in files written before it was recorded.
  std::string context;
  // A beam search's width (TIGER): positions past it are not ranks but where the search put every
  // target it missed, so metrics that look past it are refused. 0: every candidate was ranked.
  int64_t beam = 0;
};

// What an evaluation ranked, which two compared ranks files must share: the split, the data's shape
// and preprocessing, and the seen-item filtering ("split test; 6040 users, 3416 items, 999611
// events, preprocessing none; seen items filtered: all"); then a beam search's width ("; beam 20"),
// which UserRanks keeps apart.
std::string ranks_context(const data::SequenceDataset& dataset, data::EvalSplit split, const EvalOptions& eval,
                          int64_t beam = 0);
// Writes a '# muonrec ranks: CONTEXT' line and the header line, then one line per evaluated user in
// evaluation order, to `path` (throws naming it when it cannot be written).
void write_user_ranks(const std::string& path, const data::SequenceDataset& dataset, const RankingMetrics& metrics,
                      const std::string& context);
// Throws naming the file and line of a malformed line, a position below 1 or a user given twice.
UserRanks read_user_ranks(const std::string& path);
// Whether a file's first line is that of a ranks file (for commands that read other files).
bool is_user_ranks_first_line(const std::string& line);

struct PairedComparison {
  std::string metric;
  int64_t users = 0;          // the units compared: users, or pooled runs' (run, user) pairs
  std::string unit = "users";  // what they are, for the lines: "users" or "units"
  double mean_a = 0, mean_b = 0;
  double ci_low = 0, ci_high = 0;  // 95% paired bootstrap interval of mean_b - mean_a
  double p_value = 1;              // two-sided sign-flip permutation test of "no difference"
  int64_t b_higher = 0, a_higher = 0, ties = 0;  // units whose metric is higher under b, under a, equal
  int64_t resamples = 0;
  // A few lines: both means, the difference with its interval and p-value, the users either way.
  std::string format(const std::string& name_a, const std::string& name_b) const;
};

// Several runs' ranks as one: run k's users become "k:user" (k from 1), so pairs of runs (a seed
// each, say) compare as (run, user) units; order_keys keep the users' own names, by which the
// comparison resamples and sign-flips each user's units together. The source names every file; runs
// of different contexts are refused.
UserRanks pool_user_ranks(const std::vector<UserRanks>& runs);

// a and b must hold the same users (in any order) and, where both files record it, the same context;
// throws naming a user only one of them has, or both contexts, or a metric that looks past a beam.
// `resamples` draws (1..kMaxResamples) each for the interval and the test, from `seed`.
constexpr int64_t kMaxResamples = 10000000;
PairedComparison compare_user_ranks(const UserRanks& a, const UserRanks& b, const std::string& metric,
                                    int64_t resamples = 10000, uint64_t seed = 0);

}  // namespace muonrec

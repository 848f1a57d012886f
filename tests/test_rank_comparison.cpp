// Per-user ranks and their paired comparison: the per-user metric values, the files' round trip and
// bad input, and the statistics against cases whose answer is known in closed form.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/rank_comparison.h"
#include "test_util.h"

namespace muonrec {
namespace {

using testkit::expect_error;
using testkit::TempDir;

UserRanks ranks_of(const std::vector<int64_t>& ranks, const std::string& source = "a") {
  UserRanks r;
  r.source = source;
  for (size_t i = 0; i < ranks.size(); ++i) r.users.push_back("u" + std::to_string(i));
  r.ranks = ranks;
  return r;
}

TEST(RankComparison, PerUserMetricsAreTheOnesTheMeansAverage) {
  EXPECT_DOUBLE_EQ(user_metric("ndcg10", 0), 1.0);
  EXPECT_DOUBLE_EQ(user_metric("ndcg10", 1), 1.0 / std::log2(3.0));
  EXPECT_DOUBLE_EQ(user_metric("ndcg10", 9), 1.0 / std::log2(11.0));
  EXPECT_DOUBLE_EQ(user_metric("ndcg10", 10), 0.0);
  EXPECT_DOUBLE_EQ(user_metric("ndcg50", 10), 1.0 / std::log2(12.0));
  EXPECT_DOUBLE_EQ(user_metric("hr10", 9), 1.0);
  EXPECT_DOUBLE_EQ(user_metric("hr10", 10), 0.0);
  EXPECT_DOUBLE_EQ(user_metric("hr1", 0), 1.0);
  EXPECT_DOUBLE_EQ(user_metric("mrr", 3), 0.25);
  expect_error([] { user_metric("ndcg1", 0); }, {"unknown metric 'ndcg1'", "ndcg10, hr10, mrr"});
  // The accumulator's means are the means of these values, and it keeps every user's rank.
  RankingAccumulator acc;
  for (const auto& [row, rank] : std::vector<std::pair<int64_t, int64_t>>{{4, 0}, {2, 3}, {7, 12}})
    acc.add_rank(row, rank);
  const RankingMetrics m = acc.result();
  EXPECT_DOUBLE_EQ(m.ndcg10, (1.0 + 1.0 / std::log2(5.0)) / 3.0);
  EXPECT_DOUBLE_EQ(m.mrr, (1.0 + 0.25 + 1.0 / 13.0) / 3.0);
  ASSERT_EQ(m.ranks.size(), 3u);
  EXPECT_EQ(m.ranks[2].row, 7);
  EXPECT_EQ(m.ranks[2].rank, 12);
}

TEST(RankComparison, MeansAndCountsPairUsersByName) {
  UserRanks a = ranks_of({0, 1, 9, 10});
  UserRanks b;  // listed in another order: pairing is by name, not by line
  b.source = "b";
  b.users = {"u3", "u1", "u2", "u0"};
  b.ranks = {10, 0, 0, 0};
  const PairedComparison c = compare_user_ranks(a, b, "ndcg10", 200);
  EXPECT_EQ(c.users, 4);
  EXPECT_DOUBLE_EQ(c.mean_a, (1.0 + 1.0 / std::log2(3.0) + 1.0 / std::log2(11.0)) / 4.0);
  EXPECT_DOUBLE_EQ(c.mean_b, (1.0 + 1.0 + 1.0 + 0.0) / 4.0);
  EXPECT_EQ(c.b_higher, 2);  // u1, u2
  EXPECT_EQ(c.a_higher, 0);
  EXPECT_EQ(c.ties, 2);      // u0 (1 under both), u3 (0 under both)
  EXPECT_NE(c.format("A", "B").find("users higher under b: 2, under a: 0, equal: 2"), std::string::npos)
      << c.format("A", "B");

  expect_error([&] { compare_user_ranks(a, ranks_of({0, 1, 2}, "short"), "ndcg10"); },
               {"user u3 is in a but not in short (1 of its 4 users are not", "the same users"});
  expect_error([&] { compare_user_ranks(ranks_of({0, 1, 2}, "short"), a, "ndcg10"); },
               {"user u3 is in a but not in short"});
  expect_error([&] { compare_user_ranks(a, b, "auc"); }, {"unknown metric 'auc'"});
  expect_error([&] { compare_user_ranks(a, b, "ndcg10", 0); }, {"resamples must be in [1, 10000000], got 0"});
  expect_error([&] { compare_user_ranks(a, b, "ndcg10", kMaxResamples + 1); }, {"resamples must be in [1, "});
}

TEST(RankComparison, IdenticalRanksShowNoDifference) {
  const UserRanks a = ranks_of({0, 5, 20, 3, 3, 1, 70});
  const PairedComparison c = compare_user_ranks(a, a, "ndcg10", 500);
  EXPECT_EQ(c.mean_b - c.mean_a, 0.0);
  EXPECT_EQ(c.ci_low, 0.0);
  EXPECT_EQ(c.ci_high, 0.0);
  EXPECT_DOUBLE_EQ(c.p_value, 1.0);
  EXPECT_EQ(c.ties, 7);
}

// 30 users gain a hit, 20 lose one (HR@10 differences +1 and -1): the sign-flip test is the exact
// two-sided sign test, P(|2K - 50| >= 10) for K ~ Binomial(50, 1/2) = 0.2026; the bootstrap interval
// of the mean difference 0.2 is close to 0.2 +- 1.96 * 0.98 / sqrt(50).
TEST(RankComparison, StatisticsMatchClosedForms) {
  std::vector<int64_t> a_ranks, b_ranks;
  for (int i = 0; i < 50; ++i) {
    a_ranks.push_back(i < 30 ? 50 : 0);
    b_ranks.push_back(i < 30 ? 0 : 50);
  }
  const PairedComparison c = compare_user_ranks(ranks_of(a_ranks), ranks_of(b_ranks, "b"), "hr10", 40000, 7);
  EXPECT_DOUBLE_EQ(c.mean_b - c.mean_a, 0.2);
  EXPECT_NEAR(c.p_value, 0.2026, 0.01);
  const double half_width = 1.96 * std::sqrt(1.0 - 0.04) / std::sqrt(50.0);
  EXPECT_NEAR(c.ci_low, 0.2 - half_width, 0.02);
  EXPECT_NEAR(c.ci_high, 0.2 + half_width, 0.02);
  // A gain on every user: no sign assignment but the observed one is as extreme.
  const PairedComparison all = compare_user_ranks(ranks_of(std::vector<int64_t>(50, 50)),
                                                  ranks_of(std::vector<int64_t>(50, 0), "b"), "hr10", 999);
  EXPECT_DOUBLE_EQ(all.p_value, 1.0 / 1000.0);
  EXPECT_EQ(all.ci_low, 1.0);
  // The same seed gives the same numbers.
  const PairedComparison again = compare_user_ranks(ranks_of(a_ranks), ranks_of(b_ranks, "b"), "hr10", 40000, 7);
  EXPECT_EQ(again.p_value, c.p_value);
  EXPECT_EQ(again.ci_low, c.ci_low);
}

// HR@1 and NDCG@10 of ranks 0 and 1 differ by +-1 and +-(1 - 1/log2 3) on the same users, so the same
// sign draws give them the same p: 220 users gain, 180 lose, 100 tie. The exact two-sided sign test,
// P(|2K - 400| >= 40) for K ~ Binomial(400, 1/2), is 0.0510; counting only draws strictly beyond the
// observed sum gives 0.0402, which NDCG's rounding used to give.
TEST(RankComparison, DrawsAsExtremeAsTheObservedOneCountWhateverTheRounding) {
  UserRanks a, b;
  for (int i = 0; i < 500; ++i) {
    // Names in the order of the lines (users are drawn in name order): the gains, then the losses.
    a.users.push_back(fmt::format("u{:03}", i));
    a.ranks.push_back(i < 220 ? 1 : i < 400 ? 0 : 3);
    b.ranks.push_back(i < 220 ? 0 : i < 400 ? 1 : 3);
  }
  b.users = a.users;
  const PairedComparison hits = compare_user_ranks(a, b, "hr1", 40000, 3);
  const PairedComparison ndcg = compare_user_ranks(a, b, "ndcg10", 40000, 3);
  EXPECT_NEAR(hits.p_value, 0.0510, 0.005);
  EXPECT_EQ(ndcg.p_value, hits.p_value);
}

// The files' line order (TIGER evaluates users by history length, the others by row) and which
// file is a change nothing but the sign of the difference.
TEST(RankComparison, NeitherLineOrderNorSidesChangeTheStatistics) {
  std::vector<int64_t> a_ranks, b_ranks;
  for (int i = 0; i < 300; ++i) {
    a_ranks.push_back((i * 37) % 23);
    b_ranks.push_back((i * 11) % 19);
  }
  const UserRanks a = ranks_of(a_ranks), b = ranks_of(b_ranks, "b");
  UserRanks b_reversed = b;
  std::reverse(b_reversed.users.begin(), b_reversed.users.end());
  std::reverse(b_reversed.ranks.begin(), b_reversed.ranks.end());
  const PairedComparison ab = compare_user_ranks(a, b, "ndcg10", 3000);
  const PairedComparison ba = compare_user_ranks(b_reversed, a, "ndcg10", 3000);
  EXPECT_DOUBLE_EQ(ab.mean_a, ba.mean_b);
  EXPECT_EQ(ab.p_value, ba.p_value);
  EXPECT_NEAR(ab.ci_low, -ba.ci_high, 1e-12);  // the same draws; only the percentile's interpolation rounds
  EXPECT_NEAR(ab.ci_high, -ba.ci_low, 1e-12);
  EXPECT_LT(ab.ci_low, ab.ci_high);
  EXPECT_EQ(ab.b_higher, ba.a_higher);
}

// Pairs of runs (seeds) pooled: each run's users become (run, user) units, so the same user of two
// seeds counts twice and the means are those of all units.
TEST(RankComparison, PooledRunsCompareAsRunUserUnits) {
  const UserRanks a1 = ranks_of({0, 20}, "a1.tsv"), a2 = ranks_of({20, 20}, "a2.tsv");
  const UserRanks b1 = ranks_of({0, 0}, "b1.tsv"), b2 = ranks_of({0, 20}, "b2.tsv");
  const UserRanks a = pool_user_ranks({a1, a2}), b = pool_user_ranks({b1, b2});
  EXPECT_EQ(a.users, (std::vector<std::string>{"1:u0", "1:u1", "2:u0", "2:u1"}));
  EXPECT_EQ(a.ranks, (std::vector<int64_t>{0, 20, 20, 20}));
  EXPECT_EQ(a.source, "a1.tsv + a2.tsv");
  const PairedComparison c = compare_user_ranks(a, b, "hr10", 100);
  EXPECT_EQ(c.users, 4);
  EXPECT_DOUBLE_EQ(c.mean_a, 0.25);
  EXPECT_DOUBLE_EQ(c.mean_b, 0.75);
  EXPECT_EQ(c.b_higher, 2);
  // The pairs in another order: the same draws.
  std::vector<int64_t> r1, r2, r3, r4;
  for (int i = 0; i < 40; ++i) {
    r1.push_back((i * 7) % 13);
    r2.push_back((i * 5) % 11);
    r3.push_back((i * 3) % 17);
    r4.push_back((i * 11) % 7);
  }
  const PairedComparison forward =
      compare_user_ranks(pool_user_ranks({ranks_of(r1), ranks_of(r3)}), pool_user_ranks({ranks_of(r2), ranks_of(r4)}),
                         "ndcg10", 500);
  const PairedComparison backward =
      compare_user_ranks(pool_user_ranks({ranks_of(r3), ranks_of(r1)}), pool_user_ranks({ranks_of(r4), ranks_of(r2)}),
                         "ndcg10", 500);
  EXPECT_EQ(forward.p_value, backward.p_value);
  EXPECT_EQ(forward.ci_low, backward.ci_low);
  EXPECT_EQ(forward.ci_high, backward.ci_high);

  // One user's units are resampled together: the same pair given four times is no new evidence, so
  // the interval and the p-value are those of the single pair (units drawn independently, the
  // interval would shrink by half).
  const UserRanks one_a = ranks_of(r1), one_b = ranks_of(r2);
  const PairedComparison single = compare_user_ranks(one_a, one_b, "ndcg10", 2000);
  const PairedComparison repeated = compare_user_ranks(pool_user_ranks({one_a, one_a, one_a, one_a}),
                                                       pool_user_ranks({one_b, one_b, one_b, one_b}), "ndcg10", 2000);
  EXPECT_EQ(repeated.users, 160);
  EXPECT_NEAR(repeated.mean_b - repeated.mean_a, single.mean_b - single.mean_a, 1e-12);
  EXPECT_NEAR(repeated.ci_low, single.ci_low, 1e-12);
  EXPECT_NEAR(repeated.ci_high, single.ci_high, 1e-12);
  EXPECT_NEAR(repeated.p_value, single.p_value, 1e-12);
}

TEST(RankComparison, FilesRoundTripWithTheDatasNames) {
  TempDir dir;
  data::SequenceDataset ds;
  ds.source = "shop.inter";
  ds.sequences = {{1, 2, 3}, {2, 3, 1}};
  ds.user_ids = {1, 2};
  ds.user_tokens = {"A1QX", "A2ZY"};
  RankingAccumulator acc;
  acc.add_rank(1, 0);
  acc.add_rank(0, 41);
  const std::string path = dir.path("ranks.tsv");
  ds.n_items = 50;
  EvalOptions last_five;
  last_five.filter_seen_last = 5;
  const std::string context = ranks_context(ds, data::EvalSplit::Test, last_five);
  EXPECT_EQ(context, "split test; 2 users, 50 items, 6 events, preprocessing none; seen items filtered: the last 5");
  write_user_ranks(path, ds, acc.result(), context);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "# muonrec ranks: " + context + "\nuser\tposition\nA2ZY\t1\nA1QX\t42\n");
  const UserRanks read = read_user_ranks(path);
  EXPECT_EQ(read.users, (std::vector<std::string>{"A2ZY", "A1QX"}));
  EXPECT_EQ(read.ranks, (std::vector<int64_t>{0, 41}));
  EXPECT_EQ(read.context, context);

  // Ranks of another split (or data, or filtering) are not the same users' answers to one question.
  const std::string validation = dir.path("valid.tsv");
  write_user_ranks(validation, ds, acc.result(), ranks_context(ds, data::EvalSplit::Validation, last_five));
  expect_error([&] { compare_user_ranks(read, read_user_ranks(validation), "ndcg10", 10); },
               {"compare: " + path + " ranks split test;", "but " + validation + " ranks split validation;",
                "the same split, data and seen-item filtering"});
  expect_error([&] { pool_user_ranks({read, read_user_ranks(validation)}); }, {"ranks split validation"});
  // A file written before the context was recorded compares with any.
  const UserRanks old = read_user_ranks(dir.write("old.tsv", "user\tposition\nA2ZY\t3\nA1QX\t4\n"));
  EXPECT_TRUE(old.context.empty());
  EXPECT_EQ(compare_user_ranks(read, old, "ndcg10", 10).users, 2);
  // ... but pooled behind an old file, a file of another split is still refused.
  expect_error([&] { pool_user_ranks({old, read, read_user_ranks(validation)}); }, {"ranks split validation"});

  // A beam search's ranks say its width, kept apart from what was ranked: they compare with a full
  // ranking of the same data, at cut-offs within the beam only (past it every missed target sits at
  // one made-up position).
  const std::string searched = dir.path("beam.tsv");
  write_user_ranks(searched, ds, acc.result(), ranks_context(ds, data::EvalSplit::Test, last_five, 20));
  const UserRanks beam = read_user_ranks(searched);
  EXPECT_EQ(beam.context, context);
  EXPECT_EQ(beam.beam, 20);
  EXPECT_EQ(read.beam, 0);
  EXPECT_EQ(compare_user_ranks(read, beam, "ndcg10", 10).users, 2);
  EXPECT_EQ(compare_user_ranks(beam, read, "hr1", 10).users, 2);
  for (const char* past : {"hr50", "ndcg200", "mrr"})
    expect_error([&] { compare_user_ranks(read, beam, past, 10); },
                 {"compare: " + searched + " ranks only the 20 items its beam search returned, so " + past,
                  "compare a metric at K <= 20 (ndcg10, hr10, hr1), or evaluate with a wider --beam"});
  EXPECT_EQ(pool_user_ranks({read, beam}).beam, 20);
  expect_error([&] { compare_user_ranks(pool_user_ranks({read, beam}), pool_user_ranks({read, read}), "mrr", 10); },
               {"ranks only the 20 items"});

  auto expect_refused = [&](const std::string& content, const std::vector<std::string>& parts) {
    expect_error([&] { read_user_ranks(dir.write("bad.tsv", content)); }, parts);
  };
  expect_refused("user\trank\nA\t1\n", {"bad.tsv, line 1", "expected the header 'user<TAB>position'"});
  expect_refused("user\tposition\nA\t1\nB\t0\n", {"line 3", "position 0 is below 1"});
  expect_refused("user\tposition\nA\t1\nA\t2\n", {"line 3", "user A is given twice (first on line 2)"});
  expect_refused("user\tposition\nA\t1\t5\n", {"line 2", "expected 'user<TAB>position'"});
  expect_refused("user\tposition\nA\tfirst\n", {"line 2", "position"});
  expect_refused("user\tposition\n", {"no user ranks (only the header)"});
  expect_refused("# muonrec ranks: split test; beam wide\nuser\tposition\nA\t1\n", {"line 1", "beam width"});
  const std::string twenty_items = "# muonrec ranks: split test; 2 users, 20 items, 40 events, preprocessing none\n";
  expect_refused(twenty_items + "user\tposition\nA\t20\nB\t21\n",
                 {"line 4", "position 21 is past the 20 items ranked"});
  expect_error([&] { write_user_ranks(dir.path("absent/ranks.tsv"), ds, acc.result(), context); },
               {"absent/ranks.tsv: cannot write it"});
}

}  // namespace
}  // namespace muonrec

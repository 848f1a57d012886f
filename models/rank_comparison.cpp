#include "muonrec/models/rank_comparison.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <unordered_map>

#include "muonrec/data/text_fields.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"

namespace muonrec {
namespace {

constexpr std::string_view kHeader = "user\tposition";
constexpr std::string_view kContextPrefix = "# muonrec ranks: ";
// Ends the context of a beam search's ranks: "; beam N".
constexpr std::string_view kBeamMark = "; beam ";

// The largest position a metric looks at (MRR: every one).
int64_t metric_cutoff(const std::string& metric) {
  if (metric == "mrr") return std::numeric_limits<int64_t>::max();
  const size_t digits = metric.find_first_of("0123456789");
  return std::stoll(metric.substr(digits));  // user_metric has checked the name
}

// The item count a ranks file's context names ("...; 300 users, 80 items, ..."); 0 where it has none.
int64_t items_in_context(const std::string& context) {
  const size_t end = context.find(" items, ");
  if (end == std::string::npos) return 0;
  const size_t start = context.rfind(' ', end - 1) + 1;
  const std::string count = context.substr(start, end - start);
  if (count.empty() || count.find_first_not_of("0123456789") != std::string::npos || count.size() > 18) return 0;
  return std::stoll(count);
}

// The q-quantile of sorted values (linear interpolation between neighbours).
double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(at));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

}  // namespace

std::string ranks_context(const data::SequenceDataset& dataset, data::EvalSplit split, const EvalOptions& eval,
                          int64_t beam) {
  return fmt::format("split {}; {} users, {} items, {} events, preprocessing {}; seen items filtered: {}{}",
                     data::split_name(split), dataset.num_users(), dataset.n_items, dataset.num_events(),
                     dataset.report.preprocessing.describe(),
                     seen_filter_description(eval.filter_seen, eval.filter_seen_last),
                     beam > 0 ? fmt::format("{}{}", kBeamMark, beam) : "");
}

bool is_user_ranks_first_line(const std::string& line) {
  return line.rfind(kContextPrefix, 0) == 0 || line.rfind(kHeader, 0) == 0;
}

void write_user_ranks(const std::string& path, const data::SequenceDataset& dataset, const RankingMetrics& metrics,
                      const std::string& context) {
  std::ostringstream out;
  out << kContextPrefix << context << "\n" << kHeader << "\n";
  for (const UserRank& r : metrics.ranks) out << dataset.user_name(r.row) << "\t" << r.rank + 1 << "\n";
  replace_file(path, out.str());  // whole or not at all
}

UserRanks read_user_ranks(const std::string& path) {
  const std::string text = data::read_whole_file(path);
  data::LineCursor cursor(text);
  std::string_view line;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  UserRanks out;
  out.source = path;
  std::unordered_map<std::string, int64_t> line_of_user;
  bool header_seen = false;
  while (cursor.next(line, number)) {
    if (line.empty()) continue;
    const data::Where where{path, number};
    if (!header_seen && out.context.empty() && line.rfind(kContextPrefix, 0) == 0) {
      out.context = std::string(line.substr(kContextPrefix.size()));
      // The beam is kept apart: a beam search's ranks compare with a full ranking's on the same data.
      if (const size_t at = out.context.rfind(kBeamMark); at != std::string::npos) {
        out.beam = data::parse_int(std::string_view(out.context).substr(at + kBeamMark.size()), "beam width", where);
        if (out.beam < 1) where.fail(fmt::format("beam width {} is below 1", out.beam));
        out.context.erase(at);
      }
      continue;
    }
    if (!header_seen) {
      if (line != kHeader)
        where.fail(fmt::format("expected the header 'user<TAB>position' of a 'muonrec eval --ranks' file, got {}",
                               data::quoted(line)));
      header_seen = true;
      continue;
    }
    data::split_on(line, "\t", fields);
    if (fields.size() != 2 || fields[0].empty())
      where.fail(fmt::format("expected 'user<TAB>position', got {}", data::quoted(line)));
    const int64_t position = data::parse_int(fields[1], "position", where);
    if (position < 1) where.fail(fmt::format("position {} is below 1", position));
    // A target ranks among the items at most: a larger position is another file's or a damaged one.
    if (const int64_t items = items_in_context(out.context); items > 0 && position > items)
      where.fail(fmt::format("position {} is past the {} items ranked", position, items));
    const auto [previous, inserted] = line_of_user.emplace(std::string(fields[0]), number);
    if (!inserted) where.fail(fmt::format("user {} is given twice (first on line {})", fields[0], previous->second));
    out.users.emplace_back(fields[0]);
    out.ranks.push_back(position - 1);
  }
  MUONREC_CHECK(!out.users.empty(), "{}: no user ranks ({})", path,
                header_seen ? "only the header" : "the file is empty");
  return out;
}

namespace {

// The first user of `from` that `in` lacks, with how many it lacks, as an error.
void check_same_users(const UserRanks& from, const UserRanks& in) {
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < in.users.size(); ++i) index.emplace(in.users[i], i);
  int64_t missing = 0;
  const std::string* first = nullptr;
  for (const std::string& user : from.users)
    if (!index.count(user)) {
      ++missing;
      if (!first) first = &user;
    }
  MUONREC_CHECK(missing == 0, "compare: user {} is in {} but not in {} ({} of its {} users are not; both files must "
                "rank the same users: the same data, preprocessing and --split)", *first, from.source, in.source,
                missing, from.users.size());
}

}  // namespace

namespace {

// Throws unless both files ranked the same thing, where both say what.
void check_same_context(const UserRanks& a, const UserRanks& b) {
  MUONREC_CHECK(a.context.empty() || b.context.empty() || a.context == b.context,
                "compare: {} ranks {}, but {} ranks {}: compare ranks of the same split, data and seen-item "
                "filtering",
                a.source, a.context, b.source, b.context);
}

// The narrower of two beams, where either ranks by a beam search (0: neither does).
int64_t narrower_beam(int64_t a, int64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); }

}  // namespace

UserRanks pool_user_ranks(const std::vector<UserRanks>& runs) {
  UserRanks pooled;
  const UserRanks* first_with_context = nullptr;  // what every run that records one must match
  for (size_t k = 0; k < runs.size(); ++k) {
    if (first_with_context) check_same_context(runs[k], *first_with_context);
    if (!first_with_context && !runs[k].context.empty()) first_with_context = &runs[k];
    if (pooled.context.empty()) pooled.context = runs[k].context;
    pooled.beam = narrower_beam(pooled.beam, runs[k].beam);
    pooled.source += (k ? " + " : "") + runs[k].source;
    for (size_t i = 0; i < runs[k].users.size(); ++i) {
      pooled.users.push_back(fmt::format("{}:{}", k + 1, runs[k].users[i]));
      pooled.order_keys.push_back(runs[k].users[i]);
      pooled.ranks.push_back(runs[k].ranks[i]);
    }
  }
  return pooled;
}

PairedComparison compare_user_ranks(const UserRanks& a, const UserRanks& b, const std::string& metric,
                                    int64_t resamples, uint64_t seed) {
  // Each draw's mean is kept for the interval: 8 bytes a draw.
  MUONREC_CHECK(resamples >= 1 && resamples <= kMaxResamples, "compare: resamples must be in [1, {}], got {}",
                kMaxResamples, resamples);
  user_metric(metric, 0);  // an unknown metric fails here, naming the valid ones
  check_same_context(a, b);
  const int64_t beam = narrower_beam(a.beam, b.beam);
  const UserRanks& searched = a.beam == beam ? a : b;
  if (beam > 0 && metric_cutoff(metric) > beam) {
    std::vector<std::string> within;
    for (const std::string& name : user_metric_names())
      if (metric_cutoff(name) <= beam) within.push_back(name);
    MUONREC_FAIL("compare: {} ranks only the {} items its beam search returned, so {} would count the positions past "
                 "them, where every other target was put: compare a metric at K <= {} ({}), or evaluate with a wider "
                 "--beam",
                 searched.source, beam, metric, beam, fmt::join(within, ", "));
  }
  check_same_users(a, b);
  check_same_users(b, a);
  // Users in name order, so neither file's line order nor which file is a changes the draws: swapping
  // a and b negates every difference, the interval with them, and leaves the p-value as it is (for
  // pooled runs, up to the order of one user's units with opposite differences).
  std::unordered_map<std::string_view, int64_t> rank_in_b;
  for (size_t i = 0; i < b.users.size(); ++i) rank_in_b.emplace(b.users[i], b.ranks[i]);
  // Pooled runs: the same user's units by their difference, not by their run (equal differences are
  // interchangeable), so listing the pairs in another order changes nothing either.
  const std::vector<std::string>& keys = a.order_keys.empty() ? a.users : a.order_keys;
  std::vector<double> value_a(a.users.size()), value_b(a.users.size());
  for (size_t i = 0; i < a.users.size(); ++i) {
    value_a[i] = user_metric(metric, a.ranks[i]);
    value_b[i] = user_metric(metric, rank_in_b.at(a.users[i]));
  }
  std::vector<size_t> order(a.users.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (keys[x] != keys[y]) return keys[x] < keys[y];
    return value_b[x] - value_a[x] < value_b[y] - value_a[y];
  });

  PairedComparison c;
  c.metric = metric;
  c.users = static_cast<int64_t>(a.users.size());
  c.unit = a.order_keys.empty() ? "users" : "units";
  c.resamples = resamples;
  // The resampled unit is the user: pooled runs put one user's units (a seed each) together, since
  // they are not independent (the same file pair given twice would otherwise narrow the interval
  // by a factor sqrt(2) with no new information). Each user's sum of differences and unit count.
  std::vector<double> user_difference;
  std::vector<int64_t> user_units;
  for (size_t j = 0; j < order.size(); ++j) {
    const size_t i = order[j];
    c.mean_a += value_a[i];
    c.mean_b += value_b[i];
    c.b_higher += value_b[i] > value_a[i];
    c.a_higher += value_a[i] > value_b[i];
    if (j == 0 || keys[i] != keys[order[j - 1]]) {
      user_difference.push_back(0.0);
      user_units.push_back(0);
    }
    user_difference.back() += value_b[i] - value_a[i];
    ++user_units.back();
  }
  const double n = static_cast<double>(c.users);
  c.mean_a /= n;
  c.mean_b /= n;
  c.ties = c.users - c.b_higher - c.a_higher;

  // std::mt19937_64's output is fixed by the standard: the same seed gives the same interval and
  // p-value everywhere. Indices by modulo: the bias is below n / 2^64.
  std::mt19937_64 gen(seed);
  const size_t users = user_difference.size();
  std::vector<double> means(static_cast<size_t>(resamples));
  for (double& mean : means) {
    double sum = 0.0;
    int64_t units = 0;
    for (size_t u = 0; u < users; ++u) {
      const size_t drawn = gen() % users;
      sum += user_difference[drawn];
      units += user_units[drawn];
    }
    mean = sum / static_cast<double>(units);
  }
  std::sort(means.begin(), means.end());
  c.ci_low = quantile(means, 0.025);
  c.ci_high = quantile(means, 0.975);
  // Under "no difference" each user's difference (its units' sum) is as likely negated: how often do
  // random signs give a mean at least as far from zero as the observed one? (+1 on both sides: the
  // observed assignment is one of the possible ones, so p is never 0.) Users with no difference add
  // nothing either way, so only the others are drawn.
  std::vector<double> nonzero;
  for (double d : user_difference)
    if (d != 0.0) nonzero.push_back(d);
  // The observed sum, added in the order the draws add theirs, and a tolerance for rounding: a
  // metric with few distinct values (NDCG over a short list) makes draws whose sum equals the observed
  // one exactly, and dropping those for a rounding difference would make p too small.
  double observed_sum = 0.0, magnitude = 0.0;
  for (double d : nonzero) observed_sum += d, magnitude += std::fabs(d);
  const double threshold = std::fabs(observed_sum) - 1e-9 * magnitude;
  int64_t as_extreme = 0;
  for (int64_t r = 0; r < resamples; ++r) {
    double sum = 0.0;
    uint64_t bits = 0;
    for (size_t i = 0; i < nonzero.size(); ++i) {
      if (i % 64 == 0) bits = gen();
      sum += (bits >> (i % 64)) & 1 ? nonzero[i] : -nonzero[i];
    }
    as_extreme += std::fabs(sum) >= threshold;
  }
  c.p_value = static_cast<double>(as_extreme + 1) / static_cast<double>(resamples + 1);
  return c;
}

std::string PairedComparison::format(const std::string& name_a, const std::string& name_b) const {
  const double difference = mean_b - mean_a;
  const std::string relative =
      mean_a > 0 ? fmt::format(" ({:+.1f}%)", 100.0 * difference / mean_a) : std::string();
  return fmt::format("{} over the same {} {}\n"
                     "  a: {:.4f}  {}\n"
                     "  b: {:.4f}  {}\n"
                     "  b - a: {:+.4f}{}, 95% paired bootstrap interval [{:+.4f}, {:+.4f}]; "
                     "sign-flip test p = {:.4g} ({} resamples)\n"
                     "  {} higher under b: {}, under a: {}, equal: {}\n",
                     metric, users, unit, mean_a, name_a, mean_b, name_b, difference, relative, ci_low, ci_high,
                     p_value, resamples, unit, b_higher, a_higher, ties);
}

}  // namespace muonrec

#include "muonrec/models/recommend.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ostream>
#include <unordered_set>

#include <fmt/format.h>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/error.h"
#include "muonrec/models/evaluate.h"

namespace muonrec {
namespace {

void check_rows(const data::SequenceDataset& dataset, const std::vector<int64_t>& rows, int64_t k) {
  MUONREC_CHECK(k >= 1, "recommend: k must be >= 1, got {}", k);
  for (int64_t row : rows)
    MUONREC_CHECK(row >= 0 && row < dataset.num_users(), "recommend: row {} is outside the dataset's {} users", row,
                  dataset.num_users());
}

const std::vector<int64_t>& history(const data::SequenceDataset& dataset, int64_t row) {
  return dataset.sequences[static_cast<size_t>(row)];
}

}  // namespace

std::vector<ScoredItem> top_k_items(const float* scores, int64_t n_items, int64_t k,
                                    const std::vector<int64_t>& excluded) {
  const std::unordered_set<int64_t> skip(excluded.begin(), excluded.end());
  std::vector<ScoredItem> candidates;
  candidates.reserve(static_cast<size_t>(n_items));
  for (int64_t item = 1; item <= n_items; ++item)
    if (!skip.count(item)) candidates.push_back({item, scores[item - 1]});
  // The evaluation's order: it ranks the target where this list would put it.
  auto before = [](const ScoredItem& a, const ScoredItem& b) { return serves_before(a.score, a.item, b.score, b.item); };
  const size_t keep = std::min(candidates.size(), static_cast<size_t>(k));
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), before);
  candidates.resize(keep);
  return candidates;
}

std::vector<std::vector<ScoredItem>> recommend(SequentialModel& model, const data::SequenceDataset& dataset,
                                               const std::vector<int64_t>& rows, const RecommendOptions& options) {
  check_rows(dataset, rows, options.k);
  const int64_t n_items = model.config().n_items;
  MUONREC_CHECK(dataset.n_items == n_items, "recommend: the dataset has {} items, the model {}", dataset.n_items,
                n_items);
  std::vector<data::EvalExample> whole;
  for (int64_t row : rows) whole.push_back({row, 0, static_cast<int64_t>(history(dataset, row).size())});
  std::vector<std::vector<ScoredItem>> out;
  for (const data::Batch& batch :
       data::make_window_batches(dataset, whole, model.config().max_len, options.batch_size)) {
    std::vector<float> scores = last_position_scores(model, batch);
    for (int64_t b = 0; b < batch.real_rows; ++b) {
      const std::vector<int64_t>& seen = history(dataset, batch.user_rows[b]);
      out.push_back(top_k_items(scores.data() + b * n_items, n_items, options.k,
                                options.filter_seen ? seen : std::vector<int64_t>{}));
    }
  }
  return out;
}

std::vector<std::vector<ScoredItem>> recommend_tiger(TigerModel& model, const TigerCatalog& catalog,
                                                     const data::SequenceDataset& dataset,
                                                     const std::vector<int64_t>& rows, const RecommendOptions& options,
                                                     const TigerGenerateOptions& generate) {
  check_rows(dataset, rows, options.k);
  MUONREC_CHECK(catalog.tokens.n_items == dataset.n_items, "recommend: the dataset has {} items, the catalog {}",
                dataset.n_items, catalog.tokens.n_items);
  std::vector<std::vector<int64_t>> histories;
  for (int64_t row : rows) histories.push_back(history(dataset, row));
  // Seen items are excluded inside the search, so the beams go to items that can be served.
  std::vector<std::vector<semantic_id::BeamHit>> hits =
      tiger_generate(model, catalog, histories, generate, options.filter_seen ? histories : std::vector<std::vector<int64_t>>{});
  std::vector<std::vector<ScoredItem>> out(rows.size());
  for (size_t u = 0; u < rows.size(); ++u)
    for (const semantic_id::BeamHit& hit : hits[u]) {
      if (static_cast<int64_t>(out[u].size()) == options.k) break;
      out[u].push_back({hit.item, hit.score});
    }
  return out;
}

namespace {

// The row of a user the file names `name`, or -1.
int64_t row_named(const data::SequenceDataset& dataset, const std::string& name) {
  if (!dataset.user_tokens.empty()) {  // sorted: the ids number the sorted tokens
    const auto& tokens = dataset.user_tokens;
    auto it = std::lower_bound(tokens.begin(), tokens.end(), name);
    return it != tokens.end() && *it == name ? it - tokens.begin() : -1;
  }
  int64_t id = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (name.empty() || ec != std::errc() || end != name.data() + name.size()) return -1;
  const std::vector<int64_t>& ids = dataset.user_ids;  // ascending
  auto it = std::lower_bound(ids.begin(), ids.end(), id);
  return it != ids.end() && *it == id ? it - ids.begin() : -1;
}

}  // namespace

std::vector<int64_t> rows_of_users(const data::SequenceDataset& dataset, const std::vector<std::string>& users) {
  std::vector<int64_t> rows;
  if (users.empty()) {
    for (int64_t row = 0; row < dataset.num_users(); ++row) rows.push_back(row);
    return rows;
  }
  for (const std::string& user : users) {
    const int64_t row = row_named(dataset, user);
    const int64_t k_core_dropped = dataset.report.preprocessed.k_core_users_dropped;
    MUONREC_CHECK(row >= 0, "recommend: user {} is not in {}{}{}", user, dataset.source,
                  dataset.report.users_dropped_short == 0
                      ? ""
                      : fmt::format(" (or is among the {} users dropped for having fewer than {} events)",
                                    dataset.report.users_dropped_short, dataset.report.min_events_per_user),
                  k_core_dropped == 0 ? ""
                                      : fmt::format(" (or is among the {} users the k-core dropped)", k_core_dropped));
    MUONREC_CHECK(std::find(rows.begin(), rows.end(), row) == rows.end(), "recommend: user {} is given twice", user);
    rows.push_back(row);
  }
  return rows;
}

void write_recommendations(std::ostream& out, const data::SequenceDataset& dataset, const std::vector<int64_t>& rows,
                           const std::vector<std::vector<ScoredItem>>& lists, const std::vector<std::string>& titles) {
  MUONREC_CHECK(lists.size() == rows.size(), "write_recommendations: {} lists for {} users", lists.size(),
                rows.size());
  out << "user\trank\titem\tscore" << (titles.empty() ? "" : "\ttitle") << "\n";
  for (size_t u = 0; u < rows.size(); ++u)
    for (size_t r = 0; r < lists[u].size(); ++r) {
      const ScoredItem& s = lists[u][r];
      out << fmt::format("{}\t{}\t{}\t{:.6g}", dataset.user_name(rows[u]), r + 1, dataset.item_name(s.item), s.score);
      if (!titles.empty()) {
        std::string title = titles[s.item];
        std::replace_if(title.begin(), title.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
        out << "\t" << title;
      }
      out << "\n";
    }
}

}  // namespace muonrec

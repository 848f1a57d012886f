#include "muonrec/models/evaluate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {

const std::vector<std::string>& user_metric_names() {
  static const std::vector<std::string> names = {"ndcg10", "hr10", "mrr",   "hr1",
                                                 "ndcg50", "hr50", "ndcg200", "hr200"};
  return names;
}

double user_metric(const std::string& metric, int64_t rank) {
  const double gain = 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  if (metric == "mrr") return 1.0 / (static_cast<double>(rank) + 1.0);
  for (const int64_t k : {1, 10, 50, 200}) {
    if (metric == fmt::format("hr{}", k)) return rank < k ? 1.0 : 0.0;
    if (metric == fmt::format("ndcg{}", k) && k > 1) return rank < k ? gain : 0.0;
  }
  MUONREC_FAIL("unknown metric '{}' ({})", metric, fmt::join(user_metric_names(), ", "));
}

void RankingAccumulator::add_rank(int64_t row, int64_t rank) {
  const double gain = 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  sum_.ranks.push_back({row, rank});
  sum_.users += 1;
  sum_.hr1 += rank < 1;
  sum_.hr10 += rank < 10;
  sum_.hr50 += rank < 50;
  sum_.hr200 += rank < 200;
  sum_.ndcg10 += rank < 10 ? gain : 0.0;
  sum_.ndcg50 += rank < 50 ? gain : 0.0;
  sum_.ndcg200 += rank < 200 ? gain : 0.0;
  sum_.mrr += 1.0 / (static_cast<double>(rank) + 1.0);
}

namespace {

// The items of `seen` that are candidates to exclude: in 1..n_items, not the target, each once.
std::vector<int64_t> excluded_items(const std::vector<int64_t>& seen, int64_t n_items, int64_t target_item) {
  MUONREC_CHECK(target_item >= 1 && target_item <= n_items, "evaluation target {} outside items 1..{}", target_item,
                n_items);
  std::vector<int64_t> excluded;
  for (int64_t item : seen)
    if (item != target_item && item >= 1 && item <= n_items) excluded.push_back(item);
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  return excluded;
}

}  // namespace

void RankingAccumulator::add(int64_t row, const float* scores, int64_t n_items, int64_t target_item,
                             const std::vector<int64_t>& seen) {
  const std::vector<int64_t> excluded = excluded_items(seen, n_items, target_item);
  const float target_score = scores[target_item - 1];
  // serves_before(scores[c], c + 1, target) for every item, in loops the compiler vectorises: higher
  // scores, then equal ones of smaller ids (NaN equals nothing, so NaN candidates count only before
  // a NaN target, which every other candidate precedes).
  const int64_t target_index = target_item - 1;
  int64_t rank = 0;
  if (std::isnan(target_score)) {
    for (int64_t c = 0; c < n_items; ++c) rank += !std::isnan(scores[c]) || c < target_index;
  } else {
    for (int64_t c = 0; c < target_index; ++c) rank += scores[c] >= target_score;
    for (int64_t c = target_index + 1; c < n_items; ++c) rank += scores[c] > target_score;
  }
  // Excluded items counted above are taken back out.
  for (int64_t item : excluded) rank -= serves_before(scores[item - 1], item, target_score, target_item);
  add_rank(row, rank);
}

void RankingAccumulator::add_last(int64_t row, int64_t n_items, int64_t target_item,
                                  const std::vector<int64_t>& seen) {
  add_rank(row, n_items - 1 - static_cast<int64_t>(excluded_items(seen, n_items, target_item).size()));
}

RankingMetrics RankingAccumulator::result() const {
  RankingMetrics m = sum_;
  const double n = std::max<int64_t>(m.users, 1);
  for (double* v : {&m.hr1, &m.hr10, &m.hr50, &m.hr200, &m.ndcg10, &m.ndcg50, &m.ndcg200, &m.mrr}) *v /= n;
  return m;
}

std::string RankingMetrics::summary() const {
  return fmt::format("HR@10 {:.4f}  NDCG@10 {:.4f}  MRR {:.4f}  HR@1 {:.4f}  HR@50 {:.4f}  NDCG@50 {:.4f}  ({} users)",
                     hr10, ndcg10, mrr, hr1, hr50, ndcg50, users);
}

std::string RankingMetrics::to_json() const {
  auto r = [](double v) { return std::round(v * 1e6) / 1e6; };
  nlohmann::json j = {{"users", users},       {"hr1", r(hr1)},         {"hr10", r(hr10)},
                      {"hr50", r(hr50)},      {"hr200", r(hr200)},     {"ndcg10", r(ndcg10)},
                      {"ndcg50", r(ndcg50)},  {"ndcg200", r(ndcg200)}, {"mrr", r(mrr)}};
  return j.dump();
}

std::string seen_filter_description(bool filter_seen, int64_t filter_seen_last) {
  if (!filter_seen) return "none";
  return filter_seen_last == 0 ? "all" : fmt::format("the last {}", filter_seen_last);
}

std::vector<int64_t> seen_items(const int64_t* history, int64_t length, int64_t last) {
  MUONREC_CHECK(last >= 0, "seen items: the last {} items?", last);
  const int64_t n = last > 0 ? std::min(last, length) : length;
  return std::vector<int64_t>(history + length - n, history + length);
}

namespace {

std::vector<int64_t> filtered_items(const data::SequenceDataset& dataset, const data::EvalExample& example,
                                    const EvalOptions& options) {
  if (!options.filter_seen) return {};
  return seen_items(dataset.sequences[static_cast<size_t>(example.row)].data(), example.input_length,
                    options.filter_seen_last);
}

}  // namespace

std::vector<float> last_position_scores(SequentialModel& model, const data::Batch& batch) {
  NoGradGuard no_grad;
  PhiloxGenerator unused_dropout(0);
  const int64_t T = batch.T;
  // Only the last position is scored; the model shapes its input (BERT4Rec appends [MASK]).
  SequenceBatch input = model.prepare_eval_batch(batch);
  Tensor h = model.hidden(input, false, unused_dropout);
  std::vector<int64_t> last(static_cast<size_t>(batch.rows));
  for (int64_t b = 0; b < batch.rows; ++b) last[b] = b * T + T - 1;
  Tensor last_h = ops::embedding(h.reshape({batch.rows * T, model.config().d}),
                                 Tensor::from_i64(last, {batch.rows}, model.device()));
  return model.scores(last_h).to_f32_vector();
}

RankingMetrics evaluate_model(SequentialModel& model, const data::SequenceDataset& dataset, data::EvalSplit split,
                              const EvalOptions& options) {
  NVTX_RANGE("evaluate");
  const int64_t n_items = dataset.n_items, T = model.config().max_len;
  MUONREC_CHECK(n_items == model.config().n_items, "dataset has {} items, the model {}", n_items,
                model.config().n_items);
  RankingAccumulator acc;
  for (const data::Batch& batch : data::make_eval_batches(dataset, split, T, options.batch_size)) {
    std::vector<float> scores = last_position_scores(model, batch);
    for (int64_t b = 0; b < batch.real_rows; ++b) {
      data::EvalExample example = data::LeaveOneOut::example(dataset, batch.user_rows[b], split);
      acc.add(example.row, scores.data() + b * n_items, n_items, example.target,
              filtered_items(dataset, example, options));
    }
  }
  return acc.result();
}

RankingMetrics evaluate_popularity(const data::SequenceDataset& dataset, data::EvalSplit split,
                                   const EvalOptions& options) {
  // Scored by training count (exact in float up to 2^24): the ranking serves the many items that tie
  // on a count by item id, as a most-popular recommender's list would.
  const std::vector<int64_t> counts = data::item_popularity(dataset);
  std::vector<float> scores(static_cast<size_t>(dataset.n_items));
  for (int64_t item = 1; item <= dataset.n_items; ++item) scores[item - 1] = static_cast<float>(counts[item]);
  RankingAccumulator acc;
  for (const data::EvalExample& example : data::LeaveOneOut::examples(dataset, split)) {
    acc.add(example.row, scores.data(), dataset.n_items, example.target, filtered_items(dataset, example, options));
  }
  return acc.result();
}

}  // namespace muonrec

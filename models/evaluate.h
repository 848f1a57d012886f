// Full-ranking evaluation (reference/MODELS.md): every item is a candidate, items already in the
// user's input history are filtered out by default, the rank of the held-out item gives HR@K,
// NDCG@K and MRR. The same code ranks the model's scores and the most-popular baseline.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/data/batcher.h"
#include "muonrec/data/dataset.h"
#include "muonrec/data/split.h"
#include "muonrec/models/sequential_model.h"

namespace muonrec {

// One evaluated user: the dataset row and the number of candidates ranked above its target (0: first).
struct UserRank {
  int64_t row = 0;
  int64_t rank = 0;
};

struct RankingMetrics {
  int64_t users = 0;
  double hr1 = 0, hr10 = 0, hr50 = 0, hr200 = 0;
  double ndcg10 = 0, ndcg50 = 0, ndcg200 = 0;
  double mrr = 0;
  std::vector<UserRank> ranks;  // every evaluated user, in evaluation order (for paired comparisons)
  std::string summary() const;  // "HR@10 0.3088 NDCG@10 0.1764 MRR ..."
  std::string to_json() const;
};

// The order of a served list (recommend's): higher score first, equal scores by ascending item id,
// NaN last. Evaluation ranks the target where this order puts it among the candidates, so a metric
// is what the list a user would be served scores: a collapsed model whose scores all tie (or are
// all infinite) gains nothing from the ties. The PyTorch peer counts only the items scoring strictly
// higher, which gives the same ranks unless the target's score ties with another item's.
inline bool serves_before(float score_a, int64_t item_a, float score_b, int64_t item_b) {
  if (std::isnan(score_a) != std::isnan(score_b)) return std::isnan(score_b);
  return score_a > score_b || (!(score_b > score_a) && item_a < item_b);
}

// Accumulates ranks: rank = the number of candidates served before the target (serves_before).
class RankingAccumulator {
 public:
  void add_rank(int64_t row, int64_t rank);
  // The user of dataset row `row`: scores[c] is the score of item c+1; `seen` lists item ids
  // (1-based) to exclude (the target itself is never excluded; repeats and ids outside 1..n_items
  // are passed over).
  void add(int64_t row, const float* scores, int64_t n_items, int64_t target_item, const std::vector<int64_t>& seen);
  // A target that a partial list (TIGER's beam) does not hold: ranked last among the candidates
  // that `seen` leaves.
  void add_last(int64_t row, int64_t n_items, int64_t target_item, const std::vector<int64_t>& seen);
  RankingMetrics result() const;

 private:
  RankingMetrics sum_;
};

struct EvalOptions {
  bool filter_seen = true;
  // With filter_seen: remove only the last N items of the input history (0: all of it, MODELS.md's
  // protocol). The PyTorch peer removes those of its model window alone: N = its maxlen.
  int64_t filter_seen_last = 0;
  int64_t batch_size = 256;
  // No window length: the model's own (config().max_len) is the only one whose newest item sits on
  // the positional slot it was trained on.
};

// What filtering removes for a user whose input history is history[0 .. length): all of it, or its
// last `last` items (last > 0).
std::vector<int64_t> seen_items(const int64_t* history, int64_t length, int64_t last);
// What an evaluation removes from the candidates, as the records say it: "all" (the whole input
// history), "the last N" or "none".
std::string seen_filter_description(bool filter_seen, int64_t filter_seen_last);

// The model's scores over every item at the last position of each row of a window batch
// (data::make_window_batches): [batch.rows * n_items] on the host, row-major.
std::vector<float> last_position_scores(SequentialModel& model, const data::Batch& batch);

RankingMetrics evaluate_model(SequentialModel& model, const data::SequenceDataset& dataset, data::EvalSplit split,
                              const EvalOptions& options);
// The most-popular baseline: every item ranked by its count in the training parts, ties by item id.
RankingMetrics evaluate_popularity(const data::SequenceDataset& dataset, data::EvalSplit split,
                                   const EvalOptions& options);

// The value a metric ("ndcg10", "hr10", "mrr", "hr1", "ndcg50", "hr50", "ndcg200", "hr200") gives one
// user whose target has `rank` candidates above it; the metrics above are its mean over the users.
// Throws naming the valid metrics.
double user_metric(const std::string& metric, int64_t rank);
// The metrics user_metric knows, in the order `compare` lists them.
const std::vector<std::string>& user_metric_names();

}  // namespace muonrec

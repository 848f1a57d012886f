#include "muonrec/models/tiger_batches.h"

#include <algorithm>
#include <utility>

#include "muonrec/data/batcher.h"
#include "muonrec/data/split.h"
#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

// Batches per length bucket: the epoch's shuffled examples are cut into runs of this many batches and
// each run is sorted by history length before it is split, so that a batch (whose window is cut to
// its longest row) holds histories of similar length. On Beauty this cuts the padded tokens about
// threefold; the batches' order is shuffled again so lengths do not drift through the epoch.
constexpr int64_t kBucketBatches = 8;

}  // namespace

void check_tiger_has_examples(const data::SequenceDataset& dataset, const TigerConfig& config) {
  MUONREC_CHECK(dataset.num_users() > 0, "{}: nothing to train on: the data has no users", dataset.source);
  if (!config.encoder_decoder()) return;  // every user's training items make a window
  for (int64_t u = 0; u < dataset.num_users(); ++u)
    if (data::LeaveOneOut::train_length(dataset, u) >= 2) return;
  MUONREC_FAIL("{}: nothing to train on: the encoder-decoder (--encoder-blocks) learns each training item after a "
               "user's first from the ones before it, leave-one-out keeps each user's last two events for validation "
               "and test, so a user needs at least {} events, and none of the {} users has more than {} (the "
               "decoder-only model trains on such users)",
               dataset.source, data::LeaveOneOut::kMinEvents + 1, dataset.num_users(), data::LeaveOneOut::kMinEvents);
}

TigerTrainingBatches::TigerTrainingBatches(const TigerCatalog& catalog, const data::SequenceDataset& dataset,
                                           const TigerConfig& config)
    : catalog_(&catalog), dataset_(&dataset), config_(config) {
  for (int64_t u = 0; u < dataset.num_users(); ++u) {
    const int64_t train = data::LeaveOneOut::train_length(dataset, u);
    for (int64_t c = config.encoder_decoder() ? 2 : train; c <= train; ++c) {
      user_.push_back(u);
      count_.push_back(c);
    }
  }
}

std::vector<std::vector<int64_t>> TigerTrainingBatches::epoch_batches(int64_t B, uint64_t seed, int64_t epoch) const {
  const std::vector<int64_t>& lengths = count_;
  const int64_t rows = examples();
  std::vector<int64_t> order = data::epoch_permutation(rows, seed, epoch);
  for (int64_t begin = 0; begin < rows; begin += kBucketBatches * B) {
    auto first = order.begin() + begin, last = order.begin() + std::min(rows, begin + kBucketBatches * B);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t begin = 0; begin < rows; begin += B)
    batches.emplace_back(order.begin() + begin, order.begin() + std::min(rows, begin + B));
  std::vector<int64_t> batch_order =
      data::epoch_permutation(static_cast<int64_t>(batches.size()), seed ^ 0xba7c4e5ull, epoch);
  std::vector<std::vector<int64_t>> shuffled;
  for (int64_t i : batch_order) shuffled.push_back(std::move(batches[i]));
  return shuffled;
}

TigerBatch TigerTrainingBatches::batch(const std::vector<int64_t>& picked, Device device) const {
  return config_.encoder_decoder() ? seq2seq_batch(picked, device) : window_batch(picked, device);
}

// The decoder-only windows of `picked` examples, cut to the longest of them.
TigerBatch TigerTrainingBatches::window_batch(const std::vector<int64_t>& picked, Device device) const {
  const ItemTokens& tokens = catalog_->tokens;
  const int64_t window = config_.window();
  const int64_t C = tokens.vocab.code_length(), rows = static_cast<int64_t>(picked.size());
  // Only the newest items that can reach a window of `window` tokens (+1 for the shifted targets).
  const int64_t needed_items = (window + 1 + C - 1) / C;
  std::vector<std::pair<const int64_t*, int64_t>> spans;
  int64_t T = 1;
  for (int64_t e : picked) {
    const int64_t count = count_[e], n = std::min(count, needed_items);
    spans.emplace_back(dataset_->sequences[user_[e]].data() + count - n, n);
    T = std::max(T, std::min(window, n * C - 1));
  }
  std::vector<int64_t> ids(static_cast<size_t>(rows * T)), positions(ids.size()), targets(ids.size());
  for (int64_t r = 0; r < rows; ++r)
    fill_training_window(tokens, spans[r].first, spans[r].second, T, ids.data() + r * T, positions.data() + r * T,
                         targets.data() + r * T);
  return make_tiger_batch(tokens.vocab, ids, positions, targets, rows, T, device);
}

// The encoder-decoder examples: each history as the generation window, and its target's tokens.
TigerBatch TigerTrainingBatches::seq2seq_batch(const std::vector<int64_t>& picked, Device device) const {
  const ItemTokens& tokens = catalog_->tokens;
  const int64_t C = tokens.vocab.code_length(), rows = static_cast<int64_t>(picked.size());
  std::vector<std::pair<const int64_t*, int64_t>> histories;
  std::vector<int64_t> target_tokens;
  int64_t T = 1;
  for (int64_t e : picked) {
    const int64_t* items = dataset_->sequences[user_[e]].data();
    const int64_t target = count_[e] - 1, n = std::min(target, config_.max_items);
    histories.emplace_back(items + target - n, n);
    T = std::max(T, n * C);
    target_tokens.insert(target_tokens.end(), tokens.item(items[target]), tokens.item(items[target]) + C);
  }
  std::vector<int64_t> ids(static_cast<size_t>(rows * T)), positions(ids.size());
  for (int64_t r = 0; r < rows; ++r)
    fill_generation_window(tokens, histories[r].first, histories[r].second, {}, T, ids.data() + r * T,
                           positions.data() + r * T);
  return make_tiger_seq2seq_batch(tokens.vocab, ids, positions, target_tokens, rows, T, device);
}

}  // namespace muonrec

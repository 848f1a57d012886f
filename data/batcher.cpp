#include "muonrec/data/batcher.h"

#include <algorithm>
#include <numeric>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"

namespace muonrec::data {

void Batch::reset(int64_t n_rows, int64_t window, bool with_timestamps) {
  rows = n_rows;
  T = window;
  real_rows = 0;
  ids.assign(rows * T, 0);
  targets.assign(rows * T, 0);
  if (with_timestamps) {
    timestamps.assign(rows * T, 0);
  } else {
    timestamps.clear();
  }
  user_rows.assign(rows, -1);
  last_train_items.assign(rows, 0);
}

namespace {

// Mixes the user's seed so the shuffle streams differ from those other consumers (parameter
// initialisation, dropout) draw from a generator seeded with the same number.
uint64_t shuffle_key(uint64_t seed) {
  uint64_t z = seed ^ 0x53485546464C4531ull;  // "SHUFFLE1"
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void check_shape(int64_t T, int64_t batch_size) {
  MUONREC_CHECK(T >= 1, "window length T must be >= 1, got {}", T);
  MUONREC_CHECK(batch_size >= 1, "batch size must be >= 1, got {}", batch_size);
}

// Copies the last min(length, T) entries of values[0 .. length) right-aligned into row `r` of a
// [rows, T] buffer; returns how many were copied.
int64_t place_right_aligned(const std::vector<int64_t>& values, int64_t length, int64_t r, int64_t T,
                            std::vector<int64_t>& out) {
  const int64_t k = std::min(length, T);
  std::copy(values.begin() + (length - k), values.begin() + length, out.begin() + r * T + (T - k));
  return k;
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  MUONREC_CHECK(n >= 0 && n < (int64_t{1} << 32), "cannot permute {} elements", n);
  MUONREC_CHECK(epoch >= 0, "epoch must be >= 0, got {}", epoch);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Epoch e owns Philox streams [e * 2^32, (e+1) * 2^32): one per swap, never shared across epochs.
  PhiloxGenerator gen(shuffle_key(seed), static_cast<uint64_t>(epoch) << 32);
  for (int64_t i = n - 1; i > 0; --i) {
    // Multiply-shift maps 64 random bits onto [0, i]; the bias (< i / 2^64) is far below noise.
    const auto j = static_cast<int64_t>((static_cast<unsigned __int128>(gen.uniform_u64()) * (i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

TrainBatcher::TrainBatcher(const SequenceDataset& ds, int64_t T, int64_t batch_size, uint64_t seed,
                           TrainingTargets targets)
    : ds_(&ds), T_(T), batch_size_(batch_size), seed_(seed) {
  check_shape(T, batch_size);
  ds.validate();
  // Validates every row up front (>= 3 events) so a bad row fails here, not mid-epoch.
  train_length_.resize(ds.sequences.size());
  int64_t next_item_targets = 0;
  for (int64_t row = 0; row < ds.num_users(); ++row) {
    train_length_[row] = LeaveOneOut::train_length(ds, row);
    next_item_targets += train_length_[row] - 1;
  }
  MUONREC_CHECK(ds.num_users() > 0, "{}: nothing to train on: the data has no users", ds.source);
  // Every user keeps at least one training item, which masked-item training can always mask.
  MUONREC_CHECK(targets == TrainingTargets::masked_items || next_item_targets > 0,
                "{}: nothing to train on: leave-one-out keeps each user's last two events for validation and test, "
                "so a user needs at least {} events to give a next-item training target, and none of the {} users "
                "has more than {} (BERT4Rec, which masks items, trains on such users)",
                ds.source, LeaveOneOut::kMinEvents + 1, ds.num_users(), LeaveOneOut::kMinEvents);
  start_epoch(0);
}

int64_t TrainBatcher::batches_per_epoch() const { return (ds_->num_users() + batch_size_ - 1) / batch_size_; }

void TrainBatcher::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  cursor_ = 0;
  order_ = epoch_permutation(ds_->num_users(), seed_, epoch);
}

bool TrainBatcher::next(Batch& batch) {
  const int64_t n = static_cast<int64_t>(order_.size());
  if (cursor_ >= n) return false;
  const bool with_ts = ds_->has_timestamps();
  batch.reset(batch_size_, T_, with_ts);
  const int64_t real = std::min(batch_size_, n - cursor_);
  for (int64_t r = 0; r < real; ++r) {
    const int64_t row = order_[cursor_ + r];
    const auto& seq = ds_->sequences[row];
    // Window over train = seq[0 .. n_train): inputs seq[0 .. n_train-1), targets seq[1 .. n_train).
    const int64_t window = train_length_[row] - 1;
    const int64_t k = std::min(window, T_);
    const int64_t first = window - k;
    const int64_t base = r * T_ + (T_ - k);
    std::copy(seq.begin() + first, seq.begin() + first + k, batch.ids.begin() + base);
    std::copy(seq.begin() + first + 1, seq.begin() + first + 1 + k, batch.targets.begin() + base);
    if (with_ts) place_right_aligned(ds_->timestamps[row], window, r, T_, batch.timestamps);
    batch.user_rows[r] = row;
    batch.last_train_items[r] = seq[train_length_[row] - 1];
  }
  batch.real_rows = real;
  cursor_ += real;
  return true;
}

std::vector<Batch> make_eval_batches(const SequenceDataset& ds, EvalSplit split, int64_t T, int64_t batch_size) {
  return make_window_batches(ds, LeaveOneOut::examples(ds, split), T, batch_size);
}

std::vector<Batch> make_window_batches(const SequenceDataset& ds, const std::vector<EvalExample>& examples, int64_t T,
                                       int64_t batch_size) {
  check_shape(T, batch_size);
  ds.validate();
  const bool with_ts = ds.has_timestamps();
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<Batch> batches((n + batch_size - 1) / batch_size);
  for (size_t b = 0; b < batches.size(); ++b) {
    Batch& batch = batches[b];
    batch.reset(batch_size, T, with_ts);
    const int64_t start = static_cast<int64_t>(b) * batch_size;
    batch.real_rows = std::min(batch_size, n - start);
    for (int64_t r = 0; r < batch.real_rows; ++r) {
      const EvalExample& ex = examples[start + r];
      place_right_aligned(ds.sequences[ex.row], ex.input_length, r, T, batch.ids);
      if (with_ts) place_right_aligned(ds.timestamps[ex.row], ex.input_length, r, T, batch.timestamps);
      batch.targets[r * T + T - 1] = ex.target;
      batch.user_rows[r] = ex.row;
    }
  }
  return batches;
}

}  // namespace muonrec::data

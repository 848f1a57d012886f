// Fixed-shape, left-padded batches for training and evaluation. Every batch has the same
// [batch_size, T] shape (the last one is completed with all-zero filler rows) so a training step
// can be captured once as a CUDA graph and replayed.
//
// Training follows the PyTorch peer (bench/torch_ref.py): one window per user per epoch, built from
// the user's training part train = s[0 .. L-2) as input = train[:-1] and targets = train[1:], both
// the last T positions, left-padded. A user whose training part has a single item contributes a
// window with no targets (all zero); the loss simply has no positions from that row.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/data/split.h"

namespace muonrec::data {

struct Batch {                       // row-major [rows, T]
  int64_t rows = 0, T = 0;
  std::vector<int64_t> ids;          // 0 = padding; the most recent item at column T-1
  std::vector<int64_t> targets;      // training: next item at each position, 0 where none;
                                     // evaluation: the held-out item at column T-1, 0 elsewhere
  std::vector<int64_t> timestamps;   // empty when the dataset has none; 0 at padding
  std::vector<int64_t> user_rows;    // dataset row of each batch row, -1 for filler rows
  std::vector<int64_t> last_train_items;  // training: the newest item of each row's training part,
                                          // which a window of one item has as no input or target
                                          // (BERT4Rec masks it all the same); 0 for filler rows
  int64_t real_rows = 0;             // rows that hold a user; the rest are filler

  // Shapes the batch to [rows, T] and zeroes everything (all rows filler), keeping capacity.
  void reset(int64_t n_rows, int64_t window, bool with_timestamps);
};

// A permutation of 0..n-1 that is a pure function of (seed, epoch): Fisher-Yates driven by Philox
// streams, so resuming training at an epoch replays exactly the order an uninterrupted run saw.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// What a model trains on in a window: the next item at each position (SASRec, HSTU), which a user
// with a single training item does not give, or masked items of the window (BERT4Rec's cloze task),
// which every user does.
enum class TrainingTargets { next_items, masked_items };

class TrainBatcher {
 public:
  // Keeps a reference: the dataset must outlive the batcher. Starts at epoch 0. Refuses data that
  // gives no training target of the kind `targets` names.
  TrainBatcher(const SequenceDataset& ds, int64_t T, int64_t batch_size, uint64_t seed,
               TrainingTargets targets = TrainingTargets::next_items);
  TrainBatcher(SequenceDataset&&, int64_t, int64_t, uint64_t, TrainingTargets = TrainingTargets::next_items) = delete;

  int64_t batches_per_epoch() const;  // ceil(users / batch_size)
  int64_t batch_size() const { return batch_size_; }
  int64_t T() const { return T_; }
  int64_t epoch() const { return epoch_; }

  // Shuffles the users for this epoch (order = epoch_permutation(users, seed, epoch)).
  void start_epoch(int64_t epoch);
  // Fills the next batch of the epoch (always batch_size rows); false once the epoch is done.
  bool next(Batch& batch);

 private:
  const SequenceDataset* ds_;
  int64_t T_;
  int64_t batch_size_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t cursor_ = 0;             // next position in order_
  std::vector<int64_t> order_;     // dataset rows in this epoch's order
  std::vector<int64_t> train_length_;
};

// Evaluation batches for a leave-one-out split: ids = the last T items of the input history
// (left-padded), targets[r*T + T-1] = the held-out item; rows in dataset order, same fixed batch
// size with filler rows. The evaluator finds the full history (to filter seen items) through
// user_rows and LeaveOneOut::example.
std::vector<Batch> make_eval_batches(const SequenceDataset& ds, EvalSplit split, int64_t T, int64_t batch_size);
// The same windows for any examples: the last T items of each example's input prefix, right-aligned,
// its target (0: none, when recommending after a whole history) at the last position.
std::vector<Batch> make_window_batches(const SequenceDataset& ds, const std::vector<EvalExample>& examples, int64_t T,
                                       int64_t batch_size);

}  // namespace muonrec::data

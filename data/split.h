// Leave-one-out split (reference/MODELS.md, evaluation protocol): for each user the last item is
// the test target, the one before it the validation target, the rest is training data. Every part
// is a prefix of the user's sequence, so the split is described by lengths, never copied.
//
//   sequence   s[0] ... s[L-3] | s[L-2] | s[L-1]
//   train      s[0 .. L-2)
//   validation input s[0 .. L-2), target s[L-2]
//   test       input s[0 .. L-1), target s[L-1]
//
// Timestamps, where the dataset has them, use the same prefixes of timestamps[row].
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/data/dataset.h"

namespace muonrec::data {

enum class EvalSplit { Validation, Test };
const char* split_name(EvalSplit split);

// One evaluation case: the input history is sequences[row][0 .. input_length) (and the same prefix
// of timestamps[row]); target is the held-out item.
struct EvalExample {
  int64_t row;
  int64_t target;
  int64_t input_length = 0;
};

struct LeaveOneOut {
  // Events a user needs: one to train on, one to validate, one to test.
  static constexpr int64_t kMinEvents = 3;

  // Length of the training prefix (L - 2). Throws if the user has fewer than kMinEvents events.
  static int64_t train_length(const SequenceDataset& ds, int64_t row);
  static std::vector<int64_t> train_items(const SequenceDataset& ds, int64_t row);
  static EvalExample example(const SequenceDataset& ds, int64_t row, EvalSplit split);
  // One example per row, in dataset order.
  static std::vector<EvalExample> examples(const SequenceDataset& ds, EvalSplit split);
};

// How often each item occurs in the training parts: [n_items + 1], index 0 (padding) is 0. The
// most-popular baseline and popularity-based negative sampling read this; held-out items are not
// counted so they cannot leak.
std::vector<int64_t> item_popularity(const SequenceDataset& ds);

}  // namespace muonrec::data

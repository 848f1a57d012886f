#include "muonrec/data/split.h"

#include "muonrec/engine/error.h"

namespace muonrec::data {

const char* split_name(EvalSplit split) { return split == EvalSplit::Validation ? "validation" : "test"; }

int64_t LeaveOneOut::train_length(const SequenceDataset& ds, int64_t row) {
  MUONREC_CHECK(row >= 0 && row < ds.num_users(), "row {} is out of range [0, {})", row, ds.num_users());
  const int64_t length = static_cast<int64_t>(ds.sequences[row].size());
  MUONREC_CHECK(length >= kMinEvents,
                "{}: user {} (row {}) has {} events; leave-one-out needs {} (read with min_events_per_user >= {})",
                ds.source, ds.user_name(row), row, length, kMinEvents,
                kMinEvents);
  return length - 2;
}

std::vector<int64_t> LeaveOneOut::train_items(const SequenceDataset& ds, int64_t row) {
  const int64_t n = train_length(ds, row);
  const auto& seq = ds.sequences[row];
  return std::vector<int64_t>(seq.begin(), seq.begin() + n);
}

EvalExample LeaveOneOut::example(const SequenceDataset& ds, int64_t row, EvalSplit split) {
  const int64_t input_length = train_length(ds, row) + (split == EvalSplit::Validation ? 0 : 1);
  return EvalExample{row, ds.sequences[row][input_length], input_length};
}

std::vector<EvalExample> LeaveOneOut::examples(const SequenceDataset& ds, EvalSplit split) {
  std::vector<EvalExample> out;
  out.reserve(ds.sequences.size());
  for (int64_t row = 0; row < ds.num_users(); ++row) out.push_back(example(ds, row, split));
  return out;
}

std::vector<int64_t> item_popularity(const SequenceDataset& ds) {
  ds.validate();
  std::vector<int64_t> counts(ds.n_items + 1, 0);
  for (int64_t row = 0; row < ds.num_users(); ++row) {
    const auto& seq = ds.sequences[row];
    const int64_t n = LeaveOneOut::train_length(ds, row);
    for (int64_t i = 0; i < n; ++i) ++counts[seq[i]];
  }
  return counts;
}

}  // namespace muonrec::data

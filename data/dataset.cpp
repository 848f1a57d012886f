#include "muonrec/data/dataset.h"

#include "muonrec/engine/error.h"

namespace muonrec::data {

std::string SequenceDataset::user_name(int64_t row) const {
  MUONREC_CHECK(row >= 0 && row < num_users(), "{}: user row {} is outside 0..{}", source, row, num_users() - 1);
  if (!user_tokens.empty()) return user_tokens.at(static_cast<size_t>(row));
  return std::to_string(user_ids.empty() ? row : user_ids.at(static_cast<size_t>(row)));
}

std::string SequenceDataset::item_name(int64_t item) const {
  MUONREC_CHECK(item >= 0 && item <= n_items, "{}: item {} is outside 0..{}", source, item, n_items);
  if (!item_tokens.empty()) return item_tokens.at(static_cast<size_t>(item));
  return std::to_string(item_source_ids.empty() ? item : item_source_ids.at(static_cast<size_t>(item)));
}

int64_t SequenceDataset::num_events() const {
  int64_t n = 0;
  for (const auto& s : sequences) n += static_cast<int64_t>(s.size());
  return n;
}

void SequenceDataset::validate() const {
  const std::string name = source.empty() ? "dataset" : source;
  MUONREC_CHECK(n_items >= 1, "{}: n_items is {}; items are numbered 1..n_items", name, n_items);
  auto check_size = [&](size_t size, size_t expected, const char* field, const char* of) {
    MUONREC_CHECK(size == 0 || size == expected, "{}: {} has {} entries for {} {}", name, field, size, expected, of);
  };
  check_size(user_ids.size(), sequences.size(), "user_ids", "sequences");
  check_size(user_tokens.size(), sequences.size(), "user_tokens", "sequences");
  check_size(item_source_ids.size(), static_cast<size_t>(n_items + 1), "item_source_ids", "item ids 0..n_items");
  check_size(item_tokens.size(), static_cast<size_t>(n_items + 1), "item_tokens", "item ids 0..n_items");
  check_size(timestamps.size(), sequences.size(), "timestamps", "sequences");
  // user_name needs the tables checked above.
  for (int64_t row = 0; row < num_users(); ++row) {
    const std::vector<int64_t>& seq = sequences[row];
    for (size_t t = 0; t < seq.size(); ++t)
      MUONREC_CHECK(seq[t] >= 1 && seq[t] <= n_items,
                    "{}: user {} (row {}) has item {} at position {}; items are 1..{} (0 is padding)", name,
                    user_name(row), row, seq[t], t, n_items);
    if (has_timestamps())
      MUONREC_CHECK(timestamps[row].size() == seq.size(), "{}: user {} (row {}) has {} timestamps for {} items", name,
                    user_name(row), row, timestamps[row].size(), seq.size());
  }
}

}  // namespace muonrec::data

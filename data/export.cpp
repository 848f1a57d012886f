#include "data/export.h"

#include <fmt/format.h>

#include <fstream>

#include "engine/error.h"

namespace muonrec::data {
namespace {

// An output file that says which file failed, when opening or when the writes end.
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)), out_(path_) {
    MUONREC_CHECK(out_.good(), "prepare: cannot write {}", path_);
  }
  std::ofstream& stream() { return out_; }
  std::string close() {
    out_.close();
    MUONREC_CHECK(!out_.fail(), "prepare: writing {} failed", path_);
    return path_;
  }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace

std::vector<std::string> write_prepared_dataset(const SequenceDataset& dataset, const std::string& prefix) {
  MUONREC_CHECK(!prefix.empty(), "prepare: the output prefix is empty");
  std::vector<std::string> written;
  OutputFile sequences(prefix + ".txt");
  for (int64_t row = 0; row < dataset.num_users(); ++row) {
    std::ofstream& out = sequences.stream();
    out << row + 1;
    for (int64_t item : dataset.sequences[row]) out << ' ' << item;
    out << '\n';
  }
  written.push_back(sequences.close());
  if (dataset.has_timestamps()) {
    OutputFile inter(prefix + ".inter");
    inter.stream() << "user_id:token\titem_id:token\ttimestamp:float\n";
    for (int64_t row = 0; row < dataset.num_users(); ++row)
      for (size_t i = 0; i < dataset.sequences[row].size(); ++i)
        inter.stream() << row + 1 << '\t' << dataset.sequences[row][i] << '\t' << dataset.timestamps[row][i] << '\n';
    written.push_back(inter.close());
  }
  OutputFile users(prefix + "_users.tsv");
  users.stream() << "user\tsource\n";
  for (int64_t row = 0; row < dataset.num_users(); ++row)
    users.stream() << row + 1 << '\t' << (dataset.user_ids.empty() ? std::to_string(row + 1) : dataset.user_name(row))
                   << '\n';
  written.push_back(users.close());
  OutputFile items(prefix + "_items.tsv");
  items.stream() << "item\tsource\n";
  for (int64_t item = 1; item <= dataset.n_items; ++item)
    items.stream() << item << '\t'
                   << (dataset.item_source_ids.empty() ? std::to_string(item) : dataset.item_name(item)) << '\n';
  written.push_back(items.close());
  return written;
}

}  // namespace muonrec::data

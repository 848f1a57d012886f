#include "muonrec/data/export.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"

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

PreparedFiles write_prepared_dataset(const SequenceDataset& dataset, const std::string& prefix,
                                     const std::vector<int64_t>& item_movie_ids,
                                     const std::vector<std::string>& inputs) {
  MUONREC_CHECK(!prefix.empty(), "prepare: the output prefix is empty");
  MUONREC_CHECK(item_movie_ids.empty() || item_movie_ids.size() == static_cast<size_t>(dataset.n_items + 1),
                "prepare: {} MovieIDs given for {} items (expected n_items + 1, index 0 unused)",
                item_movie_ids.size(), dataset.n_items);
  const std::vector<std::string> names = {prefix + ".txt", prefix + ".inter", prefix + "_users.tsv",
                                          prefix + "_items.tsv"};
  std::vector<std::string> read = inputs;
  read.push_back(dataset.source);
  for (const std::string& name : names) check_output_file("prepare: --output", name, read);
  // New ids: the dataset's, or 1..m over the items that have events.
  std::vector<int64_t> new_id(static_cast<size_t>(dataset.n_items + 1), 0);
  for (const std::vector<int64_t>& sequence : dataset.sequences)
    for (int64_t item : sequence) new_id[static_cast<size_t>(item)] = 1;
  PreparedFiles out;
  int64_t m = 0;
  for (int64_t item = 1; item <= dataset.n_items; ++item) new_id[item] = new_id[item] ? ++m : 0;
  out.unused_item_ids = dataset.n_items - m;

  auto user_name = [&](int64_t row) {
    return dataset.user_ids.empty() ? std::to_string(row + 1) : dataset.user_name(row);
  };
  auto item_name = [&](int64_t item) {
    return dataset.item_source_ids.empty() ? std::to_string(item) : dataset.item_name(item);
  };
  // Every name is checked before any file is written: a refusal leaves the prefix's files as they were.
  auto check_tsv_name = [](const std::string& name, const char* what) {
    MUONREC_CHECK(name.find_first_of("\t\r\n") == std::string::npos,
                  "prepare: {} '{}' holds a tab or a line break, which the TSV maps cannot hold", what, name);
  };
  for (int64_t row = 0; row < dataset.num_users(); ++row) check_tsv_name(user_name(row), "user");
  for (int64_t item = 1; item <= dataset.n_items; ++item)
    if (new_id[item] > 0) check_tsv_name(item_name(item), "item");
  OutputFile sequences(names[0]);
  for (int64_t row = 0; row < dataset.num_users(); ++row) {
    std::ofstream& line = sequences.stream();
    line << row + 1;
    for (int64_t item : dataset.sequences[row]) line << ' ' << new_id[item];
    line << '\n';
  }
  out.paths.push_back(sequences.close());
  if (dataset.has_timestamps()) {
    OutputFile inter(names[1]);
    inter.stream() << "user_id:token\titem_id:token\ttimestamp:float\n";
    for (int64_t row = 0; row < dataset.num_users(); ++row)
      for (size_t i = 0; i < dataset.sequences[row].size(); ++i)
        inter.stream() << row + 1 << '\t' << new_id[dataset.sequences[row][i]] << '\t' << dataset.timestamps[row][i]
                       << '\n';
    out.paths.push_back(inter.close());
  } else {
    std::filesystem::remove(names[1]);  // an earlier dataset's: the prefix's files describe one dataset
  }
  OutputFile users(names[2]);
  users.stream() << "user\tsource\n";
  for (int64_t row = 0; row < dataset.num_users(); ++row)
    users.stream() << row + 1 << '\t' << user_name(row) << '\n';
  out.paths.push_back(users.close());
  OutputFile items(names[3]);
  const bool movies = !item_movie_ids.empty();
  items.stream() << (movies ? "item\tsource\tmovie\n" : "item\tsource\n");
  for (int64_t item = 1; item <= dataset.n_items; ++item) {
    if (new_id[item] == 0) continue;
    items.stream() << new_id[item] << '\t' << item_name(item);
    if (movies) items.stream() << '\t' << item_movie_ids[item];
    items.stream() << '\n';
  }
  out.paths.push_back(items.close());
  return out;
}

}  // namespace muonrec::data

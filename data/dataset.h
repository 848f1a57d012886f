// Interaction data as the models see it: one chronological item sequence per user, dense item ids
// 1..n_items with 0 reserved for padding, and where the source has them, timestamps.
//
// Readers (readers.cpp) turn the common public files into this form:
//   pairs      'user item' per line (the SASRec files, e.g. ml-1m.txt), ids already dense 1-based
//   sequences  'user i1 i2 ...' per line (the S3-Rec / TIGER files, e.g. Beauty.txt), same ids
//   ml-dat     MovieLens ratings.dat 'UserID::MovieID::Rating::Timestamp'
//   ml-csv     MovieLens ratings.csv 'userId,movieId,rating,timestamp' with its header line
//   recbole    RecBole atomic .inter files: 'user_id:token item_id:token ... timestamp:float' (recbole.h)
//   csv        any delimited file with a header line, user/item/timestamp columns by name (csv.h)
// Dense files keep their ids (n_items = the largest id, as the PyTorch peer does) so results are
// comparable with published numbers; MovieLens and RecBole ratings become implicit events, ordered by
// time, with item ids remapped densely (as are a dense file's after a k-core, preprocess.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/data/preprocess.h"

namespace muonrec::data {

enum class Format {
  Auto,           // by extension and content, see read_dataset
  UserItemPairs,  // 'user item' per line (SASRec file)
  UserSequences,  // 'user i1 i2 ...' per line
  MovieLensDat,   // UserID::MovieID::Rating::Timestamp
  MovieLensCsv,   // userId,movieId,rating,timestamp with a header line
  RecBoleInter,   // RecBole .inter: tab-separated, a 'name:type' header
  Csv,            // delimited with a header line, columns read by name (csv.h)
};

// "auto", "pairs", "sequences", "ml-dat", "ml-csv", "recbole", "csv"; throws muonrec::Error listing the
// valid names.
Format parse_format(const std::string& name);
const char* format_name(Format format);

// What reading skipped, so the caller can print it: nothing is dropped silently.
struct ReadReport {
  int64_t lines = 0;                 // every line of the file, header and blank lines included
  int64_t blank_lines = 0;
  int64_t users_dropped_short = 0;   // users with fewer than min_events_per_user events
  int64_t events_dropped = 0;        // the events of those users
  int64_t items_dropped_short = 0;   // items of those users no longer in the catalogue (dense ids: only those
                                     // above the largest kept id; the others stay, counted as unused)
  int64_t repeated_events = 0;       // timed files: events with an earlier event's user, item and timestamp
  int64_t min_events_per_user = 0;   // the threshold that was applied
  Preprocessing preprocessing;       // what was asked
  PreprocessReport preprocessed;     // what it removed
  int64_t largest_file_item = 0;     // pairs and sequences files: the largest item id read (0 otherwise)
  int64_t unused_item_ids = 0;       // ids in 1..n_items no kept event has (dense ids kept as they are)
  std::string string_tokens;         // RecBole, CSV: "user", "item" or "user and item" when ids are strings
  // (The fields above are stored in dataset cache entries: a new one goes into data/dataset_cache.cpp too.)
  // What the dataset cache did: "loaded from F", "cached as F", or why it did neither; "" when unused.
  std::string cache_note;
  std::string summary() const;
  bool worth_printing() const;  // something was dropped, renumbered or repeated
};

struct SequenceDataset {
  std::string source;                           // path, or "synthetic(...)"
  Format format = Format::Auto;                 // the format actually read (Auto resolved)
  int64_t n_items = 0;                          // item ids are 1..n_items; 0 is padding, never an item
  std::vector<std::vector<int64_t>> sequences;  // one per user, chronological
  std::vector<std::vector<int64_t>> timestamps; // empty if the source has none, else parallel to sequences
  std::vector<int64_t> user_ids;                // the source's user id of each row, ascending
  std::vector<int64_t> item_source_ids;         // [n_items+1]: source id of each dense id (index 0 unused)
  // Where the source names users or items by strings (RecBole tokens), the names: user_tokens parallel
  // to user_ids, item_tokens [n_items+1] (index 0 empty); the ids above then number the sorted tokens.
  std::vector<std::string> user_tokens, item_tokens;
  ReadReport report;

  int64_t num_users() const { return static_cast<int64_t>(sequences.size()); }
  // How the source names a user (by row) and an item (by dense id): its token, else its source id,
  // else (a dataset built in code without them) the row or the dense id itself.
  std::string user_name(int64_t row) const;
  std::string item_name(int64_t item) const;
  int64_t num_events() const;
  bool has_timestamps() const { return !timestamps.empty(); }
  // Throws an Error naming the source, user and position of the first inconsistency: an item
  // outside 1..n_items, a timestamp row that does not match its sequence, or name tables of the
  // wrong size. The readers' datasets pass; this is for datasets built in code.
  void validate() const;
};

struct ReadOptions {
  Format format = Format::Auto;
  // Leave-one-out needs 3 events (train, validation, test); shorter users are skipped and counted.
  int64_t min_events_per_user = 3;
  Preprocessing preprocessing;  // after time order, before the threshold above
  // Csv: "USER,ITEM[,TIME]" header names ("": user_id, item_id, timestamp); given, the file reads as csv.
  std::string csv_columns;
  // A directory for the binary cache of read datasets (data/dataset_cache.h); "" for none. Files
  // smaller than cache_min_bytes are parsed every time (about as fast as loading them).
  std::string cache_dir;
  size_t cache_min_bytes = size_t{16} << 20;
};

// Reads a whole interaction file. Auto picks the format from the extension (.inter: recbole) and the
// first non-blank line (':token' -> recbole, '::' -> ml-dat, the MovieLens header -> ml-csv, a ',' or
// a .csv file -> csv, a tab or a .tsv file with a field that is no number (a header) -> csv, 2
// fields -> pairs, else sequences; a dense file
// that mixes the two layouts, as a 'user item rating' file would, is refused). Malformed
// input throws muonrec::Error naming the file, the 1-based line and the problem.
SequenceDataset read_dataset(const std::string& path, const ReadOptions& options = {});

}  // namespace muonrec::data

// Readers for the interaction files (formats in dataset.h). The file is memory-mapped and parsed
// with std::from_chars over string_views, users' events are sorted only where out of order and
// filtered in place: ML-1M (1M lines) reads in 0.17 s, 10 million MovieLens lines in 3.7 s (one
// core), where a stream extraction per token would take many times that.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <limits>
#include <new>
#include <string_view>
#include <unordered_map>

#include "muonrec/data/csv.h"
#include "muonrec/data/dataset.h"
#include "muonrec/data/dataset_cache.h"
#include "muonrec/data/recbole.h"
#include "muonrec/data/text_fields.h"
#include "muonrec/engine/error.h"

namespace muonrec::data {

Format parse_format(const std::string& name) {
  if (name == "auto") return Format::Auto;
  if (name == "pairs") return Format::UserItemPairs;
  if (name == "sequences") return Format::UserSequences;
  if (name == "ml-dat") return Format::MovieLensDat;
  if (name == "ml-csv") return Format::MovieLensCsv;
  if (name == "recbole") return Format::RecBoleInter;
  if (name == "csv") return Format::Csv;
  MUONREC_FAIL("unknown data format '{}': valid names are auto, pairs, sequences, ml-dat, ml-csv, recbole, csv",
               name);
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Auto: return "auto";
    case Format::UserItemPairs: return "pairs";
    case Format::UserSequences: return "sequences";
    case Format::MovieLensDat: return "ml-dat";
    case Format::MovieLensCsv: return "ml-csv";
    case Format::RecBoleInter: return "recbole";
    case Format::Csv: return "csv";
  }
  return "?";
}

std::string ReadReport::summary() const {
  const std::string preprocessing = preprocessed.summary(this->preprocessing);
  const std::string unused =
      unused_item_ids == 0 ? ""
                           : fmt::format("; {} item ids below the largest occur in no event but stay candidates "
                                         "(--k-core 1 numbers the items densely)",
                                         unused_item_ids);
  const std::string strings =
      string_tokens.empty() ? "" : fmt::format("; {} ids are strings, numbered in sorted order", string_tokens);
  const std::string lost =
      items_dropped_short == 0 ? "" : fmt::format(", and with them {} items left the catalogue", items_dropped_short);
  const std::string repeated =
      repeated_events == 0
          ? ""
          : fmt::format("; {} events repeat an earlier one's user, item and timestamp{}", repeated_events,
                        this->preprocessing.dedupe ? ""
                                                   : " (kept; --dedupe keeps a user's first event with each item)");
  return fmt::format("{} lines ({} blank){}; {}{}{} users with fewer than {} events skipped ({} events{}){}{}", lines,
                     blank_lines, repeated, preprocessing, preprocessing.empty() ? "" : "; ", users_dropped_short,
                     min_events_per_user, events_dropped, lost, unused, strings);
}

bool ReadReport::worth_printing() const {
  return users_dropped_short > 0 || preprocessing.any() || unused_item_ids > 0 || !string_tokens.empty() ||
         repeated_events > 0;
}

namespace {

// Dense ids index embedding tables directly: an id past this is a typo or a file that needs
// remapping, not a table anyone can allocate.
constexpr int64_t kMaxDenseItemId = std::numeric_limits<int32_t>::max();

constexpr std::string_view kCsvHeader = "userId,movieId,rating,timestamp";

// Dense files: the id is the embedding row, so 0 (padding) and negatives are errors.
int64_t parse_dense_item(std::string_view field, const Where& where) {
  int64_t item = parse_int(field, "item id", where);
  if (item < 1 || item > kMaxDenseItemId)
    where.fail(fmt::format("item id {} is out of range (dense ids are 1..{}; 0 is padding)", quoted(field),
                           kMaxDenseItemId));
  return item;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// MovieLens's ratings.csv header, fields trimmed as parse_movielens_file trims them.
bool is_movielens_csv_header(std::string_view line) {
  std::vector<std::string_view> fields;
  split_on(line, ",", fields);
  return fields.size() == 4 && fields[0] == "userId" && fields[1] == "movieId" && fields[2] == "rating" &&
         fields[3] == "timestamp";
}

bool all_numbers(const std::vector<std::string_view>& fields) {
  return std::all_of(fields.begin(), fields.end(), [](std::string_view f) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), value);
    return ec == std::errc() && end == f.data() + f.size();
  });
}

Format detect_format(const std::string& path, std::string_view text) {
  const std::string extension = lower_extension(path);
  if (extension == ".inter") return Format::RecBoleInter;
  LineCursor cursor(text);
  std::string_view line;
  int64_t number;
  while (cursor.next(line, number)) {
    if (line.empty()) continue;
    if (line.find(":token") != std::string_view::npos) return Format::RecBoleInter;
    if (line.find("::") != std::string_view::npos) return Format::MovieLensDat;
    if (is_movielens_csv_header(line)) return Format::MovieLensCsv;
    // A header line (a field that is no number) makes a csv file, as do commas and semicolons;
    // numbers separated by tabs or spaces are a dense 'user item' or 'user i1 i2 ...' file.
    std::vector<std::string_view> fields;
    split_whitespace(line, fields);
    if (extension == ".csv" || line.find_first_of(",;") != std::string_view::npos) return Format::Csv;
    if ((extension == ".tsv" || line.find('\t') != std::string_view::npos) && !all_numbers(fields)) return Format::Csv;
    return fields.size() == 2 ? Format::UserItemPairs : Format::UserSequences;
  }
  return Format::UserItemPairs;  // no data line: the caller reports the empty file
}

// Under Auto, a 'user item' pairs file and a 'user i1 i2 ...' sequences file may both be read, but
// not a mix of the two: a user on several lines, one of which holds more than one item, is what a
// 'user item rating' or 'user item timestamp' file looks like, whose third column would otherwise
// be read as items.
class DenseLayoutCheck {
 public:
  void add(int64_t user, size_t items_on_line, const Where& where) {
    auto [seen, first_time] = lines_of_user_.try_emplace(user, UserLines{where.line, 0});
    UserLines& lines = seen->second;
    if (items_on_line > 1 && lines.multi_item_line == 0) lines.multi_item_line = where.line;
    if (first_time || lines.multi_item_line == 0) return;
    where.fail(fmt::format("user {} is on line {} too, and line {} holds more than one item: neither 'user item' "
                           "pairs nor one 'user i1 i2 ...' line per user (a column of ratings or timestamps?); name "
                           "--format pairs or --format sequences to read it as one of them",
                           user, lines.first_line, lines.multi_item_line));
  }

 private:
  struct UserLines {
    int64_t first_line;
    int64_t multi_item_line;  // 0: none yet
  };
  std::unordered_map<int64_t, UserLines> lines_of_user_;
};

// 'user item' and 'user i1 i2 ...' lines. Both mean "append these items to the user": a named
// 'sequences' takes any count >= 2 a line, a named 'pairs' exactly 2, and Auto either layout but not
// a mix (DenseLayoutCheck).
void parse_dense_file(const std::string& path, std::string_view text, Format format, std::vector<Event>& events,
                      ReadReport& report, Where& max_item_where, int64_t& max_item) {
  LineCursor cursor(text);
  std::string_view line;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  DenseLayoutCheck layout;
  while (cursor.next(line, number)) {
    if (line.empty()) {
      ++report.blank_lines;
      continue;
    }
    Where where{path, number};
    split_whitespace(line, fields);
    if (format == Format::UserItemPairs && fields.size() != 2)
      where.fail(fmt::format("expected 2 fields (user item), got {}", fields.size()));
    if (fields.size() < 2) where.fail(fmt::format("expected at least 2 fields (user item ...), got {}", fields.size()));
    int64_t user = parse_user(fields[0], where);
    if (format == Format::Auto) layout.add(user, fields.size() - 1, where);
    for (size_t f = 1; f < fields.size(); ++f) {
      int64_t item = parse_dense_item(fields[f], where);
      if (item > max_item) {
        max_item = item;
        max_item_where.line = number;
      }
      events.push_back({user, item, 0});
    }
  }
  report.lines = number;
}

void parse_movielens_file(const std::string& path, std::string_view text, bool csv, std::vector<Event>& events,
                          ReadReport& report) {
  LineCursor cursor(text);
  std::string_view line;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  bool header_seen = !csv;
  const std::string_view delimiter = csv ? "," : "::";
  while (cursor.next(line, number)) {
    if (line.empty()) {
      ++report.blank_lines;
      continue;
    }
    Where where{path, number};
    split_on(line, delimiter, fields);
    if (!header_seen) {
      header_seen = true;
      if (!is_movielens_csv_header(line))
        where.fail(fmt::format("expected the MovieLens header '{}', got {}", kCsvHeader, quoted(line)));
      continue;
    }
    if (fields.size() != 4) {
      where.fail(csv ? fmt::format("expected 4 comma-separated fields ({}), got {}", kCsvHeader, fields.size())
                     : fmt::format("expected 4 fields separated by '::' (UserID::MovieID::Rating::Timestamp), got {}",
                                   fields.size()));
    }
    int64_t user = parse_user(fields[0], where);
    int64_t item = parse_source_item(fields[1], where);
    check_rating(fields[2], where);
    int64_t timestamp = parse_int(fields[3], "timestamp", where);
    events.push_back({user, item, timestamp});
  }
  report.lines = number;
}

// Calls f(begin, end) on each run of consecutive events of one user.
template <typename F>
void for_each_user_run(std::vector<Event>& events, F f) {
  for (auto begin = events.begin(); begin != events.end();) {
    auto end = begin;
    while (end != events.end() && end->user == begin->user) ++end;
    f(begin, end);
    begin = end;
  }
}

// Events with the user, item and timestamp of an earlier one (`events` grouped by user, in time
// order): a file joined to itself, or an export that logged an event twice.
int64_t count_repeated_events(std::vector<Event>& events) {
  int64_t repeated = 0;
  std::vector<int64_t> items;
  for_each_user_run(events, [&](std::vector<Event>::iterator begin, std::vector<Event>::iterator end) {
    for (auto moment = begin; moment != end;) {
      auto moment_end = moment;
      items.clear();
      while (moment_end != end && moment_end->timestamp == moment->timestamp &&
             moment_end->second_fraction == moment->second_fraction)
        items.push_back((moment_end++)->item);
      std::sort(items.begin(), items.end());
      repeated += items.end() - std::unique(items.begin(), items.end());
      moment = moment_end;
    }
  });
  return repeated;
}

// How many of `dropped` (items of users dropped as too short) the catalogue lost: they are not
// among `catalogue_ids` (the kept items' ids, ascending) or, where ids stay as the file has them,
// above the largest kept id.
int64_t count_lost_items(std::vector<int64_t> dropped, const std::vector<int64_t>& catalogue_ids, bool ids_kept) {
  std::sort(dropped.begin(), dropped.end());
  dropped.erase(std::unique(dropped.begin(), dropped.end()), dropped.end());
  const int64_t largest_kept = catalogue_ids.size() > 1 ? catalogue_ids.back() : 0;
  return std::count_if(dropped.begin(), dropped.end(), [&](int64_t item) {
    return ids_kept ? item > largest_kept
                    : !std::binary_search(catalogue_ids.begin() + 1, catalogue_ids.end(), item);
  });
}

// Numbers the events' items 1..n in ascending order of their ids (source ids, 0 included);
// ids[k] receives the id numbered k (ids[0] = 0, unused). Ids from 0 up to a few times the number
// of events (MovieLens movie ids, tokens numbered by tokens.h) are counted in a table indexed by
// id; sparser ones are sorted.
void renumber_items(std::vector<Event>& events, std::vector<int64_t>& ids) {
  int64_t smallest = 0, largest = 0;
  for (const Event& e : events) {
    smallest = std::min(smallest, e.item);
    largest = std::max(largest, e.item);
  }
  ids.assign(1, 0);
  if (smallest >= 0 && largest <= 4 * static_cast<int64_t>(events.size()) + (int64_t{1} << 20)) {
    std::vector<int64_t> number(static_cast<size_t>(largest + 1), 0);
    for (const Event& e : events) number[static_cast<size_t>(e.item)] = 1;
    for (int64_t id = 0; id <= largest; ++id)
      if (number[static_cast<size_t>(id)]) {
        number[static_cast<size_t>(id)] = static_cast<int64_t>(ids.size());
        ids.push_back(id);
      }
    for (Event& e : events) e.item = number[static_cast<size_t>(e.item)];
    return;
  }
  for (const Event& e : events) ids.push_back(e.item);
  std::sort(ids.begin() + 1, ids.end());
  ids.erase(std::unique(ids.begin() + 1, ids.end()), ids.end());
  ids.shrink_to_fit();
  for (Event& e : events) e.item = std::lower_bound(ids.begin() + 1, ids.end(), e.item) - ids.begin();
}

// What `path` reads as: the format asked for; under Auto, csv when --csv-columns names the
// columns (it says what the file is, whatever its first line), else detect_format's answer.
Format format_to_read(const std::string& path, std::string_view text, const ReadOptions& options) {
  if (options.format != Format::Auto) return options.format;
  return options.csv_columns.empty() ? detect_format(path, text) : Format::Csv;
}

// The dataset `text` (the bytes of `path`) holds, read and preprocessed as `options` say.
SequenceDataset parse_dataset(const std::string& path, std::string_view text, const ReadOptions& options) {
  // --csv-columns names a csv file's columns: it says what the file is, whatever its first line.
  const Format format = format_to_read(path, text, options);
  // MovieLens and RecBole files name items by source ids, renumbered below; the others hold dense ids.
  const bool source_ids = format == Format::MovieLensDat || format == Format::MovieLensCsv ||
                          format == Format::RecBoleInter || format == Format::Csv;
  bool timed = format == Format::MovieLensDat || format == Format::MovieLensCsv;

  SequenceDataset ds;
  ds.source = path;
  ds.format = format;
  ds.report.min_events_per_user = options.min_events_per_user;
  ds.report.preprocessing = options.preprocessing;

  std::vector<Event> events;
  // About one event per 8 bytes or more; capped, so that a huge file grows its vector instead of
  // asking for all of it up front.
  events.reserve(std::min<size_t>(text.size() / 8, size_t{1} << 24));
  SourceTokens tokens;
  int64_t max_item = 0;
  Where max_item_where{path, 0};
  MUONREC_CHECK(format == Format::Csv || options.csv_columns.empty(),
                "{}: --csv-columns applies to csv files (this one reads as {})", path, format_name(format));
  if (format == Format::RecBoleInter || format == Format::Csv) {
    timed = format == Format::Csv ? parse_csv_file(path, text, options.csv_columns, events, ds.report, tokens)
                                  : parse_recbole_file(path, text, events, ds.report, tokens);
    ds.report.string_tokens = tokens.string_columns();
  } else if (source_ids) {
    parse_movielens_file(path, text, format == Format::MovieLensCsv, events, ds.report);
  } else {
    parse_dense_file(path, text, options.format, events, ds.report, max_item_where, max_item);
    ds.report.largest_file_item = max_item;
  }
  if (events.empty())
    MUONREC_FAIL("{}: no events ({} lines, {} blank; format {})", path, ds.report.lines, ds.report.blank_lines,
                 format_name(format));

  // An id far past the number of events means the file's ids are not dense: an embedding table
  // that large would be mostly unused rows (or not fit at all).
  const int64_t dense_bound = 10 * static_cast<int64_t>(events.size()) + 1000000;
  if (!source_ids && max_item > dense_bound)
    max_item_where.fail(fmt::format("item id {} is far beyond the {} events of the file: '{}' files need dense "
                                    "1-based item ids",
                                    max_item, events.size(), format_name(format)));

  // Users in ascending id order; timed events by time within a user. Stable, so equal timestamps
  // (and the non-contiguous lines of a file without them) keep file order. Files usually hold each
  // user's lines together already: then only each user's own events are sorted, by time.
  const auto by_user = [](const Event& a, const Event& b) { return a.user < b.user; };
  if (!std::is_sorted(events.begin(), events.end(), by_user))
    std::stable_sort(events.begin(), events.end(), by_user);
  if (timed) {
    for_each_user_run(events, [](std::vector<Event>::iterator begin, std::vector<Event>::iterator end) {
      const auto by_time = [](const Event& a, const Event& b) {
        return a.timestamp != b.timestamp ? a.timestamp < b.timestamp : a.second_fraction < b.second_fraction;
      };
      if (!std::is_sorted(begin, end, by_time)) std::stable_sort(begin, end, by_time);
    });
  }
  if (timed) ds.report.repeated_events = count_repeated_events(events);
  preprocess(events, options.preprocessing, options.min_events_per_user, ds.report.preprocessed);
  if (events.empty())
    MUONREC_FAIL("{}: no events left after {} ({})", path, options.preprocessing.describe(),
                 ds.report.preprocessed.summary(options.preprocessing));

  // Users with too few events are dropped in place (counted in the report, printed by the caller).
  int64_t users_read = 0;
  auto kept_end = events.begin();
  std::vector<int64_t> dropped_items;
  for_each_user_run(events, [&](std::vector<Event>::iterator begin, std::vector<Event>::iterator end) {
    const int64_t count = end - begin;
    ++users_read;
    if (count < options.min_events_per_user) {
      ++ds.report.users_dropped_short;
      ds.report.events_dropped += count;
      for (auto e = begin; e != end; ++e) dropped_items.push_back(e->item);
    } else {
      kept_end = kept_end == begin ? end : std::move(begin, end, kept_end);
    }
  });
  events.erase(kept_end, events.end());
  if (events.empty())
    MUONREC_FAIL("{}: no user has at least {} events ({} users read)", path, options.min_events_per_user,
                 users_read);

  // Item ids: dense files keep theirs (n_items = the largest kept id, as the PyTorch peer) unless a
  // k-core took items out; source ids, and those k-cores, are renumbered 1..n in ascending order of
  // source id.
  std::vector<int64_t>& item_ids = ds.item_source_ids;
  if (source_ids || options.preprocessing.k_core > 0) {
    renumber_items(events, item_ids);
    ds.n_items = static_cast<int64_t>(item_ids.size()) - 1;
  } else {
    for (const Event& e : events) ds.n_items = std::max(ds.n_items, e.item);
    std::vector<char> used(static_cast<size_t>(ds.n_items + 1), 0);
    for (const Event& e : events) used[static_cast<size_t>(e.item)] = 1;
    ds.report.unused_item_ids = ds.n_items - static_cast<int64_t>(std::count(used.begin() + 1, used.end(), 1));
    item_ids.resize(ds.n_items + 1);
    for (int64_t i = 0; i <= ds.n_items; ++i) item_ids[i] = i;
  }
  ds.report.items_dropped_short = count_lost_items(std::move(dropped_items), item_ids,
                                                   !(source_ids || options.preprocessing.k_core > 0));

  for_each_user_run(events, [&](std::vector<Event>::iterator begin, std::vector<Event>::iterator end) {
    ds.user_ids.push_back(begin->user);
    std::vector<int64_t>& seq = ds.sequences.emplace_back();
    seq.reserve(static_cast<size_t>(end - begin));
    for (auto e = begin; e != end; ++e) seq.push_back(e->item);
    if (timed) {
      std::vector<int64_t>& ts = ds.timestamps.emplace_back();
      ts.reserve(static_cast<size_t>(end - begin));
      for (auto e = begin; e != end; ++e) ts.push_back(e->timestamp);
    }
  });
  if (!tokens.users.empty())
    for (int64_t id : ds.user_ids) ds.user_tokens.push_back(tokens.users[static_cast<size_t>(id - 1)]);
  if (!tokens.items.empty()) {
    ds.item_tokens.assign(1, "");
    for (size_t i = 1; i < ds.item_source_ids.size(); ++i)
      ds.item_tokens.push_back(tokens.items[static_cast<size_t>(ds.item_source_ids[i] - 1)]);
  }
  return ds;
}

// read_dataset, but for memory exhaustion, which it reports.
SequenceDataset read_dataset_through_cache(const std::string& path, const ReadOptions& options) {
  const FileText file(path);
  const std::string_view text = file.view();
  refuse_compressed(path, text);
  if (options.cache_dir.empty() || text.size() < options.cache_min_bytes) return parse_dataset(path, text, options);

  // The cache serves what parsing would return; a failure of the cache never fails the read.
  const std::string key = dataset_cache_key(text, options, format_to_read(path, text, options));
  const std::string entry = dataset_cache_path(options.cache_dir, key);
  std::string damaged;
  try {
    if (std::optional<SequenceDataset> cached = load_cached_dataset(entry, key)) {
      cached->source = path;
      cached->report.cache_note = "loaded from the cache " + entry;
      return std::move(*cached);
    }
  } catch (const Error& e) {
    damaged = e.what();
  }
  SequenceDataset ds = parse_dataset(path, text, options);
  try {
    store_cached_dataset(entry, key, ds);
    ds.report.cache_note = (damaged.empty() ? "cached as " : damaged + "; parsed again and rewritten as ") + entry;
  } catch (const Error& e) {
    ds.report.cache_note = fmt::format("{}not cached: {}", damaged.empty() ? "" : damaged + "; ", e.what());
  } catch (const std::bad_alloc&) {  // the entry is built beside the dataset: the read itself succeeded
    ds.report.cache_note = fmt::format("{}not cached: not enough memory to build the entry",
                                       damaged.empty() ? "" : damaged + "; ");
  }
  return ds;
}

}  // namespace

SequenceDataset read_dataset(const std::string& path, const ReadOptions& options) {
  MUONREC_CHECK(options.min_events_per_user >= 0, "min_events_per_user must be >= 0, got {}",
                options.min_events_per_user);
  try {
    return read_dataset_through_cache(path, options);
  } catch (const std::bad_alloc&) {
    std::error_code ec;
    const uintmax_t bytes = std::filesystem::file_size(path, ec);
    MUONREC_FAIL("{}: not enough memory to read its {} as events (about 24 bytes per event while reading)", path,
                 ec ? std::string("contents") : fmt::format("{} bytes", bytes));
  }
}

}  // namespace muonrec::data

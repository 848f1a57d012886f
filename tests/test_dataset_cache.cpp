// The binary dataset cache (data/dataset_cache.h) and the memory-mapped file reading under it:
// a cached read returns exactly what parsing returns, and no change of file, options or entry
// ever serves a stale or damaged result.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "muonrec/data/dataset_cache.h"
#include "muonrec/data/text_fields.h"
#include "test_util.h"

using namespace muonrec;
using namespace muonrec::data;
using testkit::expect_error;
using testkit::TempDir;

namespace {

// A RecBole file with string user and item tokens, timestamps, a repeated event, a short user and
// an item seen once: every part of a dataset and of its read report holds something.
std::string recbole_log() {
  std::string text = "user_id:token\titem_id:token\ttimestamp:float\n";
  for (int u = 0; u < 9; ++u)
    for (int t = 0; t < 4 + u % 3; ++t) text += fmt::format("u{}\tB{:02d}\t{}\n", u, (u * 3 + t * 5) % 11, 500 - t);
  text += "u1\tB01\t900\n";          // u1 sees B01 again
  text += "u2\tB06\t500\n";          // the same event as u2's first, logged twice
  text += "short\tB02\t1\nshort\tB03\t2\n";  // two events: dropped by the 2-core (users need 3)
  text += "\n";
  return text;
}

void expect_same_dataset(const SequenceDataset& a, const SequenceDataset& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.n_items, b.n_items);
  EXPECT_EQ(a.sequences, b.sequences);
  EXPECT_EQ(a.timestamps, b.timestamps);
  EXPECT_EQ(a.user_ids, b.user_ids);
  EXPECT_EQ(a.item_source_ids, b.item_source_ids);
  EXPECT_EQ(a.user_tokens, b.user_tokens);
  EXPECT_EQ(a.item_tokens, b.item_tokens);
  const ReadReport &x = a.report, &y = b.report;
  EXPECT_EQ(x.lines, y.lines);
  EXPECT_EQ(x.blank_lines, y.blank_lines);
  EXPECT_EQ(x.users_dropped_short, y.users_dropped_short);
  EXPECT_EQ(x.events_dropped, y.events_dropped);
  EXPECT_EQ(x.items_dropped_short, y.items_dropped_short);
  EXPECT_EQ(x.repeated_events, y.repeated_events);
  EXPECT_EQ(x.min_events_per_user, y.min_events_per_user);
  EXPECT_EQ(x.preprocessing.dedupe, y.preprocessing.dedupe);
  EXPECT_EQ(x.preprocessing.k_core, y.preprocessing.k_core);
  EXPECT_EQ(x.preprocessed.duplicates_dropped, y.preprocessed.duplicates_dropped);
  EXPECT_EQ(x.preprocessed.k_core_user_minimum, y.preprocessed.k_core_user_minimum);
  EXPECT_EQ(x.preprocessed.k_core_rounds, y.preprocessed.k_core_rounds);
  EXPECT_EQ(x.preprocessed.k_core_users_dropped, y.preprocessed.k_core_users_dropped);
  EXPECT_EQ(x.preprocessed.k_core_items_dropped, y.preprocessed.k_core_items_dropped);
  EXPECT_EQ(x.preprocessed.k_core_events_dropped, y.preprocessed.k_core_events_dropped);
  EXPECT_EQ(x.largest_file_item, y.largest_file_item);
  EXPECT_EQ(x.unused_item_ids, y.unused_item_ids);
  EXPECT_EQ(x.string_tokens, y.string_tokens);
  EXPECT_EQ(x.summary(), y.summary());
}

ReadOptions cached_in(const std::string& dir) {
  ReadOptions options;
  options.cache_dir = dir;
  options.cache_min_bytes = 0;  // the test files are small
  options.preprocessing.dedupe = true;
  options.preprocessing.k_core = 2;
  return options;
}

size_t entries_in(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) n += entry.path().extension() == ".dataset";
  return n;
}

}  // namespace

TEST(DatasetCache, ACachedReadIsTheParsedDataset) {
  TempDir tmp;
  const std::string log = tmp.write("log.inter", recbole_log());
  const std::string cache = tmp.path("cache");
  const ReadOptions options = cached_in(cache);
  ReadOptions uncached = options;
  uncached.cache_dir = "";
  const SequenceDataset parsed = read_dataset(log, uncached);
  ASSERT_FALSE(parsed.user_tokens.empty());
  ASSERT_GT(parsed.report.preprocessed.duplicates_dropped, 0);
  ASSERT_GT(parsed.report.preprocessed.k_core_users_dropped, 0);
  ASSERT_EQ(parsed.report.preprocessed.k_core_user_minimum, 3);
  ASSERT_GT(parsed.report.repeated_events, 0);
  EXPECT_EQ(parsed.report.cache_note, "");

  const SequenceDataset first = read_dataset(log, options);
  EXPECT_EQ(first.report.cache_note.rfind("cached as " + cache + "/", 0), 0u) << first.report.cache_note;
  expect_same_dataset(first, parsed);
  const SequenceDataset second = read_dataset(log, options);
  EXPECT_EQ(second.report.cache_note.rfind("loaded from the cache " + cache + "/", 0), 0u)
      << second.report.cache_note;
  expect_same_dataset(second, parsed);
  EXPECT_EQ(entries_in(cache), 1u);

  // The same bytes elsewhere share the entry, and the dataset names the path it was read from.
  const std::string copy = tmp.write("copy.inter", recbole_log());
  const SequenceDataset from_copy = read_dataset(copy, options);
  EXPECT_EQ(from_copy.source, copy);
  EXPECT_EQ(from_copy.report.cache_note.rfind("loaded from", 0), 0u);
  EXPECT_EQ(entries_in(cache), 1u);

  // A dense file: no timestamps or tokens; the largest id read, ids with no event, short users and
  // the item only a short user had (11), reported.
  ReadOptions dense_options;
  dense_options.cache_dir = cache;
  dense_options.cache_min_bytes = 0;
  const std::string dense = tmp.write("dense.txt", "1 9\n1 2\n1 4\n2 2\n2 4\n2 7\n3 1\n4 11\n");
  const SequenceDataset dense_parsed = read_dataset(dense);
  ASSERT_GT(dense_parsed.report.unused_item_ids, 0);
  ASSERT_EQ(dense_parsed.report.largest_file_item, 11);
  ASSERT_GT(dense_parsed.report.users_dropped_short, 0);
  ASSERT_EQ(dense_parsed.report.items_dropped_short, 1);
  read_dataset(dense, dense_options);
  const SequenceDataset dense_loaded = read_dataset(dense, dense_options);
  EXPECT_EQ(dense_loaded.report.cache_note.rfind("loaded from", 0), 0u);
  expect_same_dataset(dense_loaded, dense_parsed);
}

TEST(DatasetCache, OtherBytesOrOptionsNeverLoadAnotherEntry) {
  TempDir tmp;
  const std::string cache = tmp.path("cache");
  std::string text = recbole_log();
  const std::string log = tmp.write("log.inter", text);
  ReadOptions options = cached_in(cache);
  read_dataset(log, options);

  // One byte changed, same size (what a modification-time check could miss).
  text[text.find("B05")] = 'C';
  tmp.write("log.inter", text);
  ReadOptions uncached = options;
  uncached.cache_dir = "";
  const SequenceDataset changed = read_dataset(log, options);
  EXPECT_EQ(changed.report.cache_note.rfind("cached as", 0), 0u) << changed.report.cache_note;
  expect_same_dataset(changed, read_dataset(log, uncached));

  // Each option that changes the result is part of the key.
  size_t expected_entries = 2;
  for (auto change : std::vector<void (*)(ReadOptions&)>{
           [](ReadOptions& o) { o.preprocessing.k_core = 3; }, [](ReadOptions& o) { o.preprocessing.dedupe = false; },
           [](ReadOptions& o) { o.min_events_per_user = 5; },
           [](ReadOptions& o) { o.csv_columns = "user_id:token,item_id:token,timestamp:float"; }}) {
    ReadOptions other = options;
    change(other);
    ReadOptions other_uncached = other;
    other_uncached.cache_dir = "";
    const SequenceDataset read = read_dataset(log, other);
    EXPECT_EQ(read.report.cache_note.rfind("cached as", 0), 0u) << read.report.cache_note;
    expect_same_dataset(read, read_dataset(log, other_uncached));
    EXPECT_EQ(entries_in(cache), ++expected_entries);
  }
  EXPECT_NE(dataset_cache_key(text, options, Format::RecBoleInter),
            dataset_cache_key(text + "\n", options, Format::RecBoleInter));

  // Under --format auto the file's name can decide its format: the same bytes under a name that
  // reads otherwise are parsed (and refused here), not served from the other name's entry.
  const std::string pairs = tmp.write("pairs.txt", "1 5\n1 6\n1 7\n2 5\n2 6\n2 8\n");
  ReadOptions plain;
  plain.cache_dir = cache;
  plain.cache_min_bytes = 0;
  EXPECT_EQ(read_dataset(pairs, plain).format, Format::UserItemPairs);
  std::filesystem::copy_file(pairs, tmp.path("pairs.inter"));
  expect_error([&] { read_dataset(tmp.path("pairs.inter"), plain); }, {"pairs.inter"});
}

TEST(DatasetCache, DamagedEntriesAreParsedAgainAndRewritten) {
  TempDir tmp;
  const std::string cache = tmp.path("cache");
  const std::string log = tmp.write("log.inter", recbole_log());
  const ReadOptions options = cached_in(cache);
  const SequenceDataset parsed = read_dataset(log, options);
  const std::string key = dataset_cache_key(read_whole_file(log), options, Format::RecBoleInter);
  const std::string entry = dataset_cache_path(cache, key);
  ASSERT_TRUE(std::filesystem::exists(entry));
  const auto full_size = std::filesystem::file_size(entry);

  std::filesystem::resize_file(entry, full_size - 9);  // truncated
  expect_error([&] { load_cached_dataset(entry, key); }, {entry, "damaged dataset cache entry"});
  const SequenceDataset reread = read_dataset(log, options);
  EXPECT_NE(reread.report.cache_note.find("damaged dataset cache entry"), std::string::npos);
  EXPECT_NE(reread.report.cache_note.find("parsed again and rewritten as " + entry), std::string::npos);
  expect_same_dataset(reread, parsed);
  EXPECT_EQ(std::filesystem::file_size(entry), full_size);
  EXPECT_EQ(read_dataset(log, options).report.cache_note, "loaded from the cache " + entry);

  // One value changed: the checksum fails.
  auto patch_entry = [&](size_t offset, uint64_t value, bool fix_checksum) {
    std::string bytes = read_whole_file(entry);
    std::memcpy(&bytes[offset], &value, sizeof(value));
    if (fix_checksum) {
      const uint64_t checksum = content_hash(std::string_view(bytes).substr(24));
      std::memcpy(&bytes[16], &checksum, sizeof(checksum));
    }
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << bytes;
  };
  // After the magic (16 bytes) and the checksum (8): the key, the source and the format name (each
  // a length and its bytes), the item count, then the count of the sequences' lengths.
  const size_t users_count_at = 24 + 8 + key.size() + 8 + log.size() + 8 + std::string("recbole").size() + 8;
  patch_entry(users_count_at + 8, 123456789, /*fix_checksum=*/false);  // the first user's length
  const SequenceDataset after_flip = read_dataset(log, options);
  EXPECT_NE(after_flip.report.cache_note.find("checksum does not match"), std::string::npos)
      << after_flip.report.cache_note;
  expect_same_dataset(after_flip, parsed);
  // A count far past the entry's size (checksum made to match) is refused before anything is
  // allocated for it.
  patch_entry(users_count_at, uint64_t{1} << 56, /*fix_checksum=*/true);
  expect_error([&] { load_cached_dataset(entry, key); }, {"damaged dataset cache entry", "truncated"});
  expect_same_dataset(read_dataset(log, options), parsed);
  // Lengths one short of the values (checksum made to match): the rows would shift by an item.
  patch_entry(users_count_at + 8, parsed.sequences[0].size() - 1, /*fix_checksum=*/true);
  expect_error([&] { load_cached_dataset(entry, key); },
               {"damaged dataset cache entry", "values left over after the last row"});
  expect_same_dataset(read_dataset(log, options), parsed);

  std::ofstream(entry, std::ios::binary) << "something else entirely";
  const SequenceDataset over_garbage = read_dataset(log, options);
  EXPECT_NE(over_garbage.report.cache_note.find("not a dataset cache entry"), std::string::npos);
  expect_same_dataset(over_garbage, parsed);

  // An entry of another key under the same name is a miss, not an error.
  EXPECT_FALSE(load_cached_dataset(entry, "another key").has_value());
  EXPECT_FALSE(load_cached_dataset(tmp.path("absent.dataset"), "key").has_value());
}

TEST(DatasetCache, ACacheThatCannotBeWrittenLeavesTheReadAlone) {
  TempDir tmp;
  const std::string log = tmp.write("log.inter", recbole_log());
  const std::string blocker = tmp.write("blocker", "a file where the cache directory would be");
  const SequenceDataset ds = read_dataset(log, cached_in(blocker + "/cache"));
  EXPECT_EQ(ds.report.cache_note.rfind("not cached: cannot create the dataset cache directory", 0), 0u)
      << ds.report.cache_note;
  EXPECT_EQ(ds.num_users(), 9);
}

// Writers of one entry at once (threads of one process share a pid) each write a file of their own
// and move it into place: none fails, and the entry that stays is whole.
TEST(DatasetCache, WritersOfOneEntryAtOnceDoNotCollide) {
  TempDir tmp;
  const std::string log = tmp.write("log.inter", recbole_log());
  ReadOptions uncached = cached_in("");
  const SequenceDataset ds = read_dataset(log, uncached);
  const std::string entry = tmp.path("cache/one.dataset");
  for (int round = 0; round < 10; ++round) {
    std::vector<std::string> failures(4);
    std::vector<std::thread> writers;
    for (std::string& failure : failures)
      writers.emplace_back([&, out = &failure] {
        try {
          store_cached_dataset(entry, "key", ds);
        } catch (const std::exception& e) {
          *out = e.what();
        }
      });
    for (std::thread& writer : writers) writer.join();
    for (const std::string& failure : failures) ASSERT_EQ(failure, "") << "round " << round;
    const std::optional<SequenceDataset> stored = load_cached_dataset(entry, "key");
    ASSERT_TRUE(stored.has_value()) << "round " << round;
    EXPECT_EQ(stored->sequences, ds.sequences);
  }
  EXPECT_EQ(entries_in(tmp.path("cache")), 1u);  // and no temporary file left behind
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path("cache")), {}), 1);
}

// A cached entry holds what the readers returned when it was written, and only the version in its
// key keeps a newer engine from loading it. So the readers' output on files of every format is
// pinned to the version: a change to what they return fails here until the version is bumped.
TEST(DatasetCache, TheReadersOutputIsPinnedToTheCacheVersion) {
  TempDir tmp;
  ReadOptions plain = cached_in("");
  plain.preprocessing = {};
  const std::vector<std::pair<std::string, ReadOptions>> reads = {
      {tmp.write("log.inter", recbole_log()), cached_in("")},
      {tmp.write("log2.inter", recbole_log()), plain},
      {tmp.write("pairs.txt", "1 3\n1 2\n1 3\n2 5\n2 1\n2 4\n3 2\n3 2\n3 9\n"), plain},
      {tmp.write("ratings.dat", "1::20::5::978300760\n1::10::3::978300700\n1::30::4::978300700\n"
                                "2::10::4::978300800\n2::40::2::978300900\n2::20::1::978301000\n"),
       plain},
      {tmp.write("events.csv", "user_id,item_id,timestamp\n\"a, b\",x,2014-03-05T10:00:00.5+01:00\n"
                               "\"a, b\",y,2014-03-05T09:00:00.25Z\n\"a, b\",z,1394010000.75\nc,y,2\nc,x,1\nc,z,3\n"),
       plain},
  };
  std::string outputs;
  for (const auto& [path, options] : reads) {
    const SequenceDataset ds = read_dataset(path, options);
    outputs += fmt::format("{} {}\n", format_name(ds.format), ds.n_items);
    for (size_t u = 0; u < ds.sequences.size(); ++u)
      outputs += fmt::format("{}: {} @ {}\n", ds.user_ids[u], fmt::join(ds.sequences[u], " "),
                             fmt::join(ds.timestamps.empty() ? std::vector<int64_t>{} : ds.timestamps[u], " "));
    outputs += fmt::format("{} | {} | {}\n{}\n", fmt::join(ds.item_source_ids, " "), fmt::join(ds.user_tokens, " "),
                           fmt::join(ds.item_tokens, " "), ds.report.summary());
  }
  const std::string advice =
      "the readers' output changed: bump kCacheVersion in data/dataset_cache.cpp (saying why), then pin the new "
      "version and hash here. The output:\n" + outputs;
  EXPECT_EQ(dataset_cache_version(), 5) << advice;
  EXPECT_EQ(fmt::format("{:016x}", content_hash(outputs)), "f2df5b2c966d24a2") << advice;
}

TEST(DatasetCache, SmallFilesAreNotCached) {
  TempDir tmp;
  const std::string log = tmp.write("log.inter", recbole_log());
  ReadOptions options = cached_in(tmp.path("cache"));
  options.cache_min_bytes = recbole_log().size() + 1;
  EXPECT_EQ(read_dataset(log, options).report.cache_note, "");
  EXPECT_FALSE(std::filesystem::exists(tmp.path("cache")));
}

TEST(DatasetCache, TheCommandLineCacheDirectory) {
  struct Restore {
    std::string name;
    std::optional<std::string> value;
    ~Restore() { value ? ::setenv(name.c_str(), value->c_str(), 1) : ::unsetenv(name.c_str()); }
  };
  std::vector<Restore> restore;
  for (const char* name : {"MUONREC_DATA_CACHE", "XDG_CACHE_HOME", "HOME"}) {
    const char* value = std::getenv(name);
    restore.push_back({name, value ? std::optional<std::string>(value) : std::nullopt});
  }
  ::setenv("HOME", "/home/someone", 1);
  ::unsetenv("XDG_CACHE_HOME");
  ::unsetenv("MUONREC_DATA_CACHE");
  EXPECT_EQ(default_dataset_cache_dir(), "/home/someone/.cache/muonrec/data");
  ::setenv("XDG_CACHE_HOME", "/var/cache/me", 1);
  EXPECT_EQ(default_dataset_cache_dir(), "/var/cache/me/muonrec/data");
  ::setenv("MUONREC_DATA_CACHE", "/scratch/datasets", 1);
  EXPECT_EQ(default_dataset_cache_dir(), "/scratch/datasets");
  for (const char* off : {"off", "0", "none", "no", "false"}) {  // not a directory called "0"
    ::setenv("MUONREC_DATA_CACHE", off, 1);
    EXPECT_EQ(default_dataset_cache_dir(), "") << off;
  }
}

TEST(FileText, MapsFilesAndDropsAByteOrderMark) {
  TempDir tmp;
  EXPECT_EQ(FileText(tmp.write("plain.txt", "1 2\n1 3\n")).view(), "1 2\n1 3\n");
  EXPECT_EQ(FileText(tmp.write("bom.txt", "\xEF\xBB\xBF" "1 2\n")).view(), "1 2\n");
  EXPECT_EQ(FileText(tmp.write("empty.txt", "")).view(), "");
  EXPECT_EQ(read_whole_file(tmp.path("bom.txt")), "1 2\n");
  expect_error([&] { FileText text(tmp.path("absent.txt")); }, {"cannot open", "absent.txt"});
  expect_error([&] { FileText text(tmp.path("")); }, {"it is a directory"});
}

TEST(FileText, ReadsWhatCannotBeMapped) {
  TempDir tmp;
  const std::string fifo = tmp.path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(fifo) << "7 8\n7 9\n"; });
  const FileText text(fifo);
  writer.join();
  EXPECT_EQ(text.view(), "7 8\n7 9\n");
}

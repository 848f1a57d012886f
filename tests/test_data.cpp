// Data module: readers (every format, bad input), leave-one-out split, batchers, synthetic data,
// and the real benchmark files when shared/ is present. Test files are written by the tests into a
// fresh temporary directory; nothing from shared/data is copied.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "muonrec/data/batcher.h"
#include "muonrec/data/dataset.h"
#include "muonrec/data/export.h"
#include "muonrec/data/split.h"
#include "muonrec/data/synthetic.h"
#include "muonrec/data/text_fields.h"
#include "muonrec/data/tokens.h"
#include "muonrec/engine/error.h"
#include "test_util.h"

namespace muonrec::data {
namespace {

namespace fs = std::filesystem;
using Seqs = std::vector<std::vector<int64_t>>;
using Ids = std::vector<int64_t>;

using testkit::expect_error;
using testkit::TempDir;

void expect_read_error(const std::string& path, Format format, const std::vector<std::string>& parts) {
  ReadOptions options;
  options.format = format;
  std::vector<std::string> all = parts;
  all.push_back(path);
  expect_error([&] { read_dataset(path, options); }, all);
}

SequenceDataset read_as(const std::string& path, Format format, int64_t min_events = 3) {
  ReadOptions options;
  options.format = format;
  options.min_events_per_user = min_events;
  return read_dataset(path, options);
}

SequenceDataset read_preprocessed(const std::string& path, Preprocessing preprocessing, int64_t min_events = 1) {
  ReadOptions options;
  options.preprocessing = preprocessing;
  options.min_events_per_user = min_events;
  return read_dataset(path, options);
}

// ---------------------------------------------------------------------------------------------
// Readers

TEST(DataReaders, PairsFileKeepsIdsAndAppendsNonContiguousLines) {
  TempDir tmp;
  // Users out of order and interleaved: rows come out ascending, items in file order.
  const std::string path = tmp.write("pairs.txt", "3 2\n1 1\n1 2\n2 3\n1 4\n2 1\n3 3\n2 5\n3 4\n");
  for (Format format : {Format::UserItemPairs, Format::Auto}) {
    const SequenceDataset ds = read_as(path, format);
    EXPECT_EQ(ds.format, Format::UserItemPairs);
    EXPECT_EQ(ds.source, path);
    EXPECT_EQ(ds.user_ids, (Ids{1, 2, 3}));
    EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 4}, {3, 1, 5}, {2, 3, 4}}));
    EXPECT_EQ(ds.n_items, 5);
    EXPECT_EQ(ds.item_source_ids, (Ids{0, 1, 2, 3, 4, 5}));
    EXPECT_FALSE(ds.has_timestamps());
    EXPECT_EQ(ds.num_events(), 9);
    EXPECT_EQ(ds.report.lines, 9);
    EXPECT_EQ(ds.report.blank_lines, 0);
    EXPECT_EQ(ds.report.users_dropped_short, 0);
  }
}

TEST(DataReaders, SequencesFile) {
  TempDir tmp;
  const std::string path = tmp.write("seqs.txt", "2 5 6 7\n1 1 2 3 4 9\t8\n");
  for (Format format : {Format::UserSequences, Format::Auto}) {
    const SequenceDataset ds = read_as(path, format);
    EXPECT_EQ(ds.format, Format::UserSequences);
    EXPECT_EQ(ds.user_ids, (Ids{1, 2}));
    EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 3, 4, 9, 8}, {5, 6, 7}}));
    EXPECT_EQ(ds.n_items, 9);
    EXPECT_EQ(ds.item_source_ids.size(), 10u);
    EXPECT_EQ(ds.item_source_ids[9], 9);
  }
  // A user's sequence continued on a second line is read when the format is named (Auto refuses the
  // layout, which a 'user item rating' table shares: AutoRefusesAThirdColumnReadAsItems).
  const std::string continued = tmp.write("continued.txt", "2 5 6 7\n1 1 2 3 4\n1 9\t8\n");
  EXPECT_EQ(read_as(continued, Format::UserSequences).sequences, (Seqs{{1, 2, 3, 4, 9, 8}, {5, 6, 7}}));
}

TEST(DataReaders, MovieLensDatSortsByTimeAndRemapsItems) {
  TempDir tmp;
  // User 7's events out of time order, with a tie (items 20 then 5 at t=300: file order kept).
  const std::string path = tmp.write("ratings.dat",
                                     "7::20::5::300\n"
                                     "7::100::3::100\n"
                                     "7::5::4::300\n"
                                     "7::10::1::200\n"
                                     "2::5::2::50\n"
                                     "2::10::5::40\n"
                                     "2::100::4::60\n");
  for (Format format : {Format::MovieLensDat, Format::Auto}) {
    const SequenceDataset ds = read_as(path, format);
    EXPECT_EQ(ds.format, Format::MovieLensDat);
    EXPECT_EQ(ds.user_ids, (Ids{2, 7}));
    EXPECT_EQ(ds.n_items, 4);
    EXPECT_EQ(ds.item_source_ids, (Ids{0, 5, 10, 20, 100}));  // dense ids by ascending source id
    // Source ids: user 2: 10, 5, 100; user 7: 100, 10, 20, 5.
    EXPECT_EQ(ds.sequences, (Seqs{{2, 1, 4}, {4, 2, 3, 1}}));
    EXPECT_EQ(ds.timestamps, (Seqs{{40, 50, 60}, {100, 200, 300, 300}}));
  }
}

TEST(DataReaders, SparseSourceIdsNumberLikeCompactOnes) {
  // Item ids far beyond the number of events are numbered by sorting, compact ones by a table:
  // the same events must come out the same either way. Users interleaved, times tied.
  TempDir tmp;
  const int64_t sparse = 1000000007;
  std::string compact_text, sparse_text;
  for (int e = 0; e < 60; ++e) {  // item 0 is a MovieLens id like any other
    const int user = 1 + (e * 7) % 5, item = (e * 13) % 17, time = 100 + (e * 11) % 6;
    compact_text += fmt::format("{}::{}::3::{}\n", user, item, time);
    sparse_text += fmt::format("{}::{}::3::{}\n", user, item * sparse, time);
  }
  const SequenceDataset compact = read_dataset(tmp.write("compact.dat", compact_text));
  const SequenceDataset spread = read_dataset(tmp.write("sparse.dat", sparse_text));
  EXPECT_EQ(spread.sequences, compact.sequences);
  EXPECT_EQ(spread.timestamps, compact.timestamps);
  EXPECT_EQ(spread.n_items, 17);
  EXPECT_EQ(compact.n_items, 17);
  EXPECT_EQ(compact.item_source_ids[1], 0);
  ASSERT_EQ(spread.item_source_ids.size(), compact.item_source_ids.size());
  for (size_t i = 1; i < compact.item_source_ids.size(); ++i)
    EXPECT_EQ(spread.item_source_ids[i], compact.item_source_ids[i] * sparse);
}

TEST(DataReaders, MovieLensCsvWithHeader) {
  TempDir tmp;
  const std::string content =
      "userId,movieId,rating,timestamp\n"
      "1,31,2.5,1260759144\n"
      "1,1029,3.0,1260759179\n"
      "1,1061,3.0,1260759182\n"
      "1,1129,2.0,1260759185\n"
      "1,1172,4.0,1260759105\n"
      "5,31,4,1000\n"
      "5,2,0.5,999\n"
      "5,1172,5.0,1001\n";
  const std::string path = tmp.write("ratings.csv", content);
  for (Format format : {Format::MovieLensCsv, Format::Auto}) {
    const SequenceDataset ds = read_as(path, format);
    EXPECT_EQ(ds.format, Format::MovieLensCsv);
    EXPECT_EQ(ds.user_ids, (Ids{1, 5}));
    EXPECT_EQ(ds.item_source_ids, (Ids{0, 2, 31, 1029, 1061, 1129, 1172}));
    EXPECT_EQ(ds.n_items, 6);
    EXPECT_EQ(ds.sequences, (Seqs{{6, 2, 3, 4, 5}, {1, 2, 6}}));
    EXPECT_EQ(ds.timestamps, (Seqs{{1260759105, 1260759144, 1260759179, 1260759182, 1260759185}, {999, 1000, 1001}}));
    EXPECT_EQ(ds.report.lines, 9);
  }
  // Auto recognises the content without the extension too, and a UTF-8 byte order mark is fine.
  EXPECT_EQ(read_dataset(tmp.write("ratings_copy.txt", content)).format, Format::MovieLensCsv);
  EXPECT_EQ(read_dataset(tmp.write("bom.csv", "\xEF\xBB\xBF" + content)).n_items, 6);
}

TEST(DataReaders, CrlfTrailingWhitespaceAndBlankLines) {
  TempDir tmp;
  const std::string path = tmp.write("crlf.txt", "\r\n1 1\r\n\r\n1 2  \r\n   \r\n1 3\t\r\n\n");
  const SequenceDataset ds = read_dataset(path);
  EXPECT_EQ(ds.format, Format::UserItemPairs);
  EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 3}}));
  EXPECT_EQ(ds.report.lines, 7);
  EXPECT_EQ(ds.report.blank_lines, 4);
  // The same for the CSV reader, and a last line without a newline.
  const SequenceDataset csv =
      read_dataset(tmp.write("crlf.csv", "userId,movieId,rating,timestamp\r\n\r\n1,5,4.0,2\r\n1,6,4.0,1\r\n1,7,1,3"));
  EXPECT_EQ(csv.sequences, (Seqs{{2, 1, 3}}));
  EXPECT_EQ(csv.report.blank_lines, 1);
  EXPECT_EQ(csv.report.lines, 5);
  // Old Mac line endings (a lone CR) end lines too: not one long line of user and item ids.
  const SequenceDataset cr = read_dataset(tmp.write("cr.txt", "1 1\r1 2\r\r1 3\r2 4\r2 5\r2 6\r"));
  EXPECT_EQ(cr.sequences, (Seqs{{1, 2, 3}, {4, 5, 6}}));
  EXPECT_EQ(cr.report.lines, 7);
  EXPECT_EQ(cr.report.blank_lines, 1);
  // A CRLF file converted twice ends its lines with "\r\r\n": one line each, as an editor shows them.
  expect_read_error(tmp.write("crcrlf.txt", "1 1\r\r\n1 2\r\r\n1 x\r\r\n"), Format::Auto,
                    {"line 3:", "non-numeric item id 'x'"});
  EXPECT_EQ(read_dataset(tmp.write("crcrlf_ok.txt", "1 1\r\r\n1 2\r\r\n1 3\r\r\n")).report.lines, 3);
}

TEST(DataReaders, ShortUsersAreDroppedAndCounted) {
  TempDir tmp;
  const std::string path = tmp.write("short.txt", "1 1\n1 2\n1 3\n2 4\n2 5\n3 1\n3 2\n3 3\n3 4\n");
  const SequenceDataset ds = read_dataset(path);
  EXPECT_EQ(ds.user_ids, (Ids{1, 3}));
  EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 3}, {1, 2, 3, 4}}));
  EXPECT_EQ(ds.report.users_dropped_short, 1);
  EXPECT_EQ(ds.report.events_dropped, 2);
  EXPECT_EQ(ds.n_items, 4);  // item 5 only belonged to the dropped user: the catalogue lost it
  EXPECT_EQ(ds.report.items_dropped_short, 1);
  EXPECT_NE(ds.report.summary().find("1 users with fewer than 3 events skipped (2 events, and with them 1 items left "
                                     "the catalogue)"),
            std::string::npos)
      << ds.report.summary();
  // A lower threshold keeps them.
  EXPECT_EQ(read_as(path, Format::Auto, 1).num_users(), 3);
  // Dropped users' items are not remapped in MovieLens files.
  const SequenceDataset ml = read_dataset(tmp.write("short.dat", "1::50::1::1\n2::7::1::1\n2::8::1::2\n2::9::1::3\n"));
  EXPECT_EQ(ml.item_source_ids, (Ids{0, 7, 8, 9}));
  EXPECT_EQ(ml.report.items_dropped_short, 1);  // movie 50
  // Ids that stay as the file has them lose only those above the largest kept id: item 1 of user 2
  // stays a candidate (counted as unused), item 9 is gone.
  const SequenceDataset dense = read_dataset(tmp.write("short_dense.txt", "2 1\n2 9\n3 2\n3 3\n3 4\n"));
  EXPECT_EQ(dense.n_items, 4);
  EXPECT_EQ(dense.report.items_dropped_short, 1);
  EXPECT_EQ(dense.report.unused_item_ids, 1);
}

TEST(DataReaders, RepeatedEventsAreCounted) {
  TempDir tmp;
  // User 1 logs movie 10 three times at t=100; movie 20 twice at t=200, around movie 30 at the same
  // moment; movie 10 again at t=300 is a new event. Three events repeat an earlier one.
  const std::string path = tmp.write("repeats.dat", "1::10::5::100\n1::10::5::100\n1::20::4::200\n1::30::4::200\n"
                                                    "1::20::4::200\n1::10::5::100\n1::10::5::300\n");
  const SequenceDataset kept = read_dataset(path);
  EXPECT_EQ(kept.num_events(), 7);
  EXPECT_EQ(kept.report.repeated_events, 3);
  EXPECT_TRUE(kept.report.worth_printing());
  EXPECT_NE(kept.report.summary().find("; 3 events repeat an earlier one's user, item and timestamp (kept; --dedupe"),
            std::string::npos)
      << kept.report.summary();
  const SequenceDataset deduped = read_preprocessed(path, {true, 0});
  EXPECT_EQ(deduped.report.repeated_events, 3);
  EXPECT_NE(deduped.report.summary().find("timestamp; 4 repeated user-item events dropped"), std::string::npos)
      << deduped.report.summary();
  // Without timestamps a repeated item is a user coming back to it, not a repeated event.
  const SequenceDataset untimed = read_dataset(tmp.write("again.txt", "1 1\n1 1\n1 1\n"));
  EXPECT_EQ(untimed.report.repeated_events, 0);
  EXPECT_FALSE(untimed.report.worth_printing());
}

TEST(DataReaders, NoUserLongEnoughIsAnError) {
  TempDir tmp;
  const std::string path = tmp.write("tiny.txt", "1 1\n1 2\n2 3\n");
  expect_read_error(path, Format::Auto, {"no user has at least 3 events", "2 users read"});
}

TEST(DataReaders, WrongFieldCount) {
  TempDir tmp;
  expect_read_error(tmp.write("pairs3.txt", "1 1\n1 2\n1 2 3\n"), Format::UserItemPairs,
                    {"line 3", "expected 2 fields (user item), got 3"});
  expect_read_error(tmp.write("seq1.txt", "1 1 2 3\n\n7\n"), Format::Auto,
                    {"line 3", "expected at least 2 fields", "got 1"});
  expect_read_error(tmp.write("bad.dat", "1::2::3::4\n1::2::3\n"), Format::Auto,
                    {"line 2", "expected 4 fields separated by '::'", "got 3"});
  expect_read_error(tmp.write("bad.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,4,5\n"), Format::Auto,
                    {"line 3", "expected 4 comma-separated fields", "got 5"});
}

TEST(DataReaders, AutoRefusesAThirdColumnReadAsItems) {
  TempDir tmp;
  // 'user item rating': the first line's three fields look like a sequence, the repeated user says
  // it is not one.
  expect_read_error(tmp.write("ratings.txt", "1 10 5\n1 20 3\n1 30 4\n"), Format::Auto,
                    {"line 2", "user 1 is on line 1 too", "line 1 holds more than one item", "--format"});
  // A pairs file with one stray triple, after or before the user's other lines.
  expect_read_error(tmp.write("stray.txt", "1 1\n1 2 5\n1 3\n"), Format::Auto,
                    {"line 2", "user 1 is on line 1 too", "line 2 holds more than one item"});
  expect_read_error(tmp.write("stray_first.txt", "2 7\n1 1 5\n2 8\n1 3\n"), Format::Auto,
                    {"line 4", "user 1 is on line 2 too"});
  // Each layout alone is read, and naming the format reads the mix as asked.
  EXPECT_EQ(read_dataset(tmp.write("seqs.txt", "1 1 2 3\n2 4 5 6\n3 1\n")).num_events(), 6);
  EXPECT_EQ(read_dataset(tmp.write("pairs.txt", "1 1\n1 2\n1 3\n")).num_events(), 3);
  EXPECT_EQ(read_as(tmp.path("ratings.txt"), Format::UserSequences, 3).num_events(), 6);
  expect_read_error(tmp.path("ratings.txt"), Format::UserItemPairs, {"line 1", "expected 2 fields (user item), got 3"});
}

TEST(DataPreprocessing, KCoreRepeatsUntilEveryUserAndItemHasK) {
  TempDir tmp;
  // Items 5 and 7 hold the core. Item 9 has two events but one is user 4's only event: dropping
  // user 4 takes item 9 below 2, that takes user 3 below 2, which takes item 2 below 2, which
  // touches user 1: four passes drop something, the fifth finds nothing.
  const std::string path = tmp.write("chain.txt", "1 5\n1 7\n1 2\n2 5\n2 7\n3 2\n3 9\n4 9\n");
  const SequenceDataset ds = read_preprocessed(path, {false, 2});
  EXPECT_EQ(ds.user_ids, (Ids{1, 2}));
  EXPECT_EQ(ds.sequences, (Seqs{{1, 2}, {1, 2}}));  // renumbered: the core's items are 1..n
  EXPECT_EQ(ds.item_source_ids, (Ids{0, 5, 7}));
  EXPECT_EQ(ds.n_items, 2);
  EXPECT_EQ(ds.report.largest_file_item, 9);
  const PreprocessReport& r = ds.report.preprocessed;
  EXPECT_EQ(r.k_core_rounds, 5);
  EXPECT_EQ(r.k_core_users_dropped, 2);
  EXPECT_EQ(r.k_core_items_dropped, 2);
  EXPECT_EQ(r.k_core_events_dropped, 4);
  EXPECT_NE(ds.report.summary().find("2-core: 2 users, 2 items and 4 events dropped in 5 passes"), std::string::npos)
      << ds.report.summary();
  // A 1-core drops nothing, but still numbers the items densely.
  const SequenceDataset one = read_preprocessed(path, {false, 1});
  EXPECT_EQ(one.num_events(), 8);
  EXPECT_EQ(one.item_source_ids, (Ids{0, 2, 5, 7, 9}));
  // Without a k-core the file's ids stay, and the ids no event has are counted (1, 3, 4, 6, 8).
  const SequenceDataset kept = read_preprocessed(path, {});
  EXPECT_EQ(kept.n_items, 9);
  EXPECT_EQ(kept.report.unused_item_ids, 5);
  EXPECT_NE(kept.report.summary().find("; 5 item ids below the largest occur in no event but stay candidates"),
            std::string::npos)
      << kept.report.summary();
  EXPECT_EQ(one.report.unused_item_ids, 0);
  expect_error([&] { read_preprocessed(path, {false, 4}); }, {path, "no events left after 4-core", "4 users"});
}

// Users too short to split are part of the fixed point: dropping them afterwards would take items
// back below k.
TEST(DataPreprocessing, KCoreUsersHoldTheEventsTheSplitNeeds) {
  TempDir tmp;
  // User 1 has two events, enough for a 2-core but not for leave-one-out; without it items 1 and 2
  // hold one event each, so they go too.
  const std::string path = tmp.write("short_core.txt", "1 1\n1 2\n2 1\n2 2\n2 3\n2 3\n2 4\n2 4\n");
  const SequenceDataset ds = read_preprocessed(path, {false, 2}, 3);
  EXPECT_EQ(ds.user_ids, (Ids{2}));
  EXPECT_EQ(ds.item_source_ids, (Ids{0, 3, 4}));
  EXPECT_EQ(ds.sequences, (Seqs{{1, 1, 2, 2}}));
  EXPECT_EQ(ds.report.users_dropped_short, 0);
  const PreprocessReport& r = ds.report.preprocessed;
  EXPECT_EQ(r.k_core_user_minimum, 3);
  EXPECT_EQ(r.k_core_users_dropped, 1);
  EXPECT_EQ(r.k_core_items_dropped, 2);
  EXPECT_NE(ds.report.summary().find("2-core (users: at least 3 events, as the split needs): 1 users, 2 items and 4 "
                                     "events dropped"),
            std::string::npos)
      << ds.report.summary();
  // Where k is at least what the split needs, it is what users need and the summary says nothing more.
  const SequenceDataset lower = read_preprocessed(path, {false, 2}, 2);
  EXPECT_EQ(lower.report.preprocessed.k_core_user_minimum, 2);
  EXPECT_EQ(lower.user_ids, (Ids{1, 2}));
  EXPECT_EQ(lower.report.summary().find("users: at least"), std::string::npos) << lower.report.summary();
}

// The k-core against its definition, recounted to the fixed point, on random data and on a chain
// whose drops cascade through every user and item one pass at a time.
TEST(DataPreprocessing, KCoreMatchesRecountingToTheFixedPoint) {
  const auto recount = [](std::vector<Event> events, int64_t user_k, int64_t item_k, int64_t& passes) {
    passes = 0;
    for (bool dropped = true; dropped;) {
      ++passes;
      std::map<int64_t, int64_t> per_user, per_item;
      for (const Event& e : events) ++per_user[e.user], ++per_item[e.item];
      const auto before = events.size();
      events.erase(std::remove_if(events.begin(), events.end(),
                                  [&](const Event& e) {
                                    return per_user[e.user] < user_k || per_item[e.item] < item_k;
                                  }),
                   events.end());
      dropped = events.size() != before;
    }
    return events;
  };
  const auto check = [&](const std::vector<Event>& events, int64_t user_k, int64_t item_k) {
    int64_t passes = 0;
    const std::vector<Event> expected = recount(events, user_k, item_k, passes);
    std::vector<Event> got = events;
    PreprocessReport report;
    keep_k_core(got, user_k, item_k, report);
    const std::string where = "users " + std::to_string(user_k) + ", items " + std::to_string(item_k);
    ASSERT_EQ(got.size(), expected.size()) << where;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(got[i].user == expected[i].user && got[i].item == expected[i].item &&
                  got[i].timestamp == expected[i].timestamp)
          << where << " event " << i;
    EXPECT_EQ(report.k_core_rounds, passes) << where;
    EXPECT_EQ(report.k_core_events_dropped, static_cast<int64_t>(events.size() - got.size()));
  };
  uint64_t state = 12345;
  const auto draw = [&](int64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(n));
  };
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<Event> events;
    for (int64_t user = 1; user <= 40; ++user)
      for (int64_t n = 1 + draw(8); n > 0; --n) events.push_back({user, 1 + draw(30), draw(1000)});
    for (int64_t k = 1; k <= 5; ++k) check(events, k, k);
    for (int64_t k = 1; k <= 2; ++k) check(events, 3, k);  // users need the split's 3 events
  }
  // User u holds items u and u + 1, user 1 item 1 only: a 2-core drops everything, one user and item per pass.
  std::vector<Event> chain{{1, 1, 0}};
  for (int64_t user = 2; user <= 200; ++user) chain.push_back({user, user - 1, 0}), chain.push_back({user, user, 0});
  check(chain, 2, 2);
  PreprocessReport report;
  expect_error([&] { preprocess(chain, {false, -1}, 3, report); }, {"k-core: k must be >= 0, got -1"});
}

TEST(DataPreprocessing, DedupeKeepsEachUsersEarliestEventWithAnItem) {
  TempDir tmp;
  // User 7 rated movie 20 at t=300 and t=50 and movie 5 at t=100 and t=200: the earliest stay.
  const std::string path = tmp.write("repeats.dat", "7::20::5::300\n7::5::3::100\n7::20::1::50\n7::5::2::200\n"
                                                    "7::30::4::400\n8::20::4::10\n8::20::4::20\n8::30::4::30\n");
  const SequenceDataset ds = read_preprocessed(path, {true, 0});
  EXPECT_EQ(ds.item_source_ids, (Ids{0, 5, 20, 30}));
  EXPECT_EQ(ds.sequences, (Seqs{{2, 1, 3}, {2, 3}}));
  EXPECT_EQ(ds.timestamps, (Seqs{{50, 100, 400}, {10, 30}}));
  EXPECT_EQ(ds.report.preprocessed.duplicates_dropped, 3);
  EXPECT_NE(ds.report.summary().find("3 repeated user-item events dropped"), std::string::npos) << ds.report.summary();
  // Dedupe comes first, so repeats do not count towards the k-core: movie 5's two events are user
  // 7's repeat.
  EXPECT_EQ(read_preprocessed(path, {false, 2}).item_source_ids, (Ids{0, 5, 20, 30}));
  EXPECT_EQ(read_preprocessed(path, {true, 2}).item_source_ids, (Ids{0, 20, 30}));
  EXPECT_EQ((Preprocessing{true, 5}).describe(), "dedupe, 5-core");
  EXPECT_EQ((Preprocessing{false, 0}).describe(), "none");
}

// String tokens (Amazon's reviewer ids and ASINs) number their column in sorted token order and
// stay as the names of users and items; a column of integers keeps its ids, and one non-integer
// token makes its whole column strings.
TEST(DataReaders, RecBoleStringTokens) {
  TempDir tmp;
  const std::string inter = tmp.write("beauty.inter",
                                      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "A2ZY\tB00X\t5\t30\n"
                                      "A2ZY\tB00A\t4\t10\n"
                                      "A2ZY\t0733\t4\t20\n"
                                      "A1QX\tB00A\t3\t15\n"
                                      "A1QX\tB00X\t3\t5\n"
                                      "A1QX\t0733\t3\t25\n");
  const SequenceDataset ds = read_dataset(inter);
  EXPECT_EQ(ds.user_ids, (Ids{1, 2}));
  EXPECT_EQ(ds.user_tokens, (std::vector<std::string>{"A1QX", "A2ZY"}));
  EXPECT_EQ(ds.item_tokens, (std::vector<std::string>{"", "0733", "B00A", "B00X"}));
  EXPECT_EQ(ds.sequences, (Seqs{{3, 2, 1}, {2, 1, 3}}));  // by time
  EXPECT_EQ(ds.user_name(1), "A2ZY");
  EXPECT_EQ(ds.item_name(3), "B00X");
  EXPECT_NE(ds.report.summary().find("user and item ids are strings, numbered in sorted order"),
            std::string::npos)
      << ds.report.summary();
  // Integer users, string items: the users keep their ids and have no tokens.
  const SequenceDataset mixed = read_dataset(
      tmp.write("mixed.inter", "user_id:token\titem_id:token\n9\tB2\n9\t17\n9\tB1\n4\t17\n4\tB2\n4\tB1\n"));
  EXPECT_EQ(mixed.user_ids, (Ids{4, 9}));
  EXPECT_TRUE(mixed.user_tokens.empty());
  EXPECT_EQ(mixed.item_tokens, (std::vector<std::string>{"", "17", "B1", "B2"}));
  EXPECT_EQ(mixed.sequences, (Seqs{{1, 3, 2}, {3, 1, 2}}));
  EXPECT_EQ(mixed.user_name(0), "4");
  EXPECT_NE(mixed.report.summary().find("; item ids are strings"), std::string::npos);
  // One name makes the whole column names, whatever tokens come after it.
  const SequenceDataset named_first =
      read_dataset(tmp.write("named_first.inter", "user_id:token\titem_id:token\nu1\tB7\nu1\t3\nu1\t4\n"));
  EXPECT_EQ(named_first.item_tokens, (std::vector<std::string>{"", "3", "4", "B7"}));
  EXPECT_EQ(named_first.sequences, (Seqs{{3, 1, 2}}));
  // Zero-padded numbers are names: "007" and "07" stay two items.
  const SequenceDataset padded = read_dataset(
      tmp.write("padded.inter", "user_id:token\titem_id:token\n1\t007\n1\t07\n1\t010\n"));
  EXPECT_EQ(padded.item_tokens, (std::vector<std::string>{"", "007", "010", "07"}));
  // A k-core renumbers the kept items and their tokens follow.
  ReadOptions core;
  core.preprocessing.k_core = 2;
  const SequenceDataset cored = read_dataset(
      tmp.write("core.inter", "user_id:token\titem_id:token\nu\tB\nu\tC\nu\tZ\nv\tB\nv\tC\nv\tD\nw\tB\nw\tD\nw\tC\n"),
      core);
  EXPECT_EQ(cored.item_tokens, (std::vector<std::string>{"", "B", "C", "D"}));  // Z had one event
  EXPECT_EQ(cored.user_tokens, (std::vector<std::string>{"v", "w"}));  // u kept two events, too few to split
  EXPECT_EQ(cored.sequences, (Seqs{{1, 2, 3}, {1, 3, 2}}));
}

TEST(DataReaders, RecBoleInterFiles) {
  TempDir tmp;
  // RecBole's ml-100k.inter layout: tab-separated, a 'name:type' header, extra columns passed over.
  const std::string inter = tmp.write("ml.inter",
                                      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "196\t242\t3\t881250949\n"
                                      "196\t302\t3\t881250900\n"
                                      "196\t51\t2\t881251000\n"
                                      "22\t377\t1\t878887116.0\n"
                                      "22\t51\t2\t878887000\n"
                                      "22\t302\t1\t878887200\n");
  for (Format format : {Format::Auto, Format::RecBoleInter}) {
    const SequenceDataset ds = read_as(inter, format);
    EXPECT_EQ(ds.format, Format::RecBoleInter);
    EXPECT_EQ(ds.user_ids, (Ids{22, 196}));
    EXPECT_EQ(ds.item_source_ids, (Ids{0, 51, 242, 302, 377}));  // renumbered by source id
    EXPECT_EQ(ds.sequences, (Seqs{{1, 4, 3}, {3, 2, 1}}));       // by time
    EXPECT_EQ(ds.timestamps, (Seqs{{878887000, 878887116, 878887200}, {881250900, 881250949, 881251000}}));
  }
  // The header tells the format without the extension; no timestamp column: file order, no times.
  const SequenceDataset untimed = read_dataset(
      tmp.write("untimed.txt", "item_id:token\tuser_id:token\n5\t1\n3\t1\n9\t1\n"));
  EXPECT_EQ(untimed.format, Format::RecBoleInter);
  EXPECT_EQ(untimed.sequences, (Seqs{{2, 1, 3}}));
  EXPECT_FALSE(untimed.has_timestamps());
  EXPECT_EQ(parse_format("recbole"), Format::RecBoleInter);

  expect_read_error(tmp.write("noitem.inter", "user_id:token\trating:float\n1\t3\n"), Format::Auto,
                    {"line 1", "needs user_id:token and item_id:token"});
  expect_read_error(tmp.write("type.inter", "user_id:token\titem_id:float\n1\t3\n"), Format::Auto,
                    {"line 1", "'item_id:float'", "expected 'item_id:token'"});
  expect_read_error(tmp.write("plain.inter", "user item\n1\t3\n"), Format::Auto,
                    {"line 1", "'name:type' fields"});
  expect_read_error(tmp.write("twice.inter", "user_id:token\titem_id:token\titem_id:token\n1\t3\t4\n"),
                    Format::Auto, {"line 1", "the header names 'item_id' twice"});
  expect_read_error(tmp.write("empty.inter", "user_id:token\titem_id:token\n1\t2\n\t3\n"), Format::Auto,
                    {"line 3", "empty user_id token"});
  expect_read_error(tmp.write("short.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\n"),
                    Format::Auto, {"line 3", "expected 3 tab-separated fields", "got 2"});
  expect_read_error(tmp.write("long.inter", "user_id:token\titem_id:token\n1\t3\n1\t4\t9\n"), Format::Auto,
                    {"line 3", "expected 2 tab-separated fields as the header names, got 3"});
  // An empty last field (a review left blank) is a field like any other.
  EXPECT_EQ(read_dataset(tmp.write("blank_review.inter", "user_id:token\titem_id:token\treview:token_seq\n"
                                                         "1\t2\t\n1\t3\tnice\n1\t4\t\n"))
                .num_events(),
            3);
  // Fractions of a second order the events (normalised times in [0, 1) are all in second 0); the
  // times kept are whole seconds, and only equal times are repeats.
  const SequenceDataset fractions = read_dataset(tmp.write("frac.inter", "user_id:token\titem_id:token\t"
                                                                         "timestamp:float\n1\t2\t5.9\n1\t3\t5.1\n"
                                                                         "1\t4\t4.99\n1\t2\t0.7\n1\t3\t0.2\n"));
  EXPECT_EQ(fractions.sequences, (Seqs{{2, 1, 3, 2, 1}}));
  EXPECT_EQ(fractions.timestamps, (Seqs{{0, 0, 4, 5, 5}}));
  EXPECT_EQ(fractions.report.repeated_events, 0);
  // The same item in one second: a repeat only at the same fraction too. CSV files read fractions alike.
  for (const auto& [name, header, sep] : {std::tuple<std::string, std::string, std::string>{
                                              "again.inter", "user_id:token\titem_id:token\ttimestamp:float\n", "\t"},
                                          {"again.csv", "user_id,item_id,timestamp\n", ","}}) {
    auto row = [&, sep = sep](const char* item, const char* time) {
      return std::string("1") + sep + item + sep + time + "\n";
    };
    const SequenceDataset again = read_dataset(
        tmp.write(name, header + row("2", "5.5") + row("3", "5.25") + row("2", "5.75") + row("2", "5.75")));
    EXPECT_EQ(again.sequences, (Seqs{{2, 1, 1, 1}})) << name;
    EXPECT_EQ(again.report.repeated_events, 1) << name;
  }
  expect_read_error(tmp.write("far.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t1e300\n"),
                    Format::Auto, {"line 2", "timestamp '1e300' is out of range"});
}

TEST(DataReaders, NonNumericAndOutOfRangeIds) {
  TempDir tmp;
  expect_read_error(tmp.write("alpha.txt", "1 1\n2 x7\n"), Format::Auto, {"line 2", "non-numeric item id 'x7'"});
  expect_read_error(tmp.write("user.txt", "1 1\nu2 3\n"), Format::Auto, {"line 2", "non-numeric user id 'u2'"});
  expect_read_error(tmp.write("big.txt", "1 1\n1 2\n1 99999999999999999999\n"), Format::Auto,
                    {"line 3", "item id '99999999999999999999' is out of range"});
  expect_read_error(tmp.write("neg.txt", "1 -4\n"), Format::Auto, {"line 1", "item id '-4' is out of range"});
  expect_read_error(tmp.write("negu.txt", "1 1\n-1 4\n"), Format::Auto, {"line 2", "user id '-1' is out of range"});
  expect_read_error(tmp.write("float.csv", "userId,movieId,rating,timestamp\n1,2.5,4.0,10\n"), Format::Auto,
                    {"line 2", "non-numeric item id '2.5'"});
  expect_read_error(tmp.write("rating.dat", "1::2::five::10\n"), Format::Auto, {"line 1", "non-numeric rating 'five'"});
  for (const char* not_finite : {"nan", "inf", "-inf"})
    expect_read_error(tmp.write("rating_inf.csv", fmt::format("userId,movieId,rating,timestamp\n1,5,4,1\n1,6,{},2\n",
                                                              not_finite)),
                      Format::Auto, {"line 3", fmt::format("rating '{}' is not a finite number", not_finite)});
  expect_read_error(tmp.write("ts.dat", "1::2::5::\n"), Format::Auto, {"line 1", "non-numeric timestamp ''"});
  // Ids far beyond the number of events are not dense ids.
  expect_read_error(tmp.write("sparse.txt", "1 1\n1 2\n1 2000000000\n"), Format::Auto,
                    {"line 3", "item id 2000000000 is far beyond"});
}

TEST(DataReaders, ZeroItemIdIsPadding) {
  TempDir tmp;
  expect_read_error(tmp.write("zero.txt", "1 1\n1 2\n1 0\n"), Format::Auto,
                    {"line 3", "item id '0' is out of range", "0 is padding"});
  expect_read_error(tmp.write("zero_seq.txt", "1 1 2 3\n2 4 0 5\n"), Format::UserSequences, {"line 2", "'0'"});
}

TEST(DataReaders, EmptyAndMissingFiles) {
  TempDir tmp;
  expect_read_error(tmp.write("empty.txt", ""), Format::Auto, {"no events"});
  expect_read_error(tmp.write("blank.txt", "\n \r\n\n"), Format::Auto, {"no events", "3 lines, 3 blank"});
  expect_read_error(tmp.write("header_only.csv", "userId,movieId,rating,timestamp\n"), Format::Auto, {"no events"});
  expect_read_error(tmp.path("does_not_exist.txt"), Format::Auto, {"cannot open", "No such file"});
  expect_read_error(tmp.path(""), Format::Auto, {"directory"});
}

TEST(DataReaders, CsvHeaderIsRequired) {
  TempDir tmp;
  // A .csv file without MovieLens's header reads as a csv file, whose columns are found by name.
  expect_read_error(tmp.write("noheader.csv", "1,2,4.0,100\n1,3,4.0,101\n"), Format::Auto,
                    {"line 1", "no user column 'user_id' in the header (its columns: '1', '2', '4.0', '100')",
                     "--csv-columns USER,ITEM[,TIME]"});
  // A UTF-16 file's NUL bytes are shown, not left to end the message.
  expect_read_error(tmp.write("utf16.csv", std::string("\xff\xfeu\0,\0i\0\n\0", 10)), Format::Auto,
                    {"(its columns: '\xff\xfeu\\x00', '\\x00i\\x00'); name the columns"});
  expect_read_error(tmp.write("other.csv", "\nuser,item,rating,timestamp\n1,2,4.0,100\n"), Format::MovieLensCsv,
                    {"line 2", "expected the MovieLens header"});
}

// Delimited files read by column name: quoted fields (a comma and a doubled quote inside), string
// ids, ISO 8601 and epoch timestamps; other delimiters and column names; their bad input.
TEST(DataReaders, CsvFilesByColumnName) {
  TempDir tmp;
  const std::string csv = tmp.write("reviews.csv",
                                    "user_id,item_id,review,timestamp\n"
                                    "u1,B2,\"great, really \"\"great\"\"\",2014-03-05\n"
                                    "\"u1\",B1,ok,2014-03-04T10:00:00Z\n"
                                    "u1,B3,,1394100000\n"
                                    "u2,B1,meh,2014-03-05 10:00:00+01:00\n"
                                    "u2,B2,\"\",2014-03-01\n"
                                    "u2,B3,x,2014-03-02\n");
  for (Format format : {Format::Auto, Format::Csv}) {
    const SequenceDataset ds = read_as(csv, format);
    EXPECT_EQ(ds.format, Format::Csv);
    EXPECT_EQ(ds.user_tokens, (std::vector<std::string>{"u1", "u2"}));
    EXPECT_EQ(ds.item_tokens, (std::vector<std::string>{"", "B1", "B2", "B3"}));
    EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 3}, {2, 3, 1}}));  // by time
    EXPECT_EQ(ds.timestamps, (Seqs{{1393927200, 1393977600, 1394100000}, {1393632000, 1393718400, 1394010000}}));
  }
  // Tabs or semicolons, other column names, no timestamp column: file order.
  ReadOptions named;
  named.csv_columns = "visitor,product";
  const SequenceDataset tsv =
      read_dataset(tmp.write("log.tsv", "product\tvisitor\n7\t1\n3\t1\n9\t1\n3\t2\n7\t2\n9\t2\n"), named);
  EXPECT_EQ(tsv.format, Format::Csv);
  EXPECT_EQ(tsv.item_source_ids, (Ids{0, 3, 7, 9}));  // integer ids keep their values, renumbered
  EXPECT_TRUE(tsv.item_tokens.empty());
  EXPECT_EQ(tsv.sequences, (Seqs{{2, 1, 3}, {1, 2, 3}}));
  EXPECT_FALSE(tsv.has_timestamps());
  named.csv_columns = "u,i,t";
  const SequenceDataset semicolons =
      read_dataset(tmp.write("semi.csv", "u;i;t\na;x;3\na;y;1\na;z;2\n"), named);
  EXPECT_EQ(semicolons.sequences, (Seqs{{2, 3, 1}}));

  // Without a header of names, tab-separated numbers stay a dense file; other files keep their formats.
  EXPECT_EQ(read_dataset(tmp.write("dense.txt", "1\t5\n1\t3\n1\t2\n")).format, Format::UserItemPairs);
  EXPECT_EQ(read_dataset(tmp.write("dense.tsv", "1\t5\n1\t3\n1\t2\n")).format, Format::UserItemPairs);
  EXPECT_EQ(read_dataset(tmp.write("double.txt", "1\t\t5\n1\t\t3\n1\t\t2\n")).format, Format::UserItemPairs);
  EXPECT_EQ(read_dataset(tmp.write("seq.txt", "1\t5 6 7\n2\t5 6 7\n")).format, Format::UserSequences);
  EXPECT_EQ(read_dataset(tmp.write("rb.tsv", "user_id:token\titem_id:token\n1\t5\n1\t6\n1\t7\n")).format,
            Format::RecBoleInter);
  EXPECT_EQ(read_dataset(tmp.write("ml.csv", "userId, movieId, rating, timestamp\n1,5,4,1\n1,6,4,2\n1,7,4,3\n"))
                .format,
            Format::MovieLensCsv);
  // An empty first or last field of a tab-separated line is a field; a quoted header name may hold
  // another delimiter; --csv-columns reads a MovieLens file as csv.
  EXPECT_EQ(read_dataset(tmp.write("e.tsv", "r\tuser_id\titem_id\tnote\n\t1\t5\t\n\t1\t6\t\n\t1\t7\t\n"))
                .num_events(),
            3);
  EXPECT_EQ(read_dataset(tmp.write("s.csv", "\"score, 1-5\";user_id;item_id\n4;u1;a\n4;u1;b\n4;u1;c\n")).sequences,
            (Seqs{{1, 2, 3}}));
  ReadOptions movie_columns;
  movie_columns.csv_columns = "userId,movieId";
  const SequenceDataset as_csv =
      read_dataset(tmp.write("ratings.csv", "userId,movieId,rating,timestamp\n1,50,4,3\n1,60,4,1\n1,70,4,2\n"),
                   movie_columns);
  EXPECT_EQ(as_csv.format, Format::Csv);
  EXPECT_EQ(as_csv.sequences, (Seqs{{2, 3, 1}}));  // its timestamp column read by that name
  movie_columns.csv_columns = "userId,userId";
  expect_error([&] { read_dataset(as_csv.source, movie_columns); }, {"the user and item columns must differ"});

  expect_read_error(tmp.write("quote.csv", "user_id,item_id\nu1,\"B1\nu1,B2\n"), Format::Auto,
                    {"line 2", "unterminated quote in field 2"});
  expect_read_error(tmp.write("after.csv", "user_id,item_id\nu1,\"B1\"x\n"), Format::Auto,
                    {"line 2", "text after the closing quote of field 2"});
  expect_read_error(tmp.write("count.csv", "user_id,item_id,timestamp\nu1,B1\n"), Format::Auto,
                    {"line 2", "expected 3 fields as the header names, got 2"});
  expect_read_error(tmp.write("time.csv", "user_id,item_id,timestamp\nu1,B1,2023-02-29\n"), Format::Auto,
                    {"line 2", "timestamp '2023-02-29' is no ISO 8601 date"});
  expect_read_error(tmp.write("empty.csv", "user_id,item_id\n,B1\n"), Format::Auto, {"line 2", "empty user token"});
  expect_read_error(tmp.write("tab.csv", "user_id,item_id\nu1,B1\n\"u\t3\",B1\n"), Format::Auto,
                    {"line 3", "user token 'u\\x093' holds a tab or a line break"});
  TokenColumn items("item");  // the readers split lines first; a caller with other lines may not
  for (const char* broken : {"a\rb", "a\nb"})
    expect_error([&] { items.intern(broken, Where{"f", 4}); }, {"line 4", "holds a tab or a line break"});
  expect_read_error(tmp.write("twice.csv", "user_id,item_id,item_id\nu1,B1,B2\n"), Format::Auto,
                    {"line 1", "names the column 'item_id' twice"});
  named.csv_columns = "visitor";
  expect_error([&] { read_dataset(tsv.source, named); }, {"--csv-columns 'visitor': expected USER,ITEM"});
  named.csv_columns = "visitor,product,when";
  expect_error([&] { read_dataset(tsv.source, named); }, {"no timestamp column 'when'"});
  ReadOptions not_csv;
  not_csv.csv_columns = "a,b";
  not_csv.format = Format::UserItemPairs;
  expect_error([&] { read_dataset(tmp.write("pairs.txt", "1 2\n1 3\n1 4\n"), not_csv); },
               {"--csv-columns applies to csv files (this one reads as pairs)"});
}

// Files that are not what they seem: joined with their headers, compressed, binary, or
// semicolon-separated without a .csv name.
TEST(DataReaders, RepeatedHeadersCompressedAndBinaryFilesAreNamed) {
  TempDir tmp;
  expect_read_error(tmp.write("joined.csv", "user_id,item_id\nu1,a\nu1,b\nuser_id,item_id\nu2,a\n"), Format::Auto,
                    {"line 4", "the header of line 1 again"});
  expect_read_error(tmp.write("joined.inter", "user_id:token\titem_id:token\n1\t2\nuser_id:token\titem_id:token\n"),
                    Format::Auto, {"line 3", "the header of line 1 again"});
  // Joined spreadsheet exports repeat the header behind a byte-order mark; read as data it would
  // make the ids strings.
  const std::string mark = "\xEF\xBB\xBF";
  expect_read_error(tmp.write("marked.csv", mark + "user_id,item_id\n1,1\n1,2\n" + mark + "user_id,item_id\n2,1\n"),
                    Format::Auto, {"line 4", "the header of line 1 again, behind a byte-order mark"});
  expect_read_error(tmp.write("marked.inter", mark + "user_id:token\titem_id:token\n1\t2\n" + mark +
                                                  "user_id:token\titem_id:token\n"),
                    Format::Auto, {"line 3", "the header of line 1 again, behind a byte-order mark"});
  expect_read_error(tmp.write("spaces.inter", "user_id:token item_id:token\n1 2\n"), Format::Auto,
                    {"line 1", "'name:type' fields separated by tabs", "'user_id:token item_id:token'"});
  const std::pair<std::string, const char*> compressed[] = {{std::string("\x1f\x8b\x08\0\0\0", 6), "gzip"},
                                                           {"BZh91AY&SY\x01", "bzip2"},
                                                           {std::string("\xfd" "7zXZ\0\0", 8), "xz"},
                                                           {"\x28\xb5\x2f\xfd\x20", "zstd"},
                                                           {"PK\x03\x04\x14", "zip"}};
  for (const auto& [bytes, format] : compressed)
    expect_read_error(tmp.write("ratings.dat", bytes + "1::2::3::4\n"), Format::Auto,
                      {fmt::format("a {}-compressed file: decompress it first", format)});
  // Control bytes (a NUL would end the message) are written out, not sent to the terminal.
  expect_read_error(tmp.write("binary.txt", std::string("1 1\n1 2\n1 \0\x01\x7f" "9\n", 15)), Format::Auto,
                    {"line 3", "non-numeric item id '\\x00\\x01\\x7f9'"});
  // A semicolon in the first line makes a delimited file whatever its name.
  const SequenceDataset semicolons = read_dataset(tmp.write("log.txt", "user_id;item_id\nu1;a\nu1;b\nu1;c\n"));
  EXPECT_EQ(semicolons.format, Format::Csv);
  EXPECT_EQ(semicolons.sequences, (Seqs{{1, 2, 3}}));
}

// Tabs trim away, but a line of them in a tab-separated file is a row of empty fields, refused like
// ",," in a comma-separated one, not skipped as a blank line.
TEST(DataReaders, RowsOfEmptyTabSeparatedFieldsAreNotBlank) {
  TempDir tmp;
  expect_read_error(tmp.write("tabs.tsv", "user_id\titem_id\ttimestamp\n\t\t\n1\t1\t1\n"), Format::Auto,
                    {"line 2", "empty user token"});
  expect_read_error(tmp.write("tabs.inter", "user_id:token\titem_id:token\n \t \n1\t2\n"), Format::Auto,
                    {"line 2", "empty user_id token"});
  // Blank lines, and lines of tabs before the header, are still blank lines.
  const SequenceDataset ds =
      read_dataset(tmp.write("blank.tsv", "\t\nuser_id\titem_id\n\n1\t1\n1\t2\n \n1\t3\n"));
  EXPECT_EQ(ds.sequences, (Seqs{{1, 2, 3}}));
  EXPECT_EQ(ds.report.blank_lines, 3);
}

TEST(DataReaders, TimestampsInSecondsOrIso8601) {
  const std::string path = "t";
  const Where where{path, 1};
  EXPECT_EQ(parse_timestamp("1970-01-01", where), 0);
  EXPECT_EQ(parse_timestamp("2000-03-01T00:00:00Z", where), 951868800);
  EXPECT_EQ(parse_timestamp("2024-02-29", where), 1709164800);
  EXPECT_EQ(parse_timestamp("2014-03-05T10:00:00+01:00", where), 1394010000);
  EXPECT_EQ(parse_timestamp("2014-03-05T10:00+0100", where), 1394010000);
  EXPECT_EQ(parse_timestamp("1969-12-31T23:59:59.75Z", where), -1);  // fractions dropped
  EXPECT_EQ(parse_timestamp("1900-03-01 05:30-02:30", where), -2203862400);
  EXPECT_EQ(parse_timestamp("881250949.0", where), 881250949);
  EXPECT_EQ(parse_timestamp("-5", where), -5);
  EXPECT_EQ(parse_timestamp("9007199254740993", where), 9007199254740993);  // 2^53 + 1: integers exactly
  EXPECT_EQ(parse_timestamp("9223372036854775807", where), INT64_MAX);
  expect_error([&] { parse_timestamp("9223372036854775808", where); },
               {"timestamp '9223372036854775808' is out of range"});
  EXPECT_EQ(parse_timestamp("2000-02-29", where), 951782400);  // divisible by 400: a leap year
  EXPECT_EQ(parse_timestamp("2016-12-31T23:59:60Z", where), 1483228800);  // a leap second: 2017-01-01T00:00:00Z
  for (const char* bad : {"2023-02-29", "1900-02-29", "2100-02-29", "2014-13-01", "2014-03-05T25:00",
                          "2016-12-31T23:59:61Z", "2014-03-05T10:00:00.", "2014-03-05T10:00:00,Z",
                          "2014-03-05T10:00:00+1", "2014-03-05x", "2014-3-5xxxxx"})
    expect_error([&] { parse_timestamp(bad, where); }, {"no ISO 8601 date"});
  EXPECT_EQ(parse_timestamp("1394040000.5", where), 1394040000);
  float fraction = -1;
  EXPECT_EQ(parse_timestamp("7.25", where, &fraction), 7);
  EXPECT_EQ(fraction, 0.25f);
  EXPECT_EQ(parse_timestamp("-0.75", where, &fraction), -1);
  EXPECT_EQ(fraction, 0.25f);
  EXPECT_EQ(parse_timestamp("2014-03-05T10:00:00.125Z", where, &fraction), 1394013600);
  EXPECT_EQ(fraction, 0.125f);
  EXPECT_EQ(parse_timestamp("12", where, &fraction), 12);
  EXPECT_EQ(fraction, 0.0f);
  EXPECT_EQ(parse_timestamp("-0.5", where), -1);  // floor, as for times before 1970 in ISO form
  expect_error([&] { parse_timestamp("soon", where); }, {"non-numeric timestamp 'soon'"});
}

TEST(DataReaders, ParseFormatNames) {
  EXPECT_EQ(parse_format("auto"), Format::Auto);
  EXPECT_EQ(parse_format("pairs"), Format::UserItemPairs);
  EXPECT_EQ(parse_format("sequences"), Format::UserSequences);
  EXPECT_EQ(parse_format("ml-dat"), Format::MovieLensDat);
  EXPECT_EQ(parse_format("ml-csv"), Format::MovieLensCsv);
  for (Format f : {Format::Auto, Format::UserItemPairs, Format::UserSequences, Format::MovieLensDat,
                   Format::MovieLensCsv})
    EXPECT_EQ(parse_format(format_name(f)), f);
  EXPECT_EQ(parse_format("csv"), Format::Csv);
  expect_error([] { parse_format("atomic"); }, {"'atomic'", "auto, pairs, sequences, ml-dat, ml-csv, recbole, csv"});
}

// What `prepare` writes reads back as the same dataset: the sequences file (what the PyTorch peer
// reads) gives the histories and item count, the .inter file the timestamps too, and the maps name
// every user and item as the source did, after a k-core renumbered them.
// A name no TSV map can hold is refused before any file is written, and a prefix's files always
// describe one dataset (an earlier run's PREFIX.inter goes when the new data has no timestamps).
TEST(DataExport, PreparedFilesDescribeOneDataset) {
  TempDir tmp;
  const SequenceDataset timed = read_dataset(tmp.write("timed.dat", "1::5::3::10\n1::6::3::11\n1::7::3::12\n"));
  const std::string prefix = tmp.path("p");
  write_prepared_dataset(timed, prefix);
  ASSERT_TRUE(fs::exists(prefix + ".inter"));
  const std::string before = read_whole_file(prefix + ".txt");
  SequenceDataset tabbed = timed;
  tabbed.item_tokens = {"", "a", "tab\there", "c"};
  expect_error([&] { write_prepared_dataset(tabbed, prefix); }, {"item 'tab\there' holds a tab"});
  tabbed.item_tokens = {"", "a", "cr\rhere", "c"};  // a lone CR ends a line for CRLF-aware readers
  expect_error([&] { write_prepared_dataset(tabbed, prefix); }, {"item 'cr\rhere' holds a tab or a line break"});
  EXPECT_EQ(read_whole_file(prefix + ".txt"), before);
  const SequenceDataset untimed = read_dataset(tmp.write("untimed.txt", "1 5\n1 6\n1 7\n1 8\n"));
  write_prepared_dataset(untimed, prefix);
  EXPECT_FALSE(fs::exists(prefix + ".inter"));
  EXPECT_EQ(read_dataset(prefix + ".txt").num_events(), 4);
}

// Every byte of the files, from the definitions: users 1..U in dataset order, items renumbered 1..m in
// id order past an id without events (3 here), the .inter in the same numbering, and the maps back.
TEST(DataExport, PreparedFilesHoldTheseBytes) {
  TempDir tmp;
  SequenceDataset ds;
  ds.source = "in-code";
  ds.n_items = 4;
  ds.sequences = {{4, 1, 4}, {1, 2, 1}};
  ds.timestamps = {{10, 11, 12}, {5, 6, 7}};
  ds.user_ids = {7, 9};
  ds.item_source_ids = {0, 30, 40, 50, 60};
  const PreparedFiles prepared = write_prepared_dataset(ds, tmp.path("p"));
  EXPECT_EQ(prepared.unused_item_ids, 1);
  EXPECT_EQ(prepared.paths, (std::vector<std::string>{tmp.path("p.txt"), tmp.path("p.inter"), tmp.path("p_users.tsv"),
                                                      tmp.path("p_items.tsv")}));
  EXPECT_EQ(read_whole_file(tmp.path("p.txt")), "1 3 1 3\n2 1 2 1\n");
  EXPECT_EQ(read_whole_file(tmp.path("p.inter")),
            "user_id:token\titem_id:token\ttimestamp:float\n1\t3\t10\n1\t1\t11\n1\t3\t12\n2\t1\t5\n2\t2\t6\n"
            "2\t1\t7\n");
  EXPECT_EQ(read_whole_file(tmp.path("p_users.tsv")), "user\tsource\n1\t7\n2\t9\n");
  EXPECT_EQ(read_whole_file(tmp.path("p_items.tsv")), "item\tsource\n1\t30\n2\t40\n3\t60\n");
  // The items' MovieIDs, where the caller knows them, go in a third column.
  write_prepared_dataset(ds, tmp.path("p"), {0, 101, 102, 103, 104});
  EXPECT_EQ(read_whole_file(tmp.path("p_items.tsv")), "item\tsource\tmovie\n1\t30\t101\n2\t40\t102\n3\t60\t104\n");
  expect_error([&] { write_prepared_dataset(ds, tmp.path("p"), {0, 101}); },
               {"prepare: 2 MovieIDs given for 4 items (expected n_items + 1"});
}

TEST(DataExport, PreparedFilesReadBackAsTheSameDataset) {
  TempDir tmp;
  std::string csv = "user_id,item_id,timestamp\n";
  for (int u = 0; u < 12; ++u)
    for (int t = 0; t < 5 + u % 3; ++t) csv += fmt::format("U{},B{:02d},{}\n", u, (u * 5 + t * 7) % 17, 1000 - t);
  csv += "Z,B99,5\nZ,B98,6\nZ,B97,7\n";  // items seen once: the 2-core drops them (and Z with them)
  ReadOptions core;
  core.preprocessing.k_core = 2;
  const SequenceDataset ds = read_dataset(tmp.write("log.csv", csv), core);
  const PreparedFiles prepared = write_prepared_dataset(ds, tmp.path("prepared"));
  const std::vector<std::string>& files = prepared.paths;
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(prepared.unused_item_ids, 0);

  const SequenceDataset sequences = read_dataset(files[0]);
  EXPECT_EQ(sequences.format, Format::UserSequences);
  EXPECT_EQ(sequences.sequences, ds.sequences);
  EXPECT_EQ(sequences.n_items, ds.n_items);
  const SequenceDataset timed = read_dataset(files[1]);
  EXPECT_EQ(timed.sequences, ds.sequences);
  EXPECT_EQ(timed.timestamps, ds.timestamps);
  EXPECT_EQ(timed.n_items, ds.n_items);

  std::ifstream users(files[2]), items(files[3]);
  std::string line;
  std::getline(users, line);
  EXPECT_EQ(line, "user\tsource");
  for (int64_t row = 0; row < ds.num_users(); ++row) {
    std::getline(users, line);
    EXPECT_EQ(line, fmt::format("{}\t{}", row + 1, ds.user_name(row)));
  }
  std::getline(items, line);
  for (int64_t item = 1; item <= ds.n_items; ++item) {
    std::getline(items, line);
    EXPECT_EQ(line, fmt::format("{}\t{}", item, ds.item_name(item)));
  }
  EXPECT_EQ(line.substr(line.find('\t') + 1, 1), "B");
  expect_error([&] { write_prepared_dataset(ds, tmp.path("absent/prepared")); },
               {"prepare: --output", "absent/prepared.txt: there is no directory"});
  // The data file itself is never overwritten.
  const std::string log = tmp.path("log");
  expect_error([&] { write_prepared_dataset(read_dataset(tmp.write("log.txt", "1 2\n1 3\n1 4\n")), log); },
               {"prepare: --output", "log.txt is the input file", "log.txt: writing it would destroy it"});

  // 64-bit times (past what a double holds exactly) read back from the .inter file as they were.
  const SequenceDataset far_future = read_dataset(tmp.write(
      "far.dat", "1::5::3::9007199254740993\n1::6::3::9007199254740995\n1::7::3::9100000000000000001\n"));
  const PreparedFiles far_files = write_prepared_dataset(far_future, tmp.path("far"));
  EXPECT_EQ(read_dataset(far_files.paths[1]).timestamps, far_future.timestamps);
  EXPECT_EQ(far_future.timestamps[0][2], 9100000000000000001);

  // Ids without events (the synthetic generator's catalogue is larger than what 20 users draw):
  // renumbered 1..m, and both files read back as that dataset.
  SyntheticOptions few;
  few.users = 20;
  few.items = 500;
  const SequenceDataset synthetic = make_synthetic_dataset(few);
  const PreparedFiles compact = write_prepared_dataset(synthetic, tmp.path("synthetic"));
  ASSERT_GT(compact.unused_item_ids, 0);
  const SequenceDataset from_txt = read_dataset(compact.paths[0]), from_inter = read_dataset(compact.paths[1]);
  EXPECT_EQ(from_txt.n_items, 500 - compact.unused_item_ids);
  EXPECT_EQ(from_inter.sequences, from_txt.sequences);
  EXPECT_EQ(from_inter.timestamps, synthetic.timestamps);
  ASSERT_EQ(from_txt.sequences.size(), synthetic.sequences.size());
  std::map<int64_t, int64_t> renumbered;  // old id -> new id: one-to-one and order-keeping
  for (size_t u = 0; u < synthetic.sequences.size(); ++u)
    for (size_t i = 0; i < synthetic.sequences[u].size(); ++i) {
      const auto [it, fresh] = renumbered.emplace(synthetic.sequences[u][i], from_txt.sequences[u][i]);
      EXPECT_EQ(it->second, from_txt.sequences[u][i]);
    }
  int64_t expected = 0;
  for (const auto& [old_id, new_id] : renumbered) EXPECT_EQ(new_id, ++expected);
}

// ---------------------------------------------------------------------------------------------
// Split

SequenceDataset tiny_dataset(bool with_timestamps) {
  SequenceDataset ds;
  ds.source = "tiny";
  ds.n_items = 10;
  ds.sequences = {{1, 2, 3, 4, 5, 6, 7}, {8, 9, 10}, {3, 4, 5, 6}};
  ds.user_ids = {11, 12, 13};
  ds.item_source_ids = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  if (with_timestamps) ds.timestamps = {{10, 20, 30, 40, 50, 60, 70}, {81, 82, 83}, {103, 104, 105, 106}};
  return ds;
}

TEST(DataSplit, LeaveOneOutTargets) {
  const SequenceDataset ds = tiny_dataset(false);
  EXPECT_EQ(LeaveOneOut::train_items(ds, 0), (Ids{1, 2, 3, 4, 5}));
  EXPECT_EQ(LeaveOneOut::train_items(ds, 1), (Ids{8}));
  EXPECT_EQ(LeaveOneOut::train_items(ds, 2), (Ids{3, 4}));

  const auto validation = LeaveOneOut::examples(ds, EvalSplit::Validation);
  const auto test = LeaveOneOut::examples(ds, EvalSplit::Test);
  ASSERT_EQ(validation.size(), 3u);
  ASSERT_EQ(test.size(), 3u);
  const Ids val_targets{6, 9, 5}, val_lengths{5, 1, 2}, test_targets{7, 10, 6}, test_lengths{6, 2, 3};
  for (int64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(validation[r].row, r);
    EXPECT_EQ(validation[r].target, val_targets[r]);
    EXPECT_EQ(validation[r].input_length, val_lengths[r]);
    EXPECT_EQ(test[r].row, r);
    EXPECT_EQ(test[r].target, test_targets[r]);
    EXPECT_EQ(test[r].input_length, test_lengths[r]);
  }
}

TEST(DataSplit, PopularityCountsTrainPartsOnly) {
  const SequenceDataset ds = tiny_dataset(false);
  // Train parts: {1,2,3,4,5}, {8}, {3,4}; items 6, 7, 9, 10 are held out everywhere.
  EXPECT_EQ(item_popularity(ds), (Ids{0, 1, 1, 2, 2, 1, 0, 0, 1, 0, 0}));
}

TEST(DataSplit, ShortRowIsRefused) {
  SequenceDataset ds = tiny_dataset(false);
  ds.sequences[1] = {8, 9};
  expect_error([&] { LeaveOneOut::examples(ds, EvalSplit::Test); }, {"user 12", "row 1", "has 2 events"});
  expect_error([&] { TrainBatcher(ds, 4, 2, 1); }, {"leave-one-out needs 3"});
  // A row past either end is refused, not read.
  const int64_t users = ds.num_users();
  for (const int64_t row : {int64_t{-1}, users}) {
    const std::string range = fmt::format("row {} is out of range [0, {})", row, users);
    expect_error([&] { LeaveOneOut::train_length(ds, row); }, {range});
    expect_error([&] { LeaveOneOut::example(ds, row, EvalSplit::Test); }, {range});
    expect_error([&] { LeaveOneOut::train_items(ds, row); }, {range});
  }
}

TEST(DataSplit, DatasetsBuiltInCodeAreValidatedBeforeUse) {
  EXPECT_NO_THROW(tiny_dataset(true).validate());
  struct Case {
    std::function<void(SequenceDataset&)> damage;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases = {
      {[](SequenceDataset& ds) { ds.sequences[2][1] = 0; },
       {"tiny: user 13 (row 2) has item 0 at position 1", "items are 1..10 (0 is padding)"}},
      {[](SequenceDataset& ds) { ds.sequences[0][6] = 11; }, {"user 11 (row 0) has item 11 at position 6"}},
      {[](SequenceDataset& ds) { ds.sequences[1][0] = -3; }, {"user 12 (row 1) has item -3 at position 0"}},
      {[](SequenceDataset& ds) { ds.timestamps[1] = {81, 82}; },
       {"tiny: user 12 (row 1) has 2 timestamps for 3 items"}},
      {[](SequenceDataset& ds) { ds.timestamps.pop_back(); }, {"timestamps has 2 entries for 3 sequences"}},
      {[](SequenceDataset& ds) { ds.user_ids = {11, 12}; }, {"user_ids has 2 entries for 3 sequences"}},
      {[](SequenceDataset& ds) { ds.item_source_ids.pop_back(); },
       {"item_source_ids has 10 entries for 11 item ids 0..n_items"}},
      {[](SequenceDataset& ds) { ds.n_items = 0; }, {"n_items is 0"}},
  };
  for (const Case& c : cases) {
    SequenceDataset ds = tiny_dataset(true);
    c.damage(ds);
    expect_error([&] { ds.validate(); }, c.message);
    // Refused where training and evaluation start, not read past the end later.
    expect_error([&] { TrainBatcher(ds, 4, 2, 1); }, c.message);
    expect_error([&] { make_eval_batches(ds, EvalSplit::Test, 4, 2); }, c.message);
  }
}

TEST(DataSplit, DatasetWithoutATrainingTargetIsRefused) {
  // Three events each: leave-one-out leaves one training item per user, so no next item to learn.
  SequenceDataset ds = tiny_dataset(false);
  ds.sequences = {{1, 2, 3}, {8, 9, 10}, {3, 4, 5}};
  expect_error([&] { TrainBatcher(ds, 4, 2, 1); },
               {"tiny: nothing to train on", "at least 4 events", "none of the 3 users has more than 3"});
  // Masked-item training (BERT4Rec) masks the one training item each user keeps.
  EXPECT_NO_THROW(TrainBatcher(ds, 4, 2, 1, TrainingTargets::masked_items));
  ds.sequences[1].push_back(7);  // one target is enough
  EXPECT_NO_THROW(TrainBatcher(ds, 4, 2, 1));
  SequenceDataset empty;
  empty.source = "empty";
  empty.n_items = 10;
  for (const TrainingTargets targets : {TrainingTargets::next_items, TrainingTargets::masked_items})
    expect_error([&] { TrainBatcher(empty, 4, 2, 1, targets); }, {"empty: nothing to train on: the data has no users"});
}

TEST(DataSplit, NamesFallBackToNumbersWithoutNameTables) {
  SequenceDataset ds = tiny_dataset(false);
  EXPECT_EQ(ds.user_name(1), "12");
  EXPECT_EQ(ds.item_name(4), "4");
  ds.user_ids.clear();
  ds.item_source_ids.clear();
  EXPECT_EQ(ds.user_name(1), "1");  // the row
  EXPECT_EQ(ds.item_name(4), "4");  // the dense id
  expect_error([&] { ds.user_name(3); }, {"tiny: user row 3 is outside 0..2"});
  expect_error([&] { ds.item_name(11); }, {"tiny: item 11 is outside 0..10"});
}

// ---------------------------------------------------------------------------------------------
// Batcher

// The batch row holding dataset row `row`, or -1.
int64_t find_row(const Batch& b, int64_t row) {
  for (int64_t r = 0; r < b.rows; ++r)
    if (b.user_rows[r] == row) return r;
  return -1;
}

Ids row_of(const std::vector<int64_t>& v, int64_t r, int64_t T) { return Ids(v.begin() + r * T, v.begin() + (r + 1) * T); }

std::vector<Batch> one_epoch(TrainBatcher& batcher, int64_t epoch) {
  batcher.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (batcher.next(b)) out.push_back(b);
  return out;
}

TEST(DataBatcher, LeftPaddedWindowsAndShiftedTargets) {
  const SequenceDataset ds = tiny_dataset(true);
  // T larger than every window.
  {
    TrainBatcher batcher(ds, 6, 4, 123);
    EXPECT_EQ(batcher.batches_per_epoch(), 1);
    const auto batches = one_epoch(batcher, 0);
    ASSERT_EQ(batches.size(), 1u);
    const Batch& b = batches[0];
    EXPECT_EQ(b.rows, 4);
    EXPECT_EQ(b.T, 6);
    EXPECT_EQ(b.real_rows, 3);
    const int64_t a = find_row(b, 0), c = find_row(b, 1), d = find_row(b, 2);
    ASSERT_GE(a, 0);
    ASSERT_GE(c, 0);
    ASSERT_GE(d, 0);
    // Row 0: train {1..5} -> inputs {1,2,3,4}, targets {2,3,4,5}.
    EXPECT_EQ(row_of(b.ids, a, 6), (Ids{0, 0, 1, 2, 3, 4}));
    EXPECT_EQ(row_of(b.targets, a, 6), (Ids{0, 0, 2, 3, 4, 5}));
    EXPECT_EQ(row_of(b.timestamps, a, 6), (Ids{0, 0, 10, 20, 30, 40}));
    // Row 1: train {8} -> an empty window, no targets.
    EXPECT_EQ(row_of(b.ids, c, 6), (Ids{0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(row_of(b.targets, c, 6), (Ids{0, 0, 0, 0, 0, 0}));
    // Row 2: train {3,4} -> input {3}, target {4}.
    EXPECT_EQ(row_of(b.ids, d, 6), (Ids{0, 0, 0, 0, 0, 3}));
    EXPECT_EQ(row_of(b.targets, d, 6), (Ids{0, 0, 0, 0, 0, 4}));
    EXPECT_EQ(row_of(b.timestamps, d, 6), (Ids{0, 0, 0, 0, 0, 103}));
    // The newest training item of each row, row 1's included; 0 for the filler row.
    Ids last(4, 0);
    last[a] = 5, last[c] = 8, last[d] = 4;
    EXPECT_EQ(b.last_train_items, last);
  }
  // T smaller than the window: the most recent T positions.
  {
    TrainBatcher batcher(ds, 2, 3, 5);
    const auto batches = one_epoch(batcher, 0);
    ASSERT_EQ(batches.size(), 1u);
    const int64_t a = find_row(batches[0], 0);
    ASSERT_GE(a, 0);
    EXPECT_EQ(row_of(batches[0].ids, a, 2), (Ids{3, 4}));
    EXPECT_EQ(row_of(batches[0].targets, a, 2), (Ids{4, 5}));
    EXPECT_EQ(row_of(batches[0].timestamps, a, 2), (Ids{30, 40}));
  }
  // Without timestamps in the data, none in the batch.
  {
    const SequenceDataset plain = tiny_dataset(false);
    TrainBatcher batcher(plain, 4, 2, 5);
    Batch b;
    ASSERT_TRUE(batcher.next(b));
    EXPECT_TRUE(b.timestamps.empty());
  }
}

TEST(DataBatcher, TargetsAreTheShiftedInputs) {
  SyntheticOptions options;
  options.users = 50;
  options.items = 100;
  options.min_length = 3;
  options.max_length = 30;
  const SequenceDataset ds = make_synthetic_dataset(options);
  const int64_t T = 16;
  TrainBatcher batcher(ds, T, 8, 3);
  for (const Batch& b : one_epoch(batcher, 0)) {
    for (int64_t r = 0; r < b.real_rows; ++r) {
      const auto train = LeaveOneOut::train_items(ds, b.user_rows[r]);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t id = b.ids[r * T + t], target = b.targets[r * T + t];
        EXPECT_EQ(id == 0, target == 0);  // a target exactly where there is an input
        if (t + 1 < T && id != 0) {
          EXPECT_EQ(target, b.ids[r * T + t + 1]);
        }
      }
      // The last target is the last training item (when the window is non-empty).
      if (train.size() >= 2) {
        EXPECT_EQ(b.targets[r * T + T - 1], train.back());
      }
    }
  }
}

TEST(DataBatcher, EveryUserOncePerEpochAndFillerRowsZero) {
  SyntheticOptions options;
  options.users = 10;
  options.min_length = 5;
  options.max_length = 9;
  const SequenceDataset ds = make_synthetic_dataset(options);
  TrainBatcher batcher(ds, 4, 3, 99);
  EXPECT_EQ(batcher.batches_per_epoch(), 4);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = one_epoch(batcher, epoch);
    ASSERT_EQ(batches.size(), 4u);
    std::vector<int64_t> seen;
    for (size_t i = 0; i < batches.size(); ++i) {
      const Batch& b = batches[i];
      EXPECT_EQ(b.rows, 3);
      EXPECT_EQ(b.ids.size(), 12u);
      EXPECT_EQ(b.targets.size(), 12u);
      EXPECT_EQ(b.timestamps.size(), 12u);
      EXPECT_EQ(b.real_rows, i + 1 < batches.size() ? 3 : 1);
      for (int64_t r = 0; r < b.rows; ++r) {
        if (r < b.real_rows) {
          seen.push_back(b.user_rows[r]);
          continue;
        }
        EXPECT_EQ(b.user_rows[r], -1);
        for (int64_t t = 0; t < b.T; ++t) {
          EXPECT_EQ(b.ids[r * b.T + t], 0);
          EXPECT_EQ(b.targets[r * b.T + t], 0);
          EXPECT_EQ(b.timestamps[r * b.T + t], 0);
        }
      }
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (Ids{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
}

Ids epoch_order(TrainBatcher& batcher, int64_t epoch) {
  Ids order;
  for (const Batch& b : one_epoch(batcher, epoch))
    for (int64_t r = 0; r < b.real_rows; ++r) order.push_back(b.user_rows[r]);
  return order;
}

TEST(DataBatcher, ShuffleIsAPureFunctionOfSeedAndEpoch) {
  SyntheticOptions options;
  options.users = 40;
  options.min_length = 4;
  options.max_length = 6;
  const SequenceDataset ds = make_synthetic_dataset(options);
  TrainBatcher a(ds, 5, 8, 2024), b(ds, 5, 8, 2024), other_seed(ds, 5, 8, 2025);
  const Ids a0 = epoch_order(a, 0), a1 = epoch_order(a, 1), a2 = epoch_order(a, 2);
  EXPECT_NE(a0, a1);
  EXPECT_NE(a1, a2);
  // A fresh batcher resuming at epoch 2 replays it; so does going back.
  EXPECT_EQ(epoch_order(b, 2), a2);
  EXPECT_EQ(epoch_order(b, 0), a0);
  EXPECT_EQ(epoch_order(a, 1), a1);
  EXPECT_NE(epoch_order(other_seed, 0), a0);
  // epoch_permutation is a permutation.
  Ids perm = epoch_permutation(1000, 1, 3);
  std::sort(perm.begin(), perm.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(perm[i], i);
  EXPECT_TRUE(epoch_permutation(0, 1, 0).empty());
  // The orders themselves are part of a saved run: a resumed run (of any version) replays them. Each
  // epoch draws from streams of its own; epochs drawing from overlapping ones would repeat shifted.
  EXPECT_EQ(epoch_permutation(8, 1, 1), (Ids{2, 4, 5, 3, 6, 7, 1, 0}));
  EXPECT_EQ(epoch_permutation(8, 1, 2), (Ids{3, 6, 0, 2, 7, 5, 1, 4}));
}

TEST(DataBatcher, EvalBatchesHoldTargetAtLastColumn) {
  const SequenceDataset ds = tiny_dataset(true);
  const int64_t T = 4;
  const auto validation = make_eval_batches(ds, EvalSplit::Validation, T, 2);
  const auto test = make_eval_batches(ds, EvalSplit::Test, T, 2);
  ASSERT_EQ(validation.size(), 2u);
  ASSERT_EQ(test.size(), 2u);
  // Rows in dataset order; the second batch holds one user and one filler row.
  EXPECT_EQ(validation[0].user_rows, (Ids{0, 1}));
  EXPECT_EQ(validation[1].user_rows, (Ids{2, -1}));
  EXPECT_EQ(validation[1].real_rows, 1);
  // Validation inputs {1..5}, {8}, {3,4}; targets 6, 9, 5.
  EXPECT_EQ(validation[0].ids, (Ids{2, 3, 4, 5, 0, 0, 0, 8}));
  EXPECT_EQ(validation[0].targets, (Ids{0, 0, 0, 6, 0, 0, 0, 9}));
  EXPECT_EQ(validation[0].timestamps, (Ids{20, 30, 40, 50, 0, 0, 0, 81}));
  EXPECT_EQ(validation[1].ids, (Ids{0, 0, 3, 4, 0, 0, 0, 0}));
  EXPECT_EQ(validation[1].targets, (Ids{0, 0, 0, 5, 0, 0, 0, 0}));
  // Test inputs {1..6}, {8,9}, {3,4,5}; targets 7, 10, 6.
  EXPECT_EQ(test[0].ids, (Ids{3, 4, 5, 6, 0, 0, 8, 9}));
  EXPECT_EQ(test[0].targets, (Ids{0, 0, 0, 7, 0, 0, 0, 10}));
  EXPECT_EQ(test[1].ids, (Ids{0, 3, 4, 5, 0, 0, 0, 0}));
  EXPECT_EQ(test[1].targets, (Ids{0, 0, 0, 6, 0, 0, 0, 0}));
  EXPECT_EQ(test[1].timestamps, (Ids{0, 103, 104, 105, 0, 0, 0, 0}));
}

TEST(DataBatcher, BadShapesAreRefused) {
  const SequenceDataset ds = tiny_dataset(false);
  expect_error([&] { TrainBatcher(ds, 0, 2, 1); }, {"T must be >= 1"});
  expect_error([&] { TrainBatcher(ds, 4, 0, 1); }, {"batch size must be >= 1"});
  expect_error([&] { make_eval_batches(ds, EvalSplit::Test, 4, -1); }, {"batch size must be >= 1"});
}

// ---------------------------------------------------------------------------------------------
// Synthetic

TEST(DataSynthetic, DeterministicBySeedAndWellFormed) {
  SyntheticOptions options;
  const SequenceDataset a = make_synthetic_dataset(options), b = make_synthetic_dataset(options);
  EXPECT_EQ(a.sequences, b.sequences);
  EXPECT_EQ(a.timestamps, b.timestamps);
  options.seed = 8;
  EXPECT_NE(make_synthetic_dataset(options).sequences, a.sequences);

  EXPECT_EQ(a.num_users(), 2000);
  EXPECT_EQ(a.n_items, 500);
  EXPECT_EQ(a.item_source_ids.size(), 501u);
  EXPECT_EQ(a.user_ids.front(), 1);
  EXPECT_EQ(a.user_ids.back(), 2000);
  ASSERT_EQ(a.timestamps.size(), a.sequences.size());
  std::set<int64_t> items;
  for (int64_t r = 0; r < a.num_users(); ++r) {
    const auto& s = a.sequences[r];
    const auto& t = a.timestamps[r];
    ASSERT_GE(static_cast<int64_t>(s.size()), 20);
    ASSERT_LE(static_cast<int64_t>(s.size()), 60);
    ASSERT_EQ(s.size(), t.size());
    for (size_t i = 0; i < s.size(); ++i) {
      ASSERT_GE(s[i], 1);
      ASSERT_LE(s[i], 500);
      items.insert(s[i]);
      if (i > 0) {  // within a session 30 s .. 15 min, a break 1 hour .. 3 days
        const int64_t gap = t[i] - t[i - 1];
        ASSERT_TRUE((gap >= 30 && gap < 900) || (gap >= 3600 && gap < 3 * 86400)) << gap;
      }
    }
  }
  EXPECT_GT(items.size(), 450u);  // nearly every item occurs
}

TEST(DataSynthetic, NextItemIsPredictableBeyondPopularity) {
  const SequenceDataset ds = make_synthetic_dataset({});
  std::map<int64_t, std::map<int64_t, int64_t>> transitions;
  std::vector<int64_t> counts(ds.n_items + 1, 0);
  int64_t n_transitions = 0, n_events = 0;
  for (const auto& s : ds.sequences) {
    for (size_t i = 0; i < s.size(); ++i) {
      ++counts[s[i]];
      ++n_events;
      if (i > 0) {
        ++transitions[s[i - 1]][s[i]];
        ++n_transitions;
      }
    }
  }
  // Share of transitions explained by "the previous item's most frequent successor" versus the share
  // of events that are the single most popular item (what a popularity model gets at rank 1).
  int64_t top_successor = 0;
  for (const auto& [item, next] : transitions) {
    int64_t best = 0;
    for (const auto& [n, c] : next) best = std::max(best, c);
    top_successor += best;
  }
  const double successor_share = static_cast<double>(top_successor) / n_transitions;
  const double popular_share = static_cast<double>(*std::max_element(counts.begin(), counts.end())) / n_events;
  EXPECT_GT(successor_share, 0.3);
  EXPECT_LT(successor_share, 0.6);  // not trivial either
  EXPECT_GT(successor_share, 10 * popular_share) << successor_share << " vs " << popular_share;
  // The top 10 items cover far less than the top-4 successors do (about 0.7 of transitions).
  std::sort(counts.begin(), counts.end(), std::greater<>());
  int64_t top10 = 0;
  for (int i = 0; i < 10; ++i) top10 += counts[i];
  EXPECT_LT(static_cast<double>(top10) / n_events, 0.15);
}

TEST(DataSynthetic, SmallConfigurationsAndBadOptions) {
  SyntheticOptions options;
  options.users = 3;
  options.items = 2;  // one topic of two items, each the other's only successor
  options.min_length = 3;
  options.max_length = 3;
  const SequenceDataset ds = make_synthetic_dataset(options);
  EXPECT_EQ(ds.num_users(), 3);
  for (const auto& s : ds.sequences) EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(make_eval_batches(ds, EvalSplit::Test, 8, 4).size(), 1u);
  // Always following a successor: an item is never its own, so the two items alternate.
  options.users = 50;
  options.min_length = options.max_length = 8;
  options.follow_probability = 1;
  options.explore_probability = 0;
  for (const auto& s : make_synthetic_dataset(options).sequences)
    for (size_t i = 1; i < s.size(); ++i) ASSERT_NE(s[i], s[i - 1]);

  options.min_length = 2;
  expect_error([&] { make_synthetic_dataset(options); }, {"min_length must be >= 3"});
  options.min_length = 10;
  options.max_length = 5;
  expect_error([&] { make_synthetic_dataset(options); }, {"max_length 5 is below min_length 10"});
  options.max_length = 20;
  options.items = 1;
  expect_error([&] { make_synthetic_dataset(options); }, {"items >= 2"});
}

// ---------------------------------------------------------------------------------------------
// Real benchmark files (skipped where shared/ is absent)

fs::path shared_dir() { return testkit::shared_dir(); }

// Reads `relative` under shared/ and reports the time; empty optional-like flag when absent.
bool read_shared(const std::string& relative, SequenceDataset& ds, double& seconds) {
  const fs::path path = shared_dir() / "data" / relative;
  if (!fs::exists(path)) return false;
  const auto start = std::chrono::steady_clock::now();
  ds = read_dataset(path.string());
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ info     ] read %s in %.3f s: %s\n", relative.c_str(), seconds, ds.report.summary().c_str());
  return true;
}

TEST(DataRealFiles, MovieLens1M) {
  SequenceDataset ds;
  double seconds = 0;
  SKIP_WITHOUT_SHARED(read_shared("ml-1m/ml-1m.txt", ds, seconds), "data/ml-1m/ml-1m.txt");
  EXPECT_EQ(ds.format, Format::UserItemPairs);
  EXPECT_EQ(ds.num_users(), 6040);
  EXPECT_EQ(ds.n_items, 3416);
  EXPECT_EQ(ds.num_events(), 999611);
  EXPECT_EQ(ds.report.users_dropped_short, 0);
  EXPECT_LT(seconds, 2.0);
  TrainBatcher batcher(ds, 200, 128, 1);
  EXPECT_EQ(batcher.batches_per_epoch(), 48);
}

TEST(DataRealFiles, MovieLensLatestSmallCsv) {
  SequenceDataset ds;
  double seconds = 0;
  SKIP_WITHOUT_SHARED(read_shared("ml-latest-small/ratings.csv", ds, seconds), "data/ml-latest-small/ratings.csv");
  EXPECT_EQ(ds.format, Format::MovieLensCsv);
  EXPECT_EQ(ds.num_users(), 610);
  EXPECT_EQ(ds.n_items, 9724);
  EXPECT_EQ(ds.num_events(), 100836);
  // Any user below 3 ratings (the shared copy ends with a one-rating user 999) is skipped and counted.
  EXPECT_EQ(ds.report.users_dropped_short, ds.report.events_dropped);
  EXPECT_EQ(std::count(ds.user_ids.begin(), ds.user_ids.end(), 999), 0);
  ASSERT_EQ(ds.timestamps.size(), 610u);
  for (const auto& ts : ds.timestamps) EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end()));
  EXPECT_TRUE(std::is_sorted(ds.item_source_ids.begin() + 1, ds.item_source_ids.end()));
}

TEST(DataRealFiles, AmazonBeautySequences) {
  SequenceDataset ds;
  double seconds = 0;
  SKIP_WITHOUT_SHARED(read_shared("beauty/Beauty.txt", ds, seconds), "data/beauty/Beauty.txt");
  EXPECT_EQ(ds.format, Format::UserSequences);
  EXPECT_EQ(ds.num_users(), 22363);
  EXPECT_EQ(ds.n_items, 12101);
  EXPECT_EQ(ds.num_events(), 198502);
  // Written out by `prepare` and read back: the same histories under the same ids.
  TempDir tmp;
  const SequenceDataset again = read_dataset(write_prepared_dataset(ds, tmp.path("beauty")).paths.front());
  EXPECT_EQ(again.sequences, ds.sequences);
  EXPECT_EQ(again.n_items, ds.n_items);
}

}  // namespace
}  // namespace muonrec::data

// Serving (models/recommend.h): top-K selection, and recommendations after a whole history that
// agree with the leave-one-out evaluation of the same model.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "muonrec/data/dataset.h"
#include "muonrec/engine/rng.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/recommend.h"
#include "test_util.h"
#include "tiny_model_config.h"
#include "train_util.h"

using namespace muonrec;

TEST(Recommend, top_k_items_orders_by_score_then_item_and_skips_excluded_items) {
  const float nan = std::nanf("");
  const std::vector<float> scores = {1.0f, 3.0f, 3.0f, nan, 2.0f, 0.5f};  // items 1..6
  std::vector<ScoredItem> top = top_k_items(scores.data(), 6, 4, {5, 42});
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].item, 2);
  EXPECT_EQ(top[1].item, 3);
  EXPECT_EQ(top[2].item, 1);
  EXPECT_EQ(top[3].item, 6);
  EXPECT_EQ(top[0].score, 3.0f);
  std::vector<ScoredItem> all = top_k_items(scores.data(), 6, 100, {});
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all.back().item, 4);  // NaN ranks last
}

// The evaluation ranks a target where the served list puts it: ties by item id and NaN last, on
// scores full of ties and NaNs, with and without excluded items (repeats, the target itself and ids
// outside the catalogue among them, which are passed over).
TEST(Recommend, evaluation_ranks_the_target_where_the_served_list_puts_it) {
  const int64_t n = 40;
  PhiloxGenerator gen(5);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<float> scores(n);
    for (float& s : scores) {
      const float u = gen.uniform();
      s = u < 0.1f ? std::nanf("") : u < 0.15f ? INFINITY : std::floor(u * 6.0f);  // many ties
    }
    std::vector<int64_t> seen;
    for (int k = 0; k < trial % 7; ++k) seen.push_back(1 + static_cast<int64_t>(gen.uniform() * (n + 3)));
    for (int64_t target = 1; target <= n; ++target) {
      std::vector<int64_t> excluded = seen;
      excluded.erase(std::remove(excluded.begin(), excluded.end(), target), excluded.end());
      const std::vector<ScoredItem> list = top_k_items(scores.data(), n, n, excluded);
      const auto position = std::find_if(list.begin(), list.end(), [&](const ScoredItem& s) { return s.item == target; });
      ASSERT_NE(position, list.end());
      std::vector<int64_t> with_target = seen;
      with_target.push_back(target);  // never excluded
      RankingAccumulator acc;
      acc.add(0, scores.data(), n, target, with_target);
      ASSERT_EQ(acc.result().ranks.at(0).rank, position - list.begin()) << "trial " << trial << " target " << target;
      RankingAccumulator last;
      last.add_last(0, n, target, with_target);
      EXPECT_EQ(last.result().ranks.at(0).rank, static_cast<int64_t>(list.size()) - 1);
    }
  }
  // A collapsed model (every score equal, or infinite) ranks the target by its id, not first.
  RankingAccumulator collapsed;
  const std::vector<float> equal(n, 0.5f), infinite(n, INFINITY);
  collapsed.add(0, equal.data(), n, 37, {});
  collapsed.add(1, infinite.data(), n, 37, {3, 50});
  EXPECT_EQ(collapsed.result().ranks.at(0).rank, 36);
  EXPECT_EQ(collapsed.result().ranks.at(1).rank, 35);
  EXPECT_EQ(collapsed.result().hr1, 0.0);
}

namespace {

// The dataset with each user's last event removed: its whole histories are the test inputs of `ds`.
data::SequenceDataset without_last_event(data::SequenceDataset ds) {
  for (auto& seq : ds.sequences) seq.pop_back();
  for (auto& ts : ds.timestamps) ts.pop_back();
  return ds;
}

}  // namespace

// Recommending after the history that precedes each user's test item must reproduce the test split's
// HR@10 and NDCG@10 (unfiltered: the evaluation never drops the target), for every model family.
class RecommendModel : public ::testing::TestWithParam<std::string> {};

TEST_P(RecommendModel, lists_after_the_test_inputs_reproduce_the_test_metrics) {
  const data::SequenceDataset ds = testkit::small_synthetic_dataset(150, 60, 5, 25);
  ASSERT_TRUE(ds.has_timestamps());
  const int64_t T = 12;
  auto model = make_model(testkit::tiny_model_config(GetParam(), ds.n_items, T, 2), Device::CPU, 5);
  EvalOptions eval;
  eval.filter_seen = false;
  eval.batch_size = 64;
  const RankingMetrics expected = evaluate_model(*model, ds, data::EvalSplit::Test, eval);

  const data::SequenceDataset inputs = without_last_event(ds);
  std::vector<int64_t> rows;
  for (int64_t row = 0; row < ds.num_users(); ++row) rows.push_back(row);
  RecommendOptions options;
  options.filter_seen = false;
  options.batch_size = 40;  // batches that split differently from the evaluation's
  const auto lists = recommend(*model, inputs, rows, options);
  ASSERT_EQ(lists.size(), rows.size());
  double hr10 = 0, ndcg10 = 0;
  for (int64_t row : rows) {
    const auto& list = lists[row];
    ASSERT_EQ(list.size(), 10u);
    for (size_t r = 0; r < list.size(); ++r) {
      if (r > 0) EXPECT_GE(list[r - 1].score, list[r].score);
      if (list[r].item == ds.sequences[row].back()) {
        hr10 += 1;
        ndcg10 += 1.0 / std::log2(r + 2.0);
      }
    }
  }
  EXPECT_NEAR(hr10 / ds.num_users(), expected.hr10, 1e-9) << expected.summary();
  EXPECT_NEAR(ndcg10 / ds.num_users(), expected.ndcg10, 1e-6) << expected.summary();

  // Filtered lists hold none of the user's items.
  options.filter_seen = true;
  options.k = 5;
  const auto filtered = recommend(*model, ds, {3, 0, 3}, options);
  ASSERT_EQ(filtered.size(), 3u);
  for (size_t u = 0; u < filtered.size(); ++u) {
    const int64_t row = u == 1 ? 0 : 3;
    const std::set<int64_t> seen(ds.sequences[row].begin(), ds.sequences[row].end());
    ASSERT_EQ(filtered[u].size(), 5u);
    for (const ScoredItem& s : filtered[u]) EXPECT_FALSE(seen.count(s.item)) << "row " << row << " item " << s.item;
  }
  EXPECT_EQ(filtered[0][0].item, filtered[2][0].item);
}

INSTANTIATE_TEST_SUITE_P(Models, RecommendModel, ::testing::Values("sasrec", "bert4rec", "hstu"));

TEST(Recommend, refuses_bad_requests_naming_them) {
  const data::SequenceDataset ds = testkit::small_synthetic_dataset(20, 30, 5, 10);
  auto model = make_model(testkit::tiny_model_config("sasrec", ds.n_items, 8, 1), Device::CPU, 1);
  RecommendOptions options;
  options.k = 0;
  testkit::expect_error([&] { recommend(*model, ds, {0}, options); }, {"k must be >= 1, got 0"});
  options.k = 3;
  testkit::expect_error([&] { recommend(*model, ds, {20}, options); }, {"row 20 is outside the dataset's 20 users"});
  auto other = make_model(testkit::tiny_model_config("sasrec", ds.n_items + 1, 8, 1), Device::CPU, 1);
  testkit::expect_error([&] { recommend(*other, ds, {0}, options); }, {"the dataset has 30 items, the model 31"});
}

// The TSV speaks the data file's ids: users and items of a MovieLens CSV map back from the dense
// ids, titles join with their tabs as spaces, and an absent user is named.
TEST(Recommend, writes_the_data_files_own_ids_and_titles) {
  testkit::TempDir tmp;
  const std::string path = tmp.write("ratings.csv",
                                     "userId,movieId,rating,timestamp\n"
                                     "7,31,2.5,10\n7,1029,3.0,11\n7,1061,3.0,12\n"
                                     "40,31,4,20\n40,2,0.5,21\n40,1172,5.0,22\n40,1129,1.0,23\n");
  const data::SequenceDataset ds = data::read_dataset(path);
  ASSERT_EQ(ds.n_items, 6);  // dense 1..6 = movies 2, 31, 1029, 1061, 1129, 1172
  auto model = make_model(testkit::tiny_model_config("sasrec", ds.n_items, 4, 1), Device::CPU, 2);
  const std::vector<int64_t> rows = rows_of_users(ds, {"40"});
  ASSERT_EQ(rows, (std::vector<int64_t>{1}));
  RecommendOptions options;
  options.k = 3;
  const auto lists = recommend(*model, ds, rows, options);
  ASSERT_EQ(lists[0].size(), 2u);  // 6 items, 4 of them seen
  std::vector<std::string> titles(7);
  for (int64_t item = 1; item <= 6; ++item) titles[item] = "movie\t" + std::to_string(ds.item_source_ids[item]);
  std::ostringstream out;
  write_recommendations(out, ds, rows, lists, titles);
  std::istringstream lines(out.str());
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "user\trank\titem\tscore\ttitle");
  std::set<std::string> items;
  for (int rank = 1; std::getline(lines, line); ++rank) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    ASSERT_EQ(fields.size(), 5u) << line;
    EXPECT_EQ(fields[0], "40");
    EXPECT_EQ(fields[1], std::to_string(rank));
    EXPECT_EQ(fields[4], "movie " + fields[2]);
    items.insert(fields[2]);
  }
  EXPECT_EQ(items, (std::set<std::string>{"1029", "1061"}));  // the movies user 40 has not rated

  EXPECT_EQ(rows_of_users(ds, {}).size(), 2u);
  testkit::expect_error([&] { rows_of_users(ds, {"7", "8"}); }, {"user 8 is not in", path});
  testkit::expect_error([&] { rows_of_users(ds, {"7", "7"}); }, {"user 7 is given twice"});
  testkit::expect_error([&] { rows_of_users(ds, {"x7"}); }, {"user x7 is not in", path});
}

// A RecBole file with string tokens (Amazon's reviewer ids and ASINs): users are chosen and items
// printed by their tokens.
TEST(Recommend, names_users_and_items_by_their_recbole_tokens) {
  testkit::TempDir tmp;
  const std::string path = tmp.write("beauty.inter",
                                     "user_id:token\titem_id:token\ttimestamp:float\n"
                                     "A2ZY\tB004\t1\nA2ZY\tB001\t2\nA2ZY\tB003\t3\n"
                                     "A1QX\tB002\t1\nA1QX\tB004\t2\nA1QX\tB005\t3\n");
  const data::SequenceDataset ds = data::read_dataset(path);
  ASSERT_EQ(ds.n_items, 5);
  auto model = make_model(testkit::tiny_model_config("sasrec", ds.n_items, 4, 1), Device::CPU, 2);
  const std::vector<int64_t> rows = rows_of_users(ds, {"A2ZY"});
  ASSERT_EQ(rows, (std::vector<int64_t>{1}));  // A1QX sorts first
  RecommendOptions options;
  options.k = 5;
  std::ostringstream out;
  write_recommendations(out, ds, rows, recommend(*model, ds, rows, options), {});
  std::istringstream lines(out.str());
  std::string line;
  std::getline(lines, line);
  std::set<std::string> items;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.substr(0, 5), "A2ZY\t") << line;
    items.insert(line.substr(line.find('\t', 5) + 1, 4));
  }
  EXPECT_EQ(items, (std::set<std::string>{"B002", "B005"}));  // the items A2ZY does not have
  testkit::expect_error([&] { rows_of_users(ds, {"A9"}); }, {"user A9 is not in", path});
  testkit::expect_error([&] { rows_of_users(ds, {"1"}); }, {"user 1 is not in"});  // ranks are no names
}

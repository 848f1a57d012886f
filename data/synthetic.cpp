#include "muonrec/data/synthetic.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"

namespace muonrec::data {

namespace {

constexpr int64_t kItemsPerTopic = 25;
constexpr int64_t kMaxTopics = 20;
constexpr int64_t kSuccessors = 4;

// Draws from the host Philox generator. Only integer arithmetic and exactly rounded float
// operations (no libm), so the same seed gives the same data on every platform.
class Draws {
 public:
  explicit Draws(uint64_t seed) : gen_(seed) {}
  uint64_t bits() { return gen_.uniform_u64(); }
  double unit() { return static_cast<double>(bits() >> 11) * 0x1p-53; }  // [0, 1)
  int64_t below(int64_t n) { return static_cast<int64_t>(bits() % static_cast<uint64_t>(n)); }
  // Index into a cumulative weight table.
  int64_t pick(const std::vector<double>& cumulative) {
    const double u = unit() * cumulative.back();
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    return std::min<int64_t>(it - cumulative.begin(), static_cast<int64_t>(cumulative.size()) - 1);
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) std::swap(v[i], v[below(i + 1)]);
  }

 private:
  PhiloxGenerator gen_;
};

std::vector<double> zipf_cumulative(int64_t n) {
  std::vector<double> cumulative(n);
  double total = 0;
  for (int64_t r = 0; r < n; ++r) cumulative[r] = total += 1.0 / static_cast<double>(r + 1);
  return cumulative;
}

}  // namespace

SequenceDataset make_synthetic_dataset(const SyntheticOptions& o) {
  MUONREC_CHECK(o.users >= 1, "synthetic data needs users >= 1, got {}", o.users);
  MUONREC_CHECK(o.items >= 2, "synthetic data needs items >= 2, got {}", o.items);
  MUONREC_CHECK(o.min_length >= 3, "synthetic min_length must be >= 3 (leave-one-out), got {}", o.min_length);
  MUONREC_CHECK(o.max_length >= o.min_length, "synthetic max_length {} is below min_length {}", o.max_length,
                o.min_length);
  MUONREC_CHECK(o.follow_probability >= 0 && o.follow_probability <= 1 && o.explore_probability >= 0 &&
                    o.explore_probability <= 1,
                "synthetic probabilities must lie in [0, 1] (follow {}, explore {})", o.follow_probability,
                o.explore_probability);
  Draws draw(o.seed);

  // Topics: a random deal of the items, each topic's member list in random (= popularity) order.
  const int64_t n_topics = std::clamp<int64_t>(o.items / kItemsPerTopic, 1, kMaxTopics);
  std::vector<int64_t> deal(o.items);
  std::iota(deal.begin(), deal.end(), 1);
  draw.shuffle(deal);
  std::vector<std::vector<int64_t>> topic_items(n_topics);
  for (int64_t j = 0; j < o.items; ++j) topic_items[j % n_topics].push_back(deal[j]);
  std::vector<std::vector<double>> topic_popularity(n_topics);
  for (int64_t t = 0; t < n_topics; ++t) topic_popularity[t] = zipf_cumulative(topic_items[t].size());

  // Transitions: up to kSuccessors distinct other items of the same topic, Zipf-weighted by slot.
  std::vector<std::vector<int64_t>> successors(o.items + 1);
  for (int64_t t = 0; t < n_topics; ++t) {
    const auto& members = topic_items[t];
    for (int64_t item : members) {
      std::vector<int64_t> others;
      for (int64_t m : members)
        if (m != item) others.push_back(m);
      draw.shuffle(others);
      others.resize(std::min<int64_t>(kSuccessors, others.size()));
      successors[item] = std::move(others);
    }
  }
  std::vector<std::vector<double>> successor_weights(kSuccessors + 1);
  for (int64_t k = 1; k <= kSuccessors; ++k) successor_weights[k] = zipf_cumulative(k);

  SequenceDataset ds;
  ds.source = fmt::format("synthetic(users={},items={},min_length={},max_length={},seed={})", o.users, o.items,
                          o.min_length, o.max_length, o.seed);
  ds.format = Format::UserSequences;
  ds.n_items = o.items;
  ds.item_source_ids.resize(o.items + 1);
  std::iota(ds.item_source_ids.begin(), ds.item_source_ids.end(), 0);
  ds.sequences.resize(o.users);
  ds.timestamps.resize(o.users);
  ds.user_ids.resize(o.users);

  for (int64_t u = 0; u < o.users; ++u) {
    ds.user_ids[u] = u + 1;
    // Preferred topics: 2 or 3 distinct ones (fewer if there are fewer topics), random weights.
    std::vector<int64_t> topics(n_topics);
    std::iota(topics.begin(), topics.end(), 0);
    draw.shuffle(topics);
    topics.resize(std::min<int64_t>(n_topics, 2 + draw.below(2)));
    std::vector<double> topic_cumulative(topics.size());
    double total = 0;
    for (auto& c : topic_cumulative) c = total += 0.5 + draw.unit();

    auto fresh_item = [&]() {
      const int64_t t = draw.unit() < o.explore_probability ? draw.below(n_topics) : topics[draw.pick(topic_cumulative)];
      return topic_items[t][draw.pick(topic_popularity[t])];
    };

    const int64_t length = o.min_length + draw.below(o.max_length - o.min_length + 1);
    auto& seq = ds.sequences[u];
    auto& ts = ds.timestamps[u];
    seq.reserve(length);
    ts.reserve(length);
    int64_t now = 1500000000 + draw.below(30000000);  // 2017-07 .. 2018-07
    seq.push_back(fresh_item());
    ts.push_back(now);
    for (int64_t i = 1; i < length; ++i) {
      const auto& next = successors[seq.back()];
      if (!next.empty() && draw.unit() < o.follow_probability) {
        seq.push_back(next[draw.pick(successor_weights[next.size()])]);
        now += 30 + draw.below(870);            // same session: 30 s .. 15 min
      } else {
        seq.push_back(fresh_item());
        now += 3600 + draw.below(3 * 86400 - 3600);  // a break: 1 hour .. 3 days
      }
      ts.push_back(now);
    }
  }
  ds.report.min_events_per_user = o.min_length;
  return ds;
}

}  // namespace muonrec::data

#include "data/preprocess.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "engine/error.h"

namespace muonrec::data {

std::string Preprocessing::describe() const {
  if (!any()) return "none";
  std::string out = dedupe ? "dedupe" : "";
  if (k_core > 0) out += fmt::format("{}{}-core", out.empty() ? "" : ", ", k_core);
  return out;
}

std::string PreprocessReport::summary(const Preprocessing& applied) const {
  std::string out;
  if (applied.dedupe) out += fmt::format("{} repeated user-item events dropped", duplicates_dropped);
  if (applied.k_core > 0)
    out += fmt::format("{}{}-core: {} users, {} items and {} events dropped in {} pass{}", out.empty() ? "" : "; ",
                       applied.k_core, k_core_users_dropped, k_core_items_dropped, k_core_events_dropped,
                       k_core_rounds, k_core_rounds == 1 ? "" : "es");
  return out;
}

namespace {

// Calls body(begin, end) for each user's run of events.
template <typename Body>
void for_each_user(const std::vector<Event>& events, Body body) {
  for (size_t begin = 0; begin < events.size();) {
    size_t end = begin;
    while (end < events.size() && events[end].user == events[begin].user) ++end;
    body(begin, end);
    begin = end;
  }
}

}  // namespace

void drop_repeated_items(std::vector<Event>& events, PreprocessReport& report) {
  std::vector<Event> kept;
  kept.reserve(events.size());
  std::unordered_set<int64_t> seen;
  for_each_user(events, [&](size_t begin, size_t end) {
    seen.clear();
    for (size_t i = begin; i < end; ++i)
      if (seen.insert(events[i].item).second) kept.push_back(events[i]);
  });
  report.duplicates_dropped += static_cast<int64_t>(events.size() - kept.size());
  events = std::move(kept);
}

void keep_k_core(std::vector<Event>& events, int64_t k, PreprocessReport& report) {
  MUONREC_CHECK(k >= 0, "k-core: k must be >= 0, got {}", k);
  if (k == 0 || events.empty()) return;
  // Compact user and item indexes, so the counts are plain arrays whatever the source ids are.
  std::vector<int64_t> items(events.size());
  for (size_t i = 0; i < events.size(); ++i) items[i] = events[i].item;
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  std::vector<int64_t> item_of(events.size()), user_of(events.size());
  int64_t n_users = 0;
  for_each_user(events, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) user_of[i] = n_users;
    ++n_users;
  });
  for (size_t i = 0; i < events.size(); ++i)
    item_of[i] = std::lower_bound(items.begin(), items.end(), events[i].item) - items.begin();

  // Dropping a user can take an item below k and the other way round: repeat to the fixed point.
  std::vector<char> alive(events.size(), 1);
  std::vector<int64_t> user_count, item_count;
  for (;;) {
    user_count.assign(static_cast<size_t>(n_users), 0);
    item_count.assign(items.size(), 0);
    for (size_t i = 0; i < events.size(); ++i)
      if (alive[i]) ++user_count[user_of[i]], ++item_count[item_of[i]];
    ++report.k_core_rounds;
    bool dropped = false;
    for (size_t i = 0; i < events.size(); ++i)
      if (alive[i] && (user_count[user_of[i]] < k || item_count[item_of[i]] < k)) alive[i] = 0, dropped = true;
    if (!dropped) break;
  }
  const auto remaining = [](const std::vector<int64_t>& counts) {
    return static_cast<int64_t>(std::count_if(counts.begin(), counts.end(), [](int64_t c) { return c > 0; }));
  };
  report.k_core_users_dropped += n_users - remaining(user_count);
  report.k_core_items_dropped += static_cast<int64_t>(items.size()) - remaining(item_count);
  size_t kept = 0;
  for (size_t i = 0; i < events.size(); ++i)
    if (alive[i]) events[kept++] = events[i];
  report.k_core_events_dropped += static_cast<int64_t>(events.size() - kept);
  events.resize(kept);
}

void preprocess(std::vector<Event>& events, const Preprocessing& preprocessing, PreprocessReport& report) {
  if (preprocessing.dedupe) drop_repeated_items(events, report);
  keep_k_core(events, preprocessing.k_core, report);
}

}  // namespace muonrec::data

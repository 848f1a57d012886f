#include "muonrec/data/preprocess.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <unordered_set>

#include "muonrec/engine/error.h"

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
  if (applied.k_core > 0) {
    const std::string users_need =
        k_core_user_minimum > applied.k_core
            ? fmt::format(" (users: at least {} events, as the split needs)", k_core_user_minimum)
            : "";
    out += fmt::format("{}{}-core{}: {} users, {} items and {} events dropped in {} pass{}", out.empty() ? "" : "; ",
                       applied.k_core, users_need, k_core_users_dropped, k_core_items_dropped, k_core_events_dropped,
                       k_core_rounds, k_core_rounds == 1 ? "" : "es");
  }
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

void keep_k_core(std::vector<Event>& events, int64_t user_k, int64_t item_k, PreprocessReport& report) {
  MUONREC_CHECK(user_k >= 0 && item_k >= 0, "k-core: the minimums must be >= 0, got {} per user and {} per item",
                user_k, item_k);
  report.k_core_user_minimum = user_k;
  if ((user_k == 0 && item_k == 0) || events.empty()) return;
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

  // Dropping a user can take an item below its minimum and the other way round, to the fixed point. Peeled
  // in waves: wave r holds the users and items that the drops of wave r - 1 took below theirs, and drops all
  // their events. Each event is dropped once, so a long chain of cascading drops costs no more than
  // the events it drops (recounting everything per wave would be quadratic in the chain's length).
  std::vector<int64_t> user_count(static_cast<size_t>(n_users), 0), item_count(items.size(), 0);
  std::vector<int64_t> item_event_start(items.size() + 1, 0), user_event_start(static_cast<size_t>(n_users) + 1, 0);
  for (size_t i = 0; i < events.size(); ++i) {
    ++user_count[user_of[i]], ++item_count[item_of[i]];
    ++item_event_start[item_of[i] + 1], ++user_event_start[user_of[i] + 1];
  }
  std::partial_sum(item_event_start.begin(), item_event_start.end(), item_event_start.begin());
  std::partial_sum(user_event_start.begin(), user_event_start.end(), user_event_start.begin());
  std::vector<int64_t> item_events(events.size());
  std::vector<int64_t> next_slot(item_event_start.begin(), item_event_start.end() - 1);
  for (size_t i = 0; i < events.size(); ++i) item_events[next_slot[item_of[i]]++] = static_cast<int64_t>(i);

  std::vector<char> alive(events.size(), 1), user_dropped(user_count.size(), 0), item_dropped(items.size(), 0);
  std::vector<int64_t> wave_users, wave_items, next_users, next_items;
  for (size_t u = 0; u < user_count.size(); ++u)
    if (user_count[u] < user_k) user_dropped[u] = 1, wave_users.push_back(static_cast<int64_t>(u));
  for (size_t t = 0; t < items.size(); ++t)
    if (item_count[t] < item_k) item_dropped[t] = 1, wave_items.push_back(static_cast<int64_t>(t));
  int64_t dropped_in_wave = 0;
  const auto drop_event = [&](int64_t i) {
    if (!alive[i]) return;
    alive[i] = 0;
    ++dropped_in_wave;
    const int64_t u = user_of[i], t = item_of[i];
    if (--user_count[u] < user_k && !user_dropped[u]) user_dropped[u] = 1, next_users.push_back(u);
    if (--item_count[t] < item_k && !item_dropped[t]) item_dropped[t] = 1, next_items.push_back(t);
  };
  // Counted as passes that recount everything would take: one per wave that drops an event (a wave
  // may find its users and items without events left), and the last one, which finds none to drop.
  ++report.k_core_rounds;
  while (!wave_users.empty() || !wave_items.empty()) {
    dropped_in_wave = 0;
    for (int64_t u : wave_users)
      for (int64_t i = user_event_start[u]; i < user_event_start[u + 1]; ++i) drop_event(i);
    for (int64_t t : wave_items)
      for (int64_t slot = item_event_start[t]; slot < item_event_start[t + 1]; ++slot) drop_event(item_events[slot]);
    if (dropped_in_wave > 0) ++report.k_core_rounds;
    wave_users.swap(next_users);
    wave_items.swap(next_items);
    next_users.clear();
    next_items.clear();
  }
  const auto remaining = [](const std::vector<char>& dropped) {
    return static_cast<int64_t>(std::count(dropped.begin(), dropped.end(), 0));
  };
  report.k_core_users_dropped += n_users - remaining(user_dropped);
  report.k_core_items_dropped += static_cast<int64_t>(items.size()) - remaining(item_dropped);
  size_t kept = 0;
  for (size_t i = 0; i < events.size(); ++i)
    if (alive[i]) events[kept++] = events[i];
  report.k_core_events_dropped += static_cast<int64_t>(events.size() - kept);
  events.resize(kept);
}

void preprocess(std::vector<Event>& events, const Preprocessing& preprocessing, int64_t min_user_events,
                PreprocessReport& report) {
  if (preprocessing.dedupe) drop_repeated_items(events, report);
  const int64_t k = preprocessing.k_core;
  MUONREC_CHECK(k >= 0, "k-core: k must be >= 0, got {}", k);
  if (k > 0) keep_k_core(events, std::max(k, min_user_events), k, report);
}

}  // namespace muonrec::data

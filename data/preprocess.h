// Preprocessing of raw interaction events before they become sequences: dropping repeated
// user-item events and keeping the k-core (the usual preparation of Amazon and Yelp files, whose
// published numbers are on 5-cores). The readers apply it (ReadOptions::preprocessing) after putting
// each user's events in time order and before the leave-one-out length threshold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muonrec::data {

struct Event {
  int64_t user;
  int64_t item;
  int64_t timestamp;         // whole seconds (floor); 0 for files without timestamps
  float second_fraction = 0;  // [0, 1): orders the events of one second (a file's '0.1' and '0.9')
};

struct Preprocessing {
  bool dedupe = false;  // keep only a user's first event with each item
  int64_t k_core = 0;   // 0: off; k: users and items with at least k events, repeated until both hold
  bool any() const { return dedupe || k_core > 0; }
  std::string describe() const;  // "none", "dedupe", "5-core", "dedupe, 5-core"
};

// What preprocessing removed (ReadReport prints it).
struct PreprocessReport {
  int64_t duplicates_dropped = 0;
  int64_t k_core_user_minimum = 0;  // the events a user needed: k, or the readers' minimum where larger
  int64_t k_core_rounds = 0;        // passes until no user or item fell below its minimum
  int64_t k_core_users_dropped = 0;
  int64_t k_core_items_dropped = 0;
  int64_t k_core_events_dropped = 0;
  std::string summary(const Preprocessing& applied) const;  // "" when nothing was asked
};

// `events` hold each user's events together, in time order; they keep that order.
void drop_repeated_items(std::vector<Event>& events, PreprocessReport& report);
// Users with at least `user_k` events and items with at least `item_k`, to the fixed point.
void keep_k_core(std::vector<Event>& events, int64_t user_k, int64_t item_k, PreprocessReport& report);
// A k-core's users need at least max(k, min_user_events): a user the readers drop afterwards for
// being too short to split would take items back below k.
void preprocess(std::vector<Event>& events, const Preprocessing& preprocessing, int64_t min_user_events,
                PreprocessReport& report);

}  // namespace muonrec::data

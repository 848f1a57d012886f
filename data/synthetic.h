// The built-in default dataset: sequences with structure a small sequential model can learn in
// minutes on a CPU, far beyond what item popularity explains, deterministic by seed.
//
// Generative process (every random choice drawn from Philox under `seed`):
//   - Items 1..items are dealt at random into K latent topics (K = items / 25, clamped to 1..20).
//     Within a topic, items get Zipf popularity weights 1/rank over a random ranking.
//   - Each item has up to 4 distinct successors in its own topic, with Zipf weights 1, 1/2, 1/3,
//     1/4 (normalised: about 0.48, 0.24, 0.16, 0.12): the sparse item-to-item transitions.
//   - Each user prefers 2 or 3 topics with random weights and has a length uniform in
//     [min_length, max_length]. The first item is a popularity draw from a preferred topic.
//   - Each next item: with probability follow_probability (0.7) a successor of the previous item,
//     arriving soon after it (30 s to 15 min: same session); otherwise a popularity draw from a
//     topic, arriving after a long break (1 hour to 3 days). That topic is a uniformly random one
//     with probability explore_probability (a topic switch, 0.1), else one of the user's own.
// So the previous item predicts the next about 0.7 * 0.48 of the time through its top successor,
// while the most popular item accounts for about 1% of events; the time gap tells whether a
// transition or a fresh draw happened (signal for HSTU's time bias); the user's topic mix carries
// the rest. Timestamps are unix seconds, strictly increasing within each user.
#pragma once

#include <cstdint>

#include "muonrec/data/dataset.h"

namespace muonrec::data {

struct SyntheticOptions {
  int64_t users = 2000;
  int64_t items = 500;
  int64_t min_length = 20;  // >= 3, leave-one-out needs train, validation and test events
  int64_t max_length = 60;
  uint64_t seed = 7;
  double follow_probability = 0.7;   // next item follows the previous item's transitions
  double explore_probability = 0.1;  // a fresh draw comes from any topic rather than the user's own
};

SequenceDataset make_synthetic_dataset(const SyntheticOptions& options = {});

}  // namespace muonrec::data

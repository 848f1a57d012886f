// Retrieval with a TIGER model: constrained beam search over the items' semantic IDs
// (semantic_id::constrained_beam_search_batch with the prefix trie of every item's full code), and
// its evaluation with the same RankingAccumulator as the full-ranking models.
//
// The histories of a chunk of users are encoded once (TigerModel::start_generation keeps every
// block's keys and values: a KV cache); each later step runs only the newest code of every live
// beam of the chunk, in one batch, against that cache and the cached codes of the beam's parent.
// The history is the last max_items items, whole: with the codes generated after it, the blocks
// read at most TigerConfig::window() tokens, the longest training window.
//
// Metrics: the beam returns at most beam_width items in descending joint log-probability of the
// full code. Items of the user's input history are excluded inside the search (the other models'
// "seen items filtered" protocol, unless filter_seen is off; the target itself is never excluded),
// so no beam is spent on them, and the target's rank is its position in the list. A target that was
// not returned gets rank n_items - 1, the worst it could have (a hit only at cut-offs no smaller than
// the catalogue). So HR@K and NDCG@K are exact for K up to beam_width (keep beam_width at least K;
// the default of 20 makes HR@10/NDCG@10 exact), while HR@50, HR@200, NDCG@50/200 and MRR are lower
// bounds.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/data/split.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/semantic_id/beam_search.h"
#include "muonrec/models/tiger.h"

namespace muonrec {

struct TigerGenerateOptions {
  int64_t beam_width = 20;       // beams kept per step = items returned
  // Users decoded together (batch rows = users x live beams). On 2 CPU cores 32 was fastest on
  // Beauty (bigger batches thrash memory); a GPU wants more.
  int64_t users_per_chunk = 32;
  // Called with 0 users decoded as a pass starts, then after each chunk with the users decoded so
  // far, and their number (users_progress in models/run_log.h prints a line now and then); empty:
  // nothing.
  std::function<void(int64_t, int64_t)> progress;
};

// histories[u] is user u's input (oldest first; only the last max_items items are read). Returns, per user, the items
// in descending score order (ties: ascending item id), at most beam_width. excluded, when not empty,
// lists per user the items never to return (constrained_beam_search_batch's).
std::vector<std::vector<semantic_id::BeamHit>> tiger_generate(TigerModel& model, const TigerCatalog& catalog,
                                                              const std::vector<std::vector<int64_t>>& histories,
                                                              const TigerGenerateOptions& options,
                                                              const std::vector<std::vector<int64_t>>& excluded = {});

struct TigerEvalOptions {
  TigerGenerateOptions generate;
  bool filter_seen = true;
  int64_t filter_seen_last = 0;  // as EvalOptions'
  int64_t max_users = 0;  // evaluate a fixed random sample of this many users (0: all)
  uint64_t sample_seed = 0;
};

RankingMetrics evaluate_tiger(TigerModel& model, const TigerCatalog& catalog, const data::SequenceDataset& dataset, data::EvalSplit split,
                              const TigerEvalOptions& options);

}  // namespace muonrec

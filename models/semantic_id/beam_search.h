// Constrained beam search over semantic IDs (TIGER-style generative retrieval). The caller's model
// scores the next token of every live prefix; only tokens the PrefixTrie allows are expanded, so
// every finished beam is a real item, and distinct beams are distinct items (codes are unique).
//
// A beam's score is the sum of the log-probabilities of its tokens, accumulated in float in position
// order (the same order a brute-force scorer would use, so scores compare exactly). The scores are
// not renormalised over the allowed tokens: the ranking is the model's joint log-probability of the
// full code. Ties are broken deterministically: while decoding by (parent beam, token) order, and
// in the final list by ascending item id.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "muonrec/models/semantic_id/prefix_trie.h"

namespace muonrec::semantic_id {

struct BeamSearchOptions {
  int64_t top_k = 10;       // items returned (fewer when fewer items exist)
  int64_t beam_width = 0;   // beams kept per step; 0 means top_k; must be >= top_k otherwise
};

struct BeamHit {
  int64_t item = 0;
  float score = 0.0f;              // sum of log-probabilities over the code
  std::vector<int64_t> code;       // depth tokens
};

// For each live prefix (all of the same length t, the first call has one empty prefix), fill
// log_probs[b] with log-probabilities over the vocabulary of position t. log_probs arrives sized to
// prefixes.size() (inner vectors empty); each inner vector must cover every token the trie allows
// after that prefix (it may be the full vocabulary of the position). NaN or +inf is an error; -inf
// is allowed (such a beam is kept only when nothing better exists).
using StepScorer = std::function<void(const std::vector<std::vector<int64_t>>& prefixes,
                                      std::vector<std::vector<float>>& log_probs)>;

// The batched form: users[b] says which user prefix b belongs to, so a model can score all users'
// beams in one forward pass per step.
using BatchStepScorer = std::function<void(const std::vector<int64_t>& users,
                                           const std::vector<std::vector<int64_t>>& prefixes,
                                           std::vector<std::vector<float>>& log_probs)>;

// Top items in descending score order (ties: ascending item id), at most top_k of them.
std::vector<BeamHit> constrained_beam_search(const PrefixTrie& trie, const StepScorer& scorer,
                                             const BeamSearchOptions& options = {});

// One result list per user 0..n_users-1; one scorer call per step covers all users. excluded, when
// not empty, holds one list of item ids per user that the search never returns: prefixes whose
// items are all excluded are not expanded, so the beams go to the remaining items (the top_k
// results are then those a search over a trie without them would give).
std::vector<std::vector<BeamHit>> constrained_beam_search_batch(const PrefixTrie& trie, int64_t n_users,
                                                                const BatchStepScorer& scorer,
                                                                const BeamSearchOptions& options = {},
                                                                const std::vector<std::vector<int64_t>>& excluded = {});

}  // namespace muonrec::semantic_id

#include "muonrec/models/semantic_id/beam_search.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "muonrec/engine/error.h"

namespace muonrec::semantic_id {
namespace {

struct Beam {
  int32_t node;
  float score;
  std::vector<int64_t> prefix;
};

struct Candidate {
  float score;
  int32_t parent;  // index of the beam it extends (beams are kept in rank order)
  int64_t token;
  int32_t node;
};

// How many of a user's excluded items lie under each trie node: a node whose items are all
// excluded leads nowhere, so no beam is spent on it.
class ExcludedItems {
 public:
  ExcludedItems(const PrefixTrie& trie, std::vector<int64_t> items) : trie_(&trie) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    for (int64_t item : items) {
      int32_t node = trie.leaf(item);
      MUONREC_CHECK(node >= 0, "constrained_beam_search: excluded item {} is not one of the {} items", item,
                    trie.n_items());
      for (; node >= 0; node = trie.parent(node)) ++below_[node];
    }
  }
  bool closed(int32_t node) const {
    auto it = below_.find(node);
    return it != below_.end() && it->second == trie_->node_count(node);
  }

 private:
  const PrefixTrie* trie_;
  std::unordered_map<int32_t, int64_t> below_;
};

}  // namespace

std::vector<std::vector<BeamHit>> constrained_beam_search_batch(const PrefixTrie& trie, int64_t n_users,
                                                                const BatchStepScorer& scorer,
                                                                const BeamSearchOptions& options,
                                                                const std::vector<std::vector<int64_t>>& excluded) {
  MUONREC_CHECK(n_users >= 0, "constrained_beam_search: n_users must be >= 0, got {}", n_users);
  MUONREC_CHECK(options.top_k >= 1, "constrained_beam_search: top_k must be >= 1, got {}", options.top_k);
  const int64_t width = options.beam_width == 0 ? options.top_k : options.beam_width;
  MUONREC_CHECK(width >= options.top_k, "constrained_beam_search: beam_width {} is smaller than top_k {}", width,
                options.top_k);
  MUONREC_CHECK(static_cast<bool>(scorer), "constrained_beam_search: no scorer given");
  std::vector<std::vector<BeamHit>> results(static_cast<size_t>(n_users));
  if (n_users == 0 || trie.depth() == 0 || trie.num_nodes() == 0 || trie.n_items() == 0) return results;
  const int64_t depth = trie.depth();
  MUONREC_CHECK(excluded.empty() || static_cast<int64_t>(excluded.size()) == n_users,
                "constrained_beam_search: {} excluded-item lists for {} users", excluded.size(), n_users);
  std::vector<ExcludedItems> closed_nodes;
  for (const std::vector<int64_t>& items : excluded) closed_nodes.emplace_back(trie, items);

  std::vector<std::vector<Beam>> beams(static_cast<size_t>(n_users));
  for (auto& b : beams) b.push_back(Beam{PrefixTrie::kRoot, 0.0f, {}});

  std::vector<int64_t> users;
  std::vector<std::vector<int64_t>> prefixes;
  std::vector<std::vector<float>> log_probs;
  std::vector<Candidate> cand;
  for (int64_t step = 0; step < depth; ++step) {
    users.clear();
    prefixes.clear();
    for (int64_t u = 0; u < n_users; ++u)
      for (const Beam& b : beams[u]) {
        users.push_back(u);
        prefixes.push_back(b.prefix);
      }
    if (prefixes.empty()) break;
    log_probs.assign(prefixes.size(), {});
    scorer(users, prefixes, log_probs);
    MUONREC_CHECK(log_probs.size() == prefixes.size(),
                  "constrained_beam_search: step {}: scorer returned {} rows for {} prefixes", step, log_probs.size(),
                  prefixes.size());

    size_t row = 0;
    for (int64_t u = 0; u < n_users; ++u) {
      std::vector<Beam>& live = beams[u];
      cand.clear();
      for (size_t b = 0; b < live.size(); ++b, ++row) {
        const std::vector<float>& lp = log_probs[row];
        const std::vector<int64_t>& tokens = trie.tokens(live[b].node);
        const std::vector<int32_t>& kids = trie.children(live[b].node);
        MUONREC_CHECK(tokens.empty() || static_cast<int64_t>(lp.size()) > tokens.back(),
                      "constrained_beam_search: step {}: scorer gave {} log-probabilities for user {} beam {}, but "
                      "token {} is allowed",
                      step, lp.size(), u, b, tokens.empty() ? 0 : tokens.back());
        for (size_t t = 0; t < tokens.size(); ++t) {
          if (!closed_nodes.empty() && closed_nodes[u].closed(kids[t])) continue;
          const float v = lp[tokens[t]];
          MUONREC_CHECK(!std::isnan(v) && v != INFINITY,
                        "constrained_beam_search: step {}: log-probability of token {} for user {} beam {} is {}",
                        step, tokens[t], u, b, v);
          cand.push_back(Candidate{live[b].score + v, static_cast<int32_t>(b), tokens[t], kids[t]});
        }
      }
      const bool last = step + 1 == depth;
      const size_t keep = std::min(cand.size(), static_cast<size_t>(last ? options.top_k : width));
      if (last) {
        // Final ranking: score, then item id.
        auto by_item = [&](const Candidate& a, const Candidate& b) {
          if (a.score != b.score) return a.score > b.score;
          return trie.leaf_item(a.node) < trie.leaf_item(b.node);
        };
        std::partial_sort(cand.begin(), cand.begin() + keep, cand.end(), by_item);
      } else {
        // Parent beams are in rank order, and each parent's tokens ascending: (parent, token) is a
        // deterministic tie-break that needs no prefix comparison.
        auto by_rank = [](const Candidate& a, const Candidate& b) {
          if (a.score != b.score) return a.score > b.score;
          if (a.parent != b.parent) return a.parent < b.parent;
          return a.token < b.token;
        };
        std::partial_sort(cand.begin(), cand.begin() + keep, cand.end(), by_rank);
      }
      std::vector<Beam> next;
      next.reserve(keep);
      for (size_t i = 0; i < keep; ++i) {
        const Candidate& c = cand[i];
        Beam nb{c.node, c.score, live[c.parent].prefix};
        nb.prefix.push_back(c.token);
        next.push_back(std::move(nb));
      }
      live = std::move(next);
    }
  }

  for (int64_t u = 0; u < n_users; ++u)
    for (Beam& b : beams[u]) {
      if (static_cast<int64_t>(b.prefix.size()) != depth) continue;
      const int64_t item = trie.leaf_item(b.node);
      MUONREC_CHECK(item > 0, "constrained_beam_search: finished beam reached no item (internal error)");
      results[u].push_back(BeamHit{item, b.score, std::move(b.prefix)});
    }
  return results;
}

std::vector<BeamHit> constrained_beam_search(const PrefixTrie& trie, const StepScorer& scorer,
                                             const BeamSearchOptions& options) {
  MUONREC_CHECK(static_cast<bool>(scorer), "constrained_beam_search: no scorer given");
  BatchStepScorer batch = [&scorer](const std::vector<int64_t>&, const std::vector<std::vector<int64_t>>& prefixes,
                                    std::vector<std::vector<float>>& log_probs) { scorer(prefixes, log_probs); };
  return constrained_beam_search_batch(trie, 1, batch, options)[0];
}

}  // namespace muonrec::semantic_id

#include "muonrec/models/tiger_generate.h"

#include <algorithm>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"

namespace muonrec {

std::vector<std::vector<semantic_id::BeamHit>> tiger_generate(TigerModel& model, const TigerCatalog& catalog,
                                                              const std::vector<std::vector<int64_t>>& histories,
                                                              const TigerGenerateOptions& options,
                                                              const std::vector<std::vector<int64_t>>& excluded) {
  NVTX_RANGE("tiger.generate");
  NoGradGuard no_grad;
  const ItemTokens& tokens = catalog.tokens;
  const semantic_id::PrefixTrie& trie = catalog.trie;
  const SemanticIdVocab& vocab = model.vocab();
  const int64_t C = vocab.code_length(), W = model.config().history_window(), max_items = model.config().max_items;
  MUONREC_CHECK(options.beam_width >= 1 && options.users_per_chunk >= 1,
                "tiger generate: beam width and users per chunk must be positive");
  MUONREC_CHECK(tokens.vocab.vocab_sizes() == vocab.vocab_sizes() && trie.depth() == C,
                "tiger generate: the item tokens / trie (depth {}) do not match the model's vocabulary ({} levels)",
                trie.depth(), C);
  MUONREC_CHECK(excluded.empty() || excluded.size() == histories.size(),
                "tiger generate: {} excluded-item lists for {} users", excluded.size(), histories.size());
  semantic_id::BeamSearchOptions beam;
  beam.top_k = beam.beam_width = options.beam_width;

  const auto n_users = static_cast<int64_t>(histories.size());
  std::vector<std::vector<semantic_id::BeamHit>> results(static_cast<size_t>(n_users));
  std::vector<int64_t> ids, positions;
  std::vector<int64_t> newest_tokens, parent_rows, previous_users;
  std::vector<std::vector<int64_t>> previous_prefixes;
  if (options.progress) options.progress(0, n_users);
  for (int64_t first = 0; first < n_users; first += options.users_per_chunk) {
    const int64_t count = std::min(options.users_per_chunk, n_users - first);
    // Only the newest max_items items of a history can reach the window.
    auto history = [&](int64_t u) -> std::pair<const int64_t*, int64_t> {
      const std::vector<int64_t>& h = histories[static_cast<size_t>(first + u)];
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(h.size()), max_items);
      return {h.data() + h.size() - n, n};
    };
    // The histories are encoded once per chunk (step 0); later steps run only each beam's newest
    // code against that cache.
    TransformerBlocks::Cache cache;
    semantic_id::BatchStepScorer scorer = [&](const std::vector<int64_t>& users,
                                              const std::vector<std::vector<int64_t>>& prefixes,
                                              std::vector<std::vector<float>>& log_probs) {
      const auto rows = static_cast<int64_t>(prefixes.size());
      const auto level = static_cast<int64_t>(prefixes[0].size());
      std::vector<float> lp;
      if (level == 0) {
        // One empty beam per user, in user order. The batch is cut to its longest history.
        int64_t T = 1;
        for (int64_t r = 0; r < rows; ++r) {
          MUONREC_CHECK(users[r] == r, "tiger generate: the first step expects one beam per user");
          T = std::max(T, std::min(W, history(r).second * C));
        }
        ids.assign(static_cast<size_t>(rows * T), 0);
        positions.assign(ids.size(), 0);
        for (int64_t r = 0; r < rows; ++r) {
          auto [items, n] = history(r);
          fill_generation_window(tokens, items, n, {}, T, ids.data() + r * T, positions.data() + r * T);
        }
        lp = model.start_generation(make_tiger_batch(vocab, ids, positions, {}, rows, T, model.device()), cache);
      } else {
        // Each beam runs only its newest code; the rest of its prefix is its parent's, the beam of
        // the previous step (same user, same codes but the last), whose positions the cache holds.
        newest_tokens.clear();
        parent_rows.clear();
        size_t parent = 0;
        for (int64_t r = 0; r < rows; ++r) {
          newest_tokens.push_back(vocab.token(level - 1, prefixes[r][level - 1]));
          if (level == 1) continue;
          // Both steps list beams user by user, so the search only moves forward.
          auto is_parent = [&](size_t p) {
            return previous_users[p] == users[r] &&
                   std::equal(previous_prefixes[p].begin(), previous_prefixes[p].end(), prefixes[r].begin());
          };
          while (parent < previous_users.size() && previous_users[parent] < users[r]) ++parent;
          size_t p = parent;
          while (p < previous_users.size() && !is_parent(p)) ++p;
          MUONREC_CHECK(p < previous_users.size(), "tiger generate: beam {} of user {} extends no beam of the last step",
                        r, users[r]);
          parent_rows.push_back(static_cast<int64_t>(p));
        }
        lp = model.continue_generation(cache, users, parent_rows, newest_tokens);
      }
      previous_users = users;
      previous_prefixes = prefixes;
      const int64_t V = vocab.vocab(level);
      for (int64_t r = 0; r < rows; ++r) log_probs[r].assign(lp.begin() + r * V, lp.begin() + (r + 1) * V);
    };
    const std::vector<std::vector<int64_t>> chunk_excluded =
        excluded.empty() ? std::vector<std::vector<int64_t>>{}
                         : std::vector<std::vector<int64_t>>(excluded.begin() + first, excluded.begin() + first + count);
    auto hits = semantic_id::constrained_beam_search_batch(trie, count, scorer, beam, chunk_excluded);
    for (int64_t u = 0; u < count; ++u) results[first + u] = std::move(hits[u]);
    if (options.progress) options.progress(first + count, n_users);
  }
  return results;
}

RankingMetrics evaluate_tiger(TigerModel& model, const TigerCatalog& catalog, const data::SequenceDataset& dataset, data::EvalSplit split,
                              const TigerEvalOptions& options) {
  NVTX_RANGE("tiger.evaluate");
  MUONREC_CHECK(catalog.tokens.n_items == dataset.n_items,
                "tiger evaluate: the tokenizer has {} items, the dataset {}", catalog.tokens.n_items, dataset.n_items);
  std::vector<data::EvalExample> examples = data::LeaveOneOut::examples(dataset, split);
  if (options.max_users > 0 && options.max_users < static_cast<int64_t>(examples.size())) {
    std::vector<int64_t> pick = data::epoch_permutation(static_cast<int64_t>(examples.size()), options.sample_seed, 0);
    pick.resize(static_cast<size_t>(options.max_users));
    std::sort(pick.begin(), pick.end());
    std::vector<data::EvalExample> sample;
    for (int64_t i : pick) sample.push_back(examples[static_cast<size_t>(i)]);
    examples = std::move(sample);
  }
  // Users with similar history lengths decode together, so each chunk's window is cut short.
  const int64_t max_items = model.config().max_items;
  std::stable_sort(examples.begin(), examples.end(), [&](const data::EvalExample& a, const data::EvalExample& b) {
    return std::min(a.input_length, max_items) < std::min(b.input_length, max_items);
  });
  std::vector<std::vector<int64_t>> histories;
  histories.reserve(examples.size());
  for (const data::EvalExample& e : examples) {
    const auto& seq = dataset.sequences[static_cast<size_t>(e.row)];
    histories.emplace_back(seq.begin(), seq.begin() + e.input_length);
  }
  // Seen items (never the target) are excluded inside the search, so the beams go to the rest.
  std::vector<std::vector<int64_t>> seen;
  if (options.filter_seen)
    for (size_t i = 0; i < examples.size(); ++i) {
      seen.push_back(seen_items(histories[i].data(), static_cast<int64_t>(histories[i].size()),
                                options.filter_seen_last));
      auto& s = seen.back();
      s.erase(std::remove(s.begin(), s.end(), examples[i].target), s.end());
    }
  auto hits = tiger_generate(model, catalog, histories, options.generate, seen);
  RankingAccumulator acc;
  const std::vector<int64_t> no_seen;
  for (size_t i = 0; i < examples.size(); ++i) {
    const std::vector<semantic_id::BeamHit>& h = hits[i];
    auto found = std::find_if(h.begin(), h.end(),
                              [&](const semantic_id::BeamHit& hit) { return hit.item == examples[i].target; });
    if (found != h.end())
      acc.add_rank(examples[i].row, found - h.begin());
    else
      acc.add_last(examples[i].row, dataset.n_items, examples[i].target, options.filter_seen ? seen[i] : no_seen);
  }
  return acc.result();
}

}  // namespace muonrec

// The token layout of TIGER-style generative retrieval: how an item's semantic ID (RqKMeans codes,
// `levels` of them and then the disambiguation token) becomes decoder tokens, and how a user's
// history becomes a left-padded token window.
//
//   token 0                       padding
//   token offset(l) + code        code `code` at level l (levels 0..L-1 are the RQ levels, level L
//                                 the disambiguation token), offset(0) = 1,
//                                 offset(l+1) = offset(l) + vocab(l)
//
// Every level has its own token range, so a token also says which level of the tuple it is (the
// model adds a level embedding, and the loss and the decoder take a softmax over that level's range
// only). An item contributes code_length() = L + 1 consecutive tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/models/semantic_id/prefix_trie.h"

namespace muonrec {

class SemanticIdVocab {
 public:
  SemanticIdVocab() = default;
  // vocab_sizes: one per code level (RqKMeans::vocab_sizes()), each >= 1.
  explicit SemanticIdVocab(std::vector<int64_t> vocab_sizes);

  int64_t code_length() const { return static_cast<int64_t>(vocab_sizes_.size()); }
  int64_t size() const { return offsets_.empty() ? 1 : offsets_.back() + vocab_sizes_.back(); }  // incl. padding
  int64_t offset(int64_t level) const;
  int64_t vocab(int64_t level) const;
  const std::vector<int64_t>& vocab_sizes() const { return vocab_sizes_; }
  // Throws when level or code is out of range.
  int64_t token(int64_t level, int64_t code) const;
  // The level of a token, -1 for padding; throws outside [0, size()).
  int64_t level_of(int64_t token) const;
  int64_t code_of(int64_t token) const;  // throws for padding

 private:
  std::vector<int64_t> vocab_sizes_;
  std::vector<int64_t> offsets_;
};

// The tokens of every item: [n_items + 1, code_length] row-major, row 0 (padding) all 0.
struct ItemTokens {
  SemanticIdVocab vocab;
  int64_t n_items = 0;
  std::vector<int64_t> tokens;

  // item_codes: [n_items + 1, code_length] as RqKMeans::item_codes() (row 0 ignored).
  static ItemTokens from_codes(const std::vector<int64_t>& item_codes, int64_t n_items, const SemanticIdVocab& vocab);
  const int64_t* item(int64_t id) const { return tokens.data() + id * vocab.code_length(); }
  // Back to codes, [n_items + 1, code_length] with row 0 all -1 (the inverse of from_codes).
  std::vector<int64_t> codes() const;
};

// What retrieval needs about the items: their tokens, and the trie of their codes that constrains
// decoding to real items.
struct TigerCatalog {
  ItemTokens tokens;
  semantic_id::PrefixTrie trie;
  // item_codes: [n_items + 1, levels + 1] (RqKMeans::item_codes()); vocab_sizes per level.
  static TigerCatalog from_codes(const std::vector<int64_t>& item_codes, int64_t n_items,
                                 const std::vector<int64_t>& vocab_sizes);
};

// Token windows. Tokens are right-aligned and left-padded with 0 (ids, targets and positions all 0
// at padding). positions[t] is the recency of the item token t belongs to, counted in items from
// the item being predicted at the end of the window (0) back to max_items: every token of an item
// shares it, and the level embedding tells them apart. (Counting tokens from the right instead would
// tie each position to one level during training, where every window ends at the same level, and
// shift by one at every generation step.)

// Training window of one user, the all-position next-token form of SASRec's training on tokens:
// f = the tokens of items[0 .. count) in order; ids = the last T tokens of f[0 .. n-1) and
// targets = the last T tokens of f[1 .. n). So every token of the window is predicted from all
// tokens before it, and the newest item (count - 1, whose last token is only a target) has
// recency 0. Writes T values to each output; returns the filled length (<= T).
int64_t fill_training_window(const ItemTokens& tokens, const int64_t* items, int64_t count, int64_t T, int64_t* ids,
                             int64_t* positions, int64_t* targets);

// Generation window: the tokens of items[0 .. count) followed by `prefix` (tokens of the item being
// generated so far, recency 0; the newest history item has recency 1), the last T of them. Writes T
// values to each output; returns the filled length.
int64_t fill_generation_window(const ItemTokens& tokens, const int64_t* items, int64_t count,
                               const std::vector<int64_t>& prefix, int64_t T, int64_t* ids, int64_t* positions);

}  // namespace muonrec

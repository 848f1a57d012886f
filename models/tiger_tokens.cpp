#include "muonrec/models/tiger_tokens.h"

#include <algorithm>

#include "muonrec/engine/error.h"

namespace muonrec {

SemanticIdVocab::SemanticIdVocab(std::vector<int64_t> vocab_sizes) : vocab_sizes_(std::move(vocab_sizes)) {
  MUONREC_CHECK(!vocab_sizes_.empty(), "semantic-ID vocabulary: no code levels");
  int64_t next = 1;  // token 0 is padding
  for (size_t l = 0; l < vocab_sizes_.size(); ++l) {
    MUONREC_CHECK(vocab_sizes_[l] >= 1, "semantic-ID vocabulary: level {} has size {}", l, vocab_sizes_[l]);
    offsets_.push_back(next);
    next += vocab_sizes_[l];
  }
}

int64_t SemanticIdVocab::offset(int64_t level) const {
  MUONREC_CHECK(level >= 0 && level < code_length(), "semantic-ID vocabulary: level {} outside 0..{}", level,
                code_length() - 1);
  return offsets_[level];
}

int64_t SemanticIdVocab::vocab(int64_t level) const {
  MUONREC_CHECK(level >= 0 && level < code_length(), "semantic-ID vocabulary: level {} outside 0..{}", level,
                code_length() - 1);
  return vocab_sizes_[level];
}

int64_t SemanticIdVocab::token(int64_t level, int64_t code) const {
  MUONREC_CHECK(code >= 0 && code < vocab(level), "semantic-ID vocabulary: code {} outside level {}'s 0..{}", code,
                level, vocab(level) - 1);
  return offsets_[level] + code;
}

int64_t SemanticIdVocab::level_of(int64_t token) const {
  MUONREC_CHECK(token >= 0 && token < size(), "semantic-ID vocabulary: token {} outside 0..{}", token, size() - 1);
  if (token == 0) return -1;
  // The last level whose range starts at or before the token.
  return static_cast<int64_t>(std::upper_bound(offsets_.begin(), offsets_.end(), token) - offsets_.begin()) - 1;
}

int64_t SemanticIdVocab::code_of(int64_t token) const {
  const int64_t level = level_of(token);
  MUONREC_CHECK(level >= 0, "semantic-ID vocabulary: token 0 is padding, not a code");
  return token - offsets_[level];
}

ItemTokens ItemTokens::from_codes(const std::vector<int64_t>& item_codes, int64_t n_items,
                                  const SemanticIdVocab& vocab) {
  const int64_t C = vocab.code_length();
  MUONREC_CHECK(n_items >= 1 && static_cast<int64_t>(item_codes.size()) == (n_items + 1) * C,
                "item tokens: {} codes do not form [{} + 1 items, {} levels]", item_codes.size(), n_items, C);
  ItemTokens out;
  out.vocab = vocab;
  out.n_items = n_items;
  out.tokens.assign(item_codes.size(), 0);
  for (int64_t item = 1; item <= n_items; ++item)
    for (int64_t l = 0; l < C; ++l) out.tokens[item * C + l] = vocab.token(l, item_codes[item * C + l]);
  return out;
}

std::vector<int64_t> ItemTokens::codes() const {
  const int64_t C = vocab.code_length();
  std::vector<int64_t> out(tokens.size(), -1);
  for (int64_t item = 1; item <= n_items; ++item)
    for (int64_t l = 0; l < C; ++l) out[item * C + l] = vocab.code_of(tokens[item * C + l]);
  return out;
}

TigerCatalog TigerCatalog::from_codes(const std::vector<int64_t>& item_codes, int64_t n_items,
                                      const std::vector<int64_t>& vocab_sizes) {
  TigerCatalog out;
  out.tokens = ItemTokens::from_codes(item_codes, n_items, SemanticIdVocab(vocab_sizes));
  out.trie = semantic_id::PrefixTrie(item_codes, static_cast<int64_t>(vocab_sizes.size()));
  return out;
}

namespace {

// Writes the flat tokens [begin, end) of the items (then of `prefix`) right-aligned into out[0 .. T),
// zeros before them, and when `positions` is given, each token's recency: newest_item - its item
// index (prefix tokens belong to item `count`). end - begin <= T.
void write_right_aligned(const ItemTokens& tokens, const int64_t* items, int64_t count,
                         const std::vector<int64_t>& prefix, int64_t begin, int64_t end, int64_t T,
                         int64_t newest_item, int64_t* out, int64_t* positions) {
  const int64_t C = tokens.vocab.code_length(), history = count * C, pad = T - (end - begin);
  std::fill(out, out + pad, 0);
  if (positions) std::fill(positions, positions + pad, 0);
  for (int64_t k = begin, t = pad; k < end; ++k, ++t) {
    if (k < history) {
      const int64_t item = items[k / C];
      MUONREC_CHECK(item >= 1 && item <= tokens.n_items, "token window: item {} outside 1..{}", item,
                    tokens.n_items);
      out[t] = tokens.item(item)[k % C];
    } else {
      out[t] = prefix[static_cast<size_t>(k - history)];
    }
    if (positions) positions[t] = newest_item - k / C;
  }
}

}  // namespace

int64_t fill_training_window(const ItemTokens& tokens, const int64_t* items, int64_t count, int64_t T, int64_t* ids,
                             int64_t* positions, int64_t* targets) {
  MUONREC_CHECK(T >= 1 && count >= 0, "training window: T must be positive");
  const int64_t n = count * tokens.vocab.code_length();
  const int64_t length = std::max<int64_t>(0, std::min(T, n - 1));
  write_right_aligned(tokens, items, count, {}, n - 1 - length, n - 1, T, count - 1, ids, positions);
  write_right_aligned(tokens, items, count, {}, n - length, n, T, count - 1, targets, nullptr);
  return length;
}

int64_t fill_generation_window(const ItemTokens& tokens, const int64_t* items, int64_t count,
                               const std::vector<int64_t>& prefix, int64_t T, int64_t* ids, int64_t* positions) {
  MUONREC_CHECK(T >= 1 && count >= 0, "generation window: T must be positive");
  const int64_t n = count * tokens.vocab.code_length() + static_cast<int64_t>(prefix.size());
  const int64_t length = std::min(T, n);
  write_right_aligned(tokens, items, count, prefix, n - length, n, T, count, ids, positions);
  return length;
}

}  // namespace muonrec

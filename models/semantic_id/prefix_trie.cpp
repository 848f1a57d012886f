#include "muonrec/models/semantic_id/prefix_trie.h"

#include <algorithm>
#include <limits>

#include "muonrec/engine/error.h"

namespace muonrec::semantic_id {

PrefixTrie::PrefixTrie(const std::vector<int64_t>& codes, int64_t depth) : depth_(depth) {
  MUONREC_CHECK(depth >= 1, "PrefixTrie: depth must be >= 1, got {}", depth);
  MUONREC_CHECK(codes.size() % depth == 0 && codes.size() / depth >= 1,
                "PrefixTrie: {} codes do not form rows [n_items + 1, {}]", codes.size(), depth);
  n_items_ = static_cast<int64_t>(codes.size()) / depth - 1;
  for (int64_t i = 1; i <= n_items_; ++i)
    for (int64_t l = 0; l < depth; ++l)
      MUONREC_CHECK(codes[i * depth + l] >= 0, "PrefixTrie: item {} position {} has negative token {}", i, l,
                    codes[i * depth + l]);
  // Items in lexicographic code order: every insertion then extends the last child of each node, so
  // children come out sorted without searching.
  std::vector<int64_t> order(static_cast<size_t>(n_items_));
  for (int64_t i = 0; i < n_items_; ++i) order[i] = i + 1;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const int64_t* ca = codes.data() + a * depth;
    const int64_t* cb = codes.data() + b * depth;
    for (int64_t l = 0; l < depth; ++l)
      if (ca[l] != cb[l]) return ca[l] < cb[l];
    return a < b;
  });
  nodes_.emplace_back();
  leaves_.assign(static_cast<size_t>(n_items_ + 1), -1);
  for (int64_t item : order) {
    const int64_t* code = codes.data() + item * depth;
    int32_t node = kRoot;
    ++nodes_[node].count;
    for (int64_t l = 0; l < depth; ++l) {
      Node& cur = nodes_[node];
      if (cur.tokens.empty() || cur.tokens.back() != code[l]) {
        MUONREC_CHECK(nodes_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                      "PrefixTrie: too many nodes");
        const int32_t next = static_cast<int32_t>(nodes_.size());
        cur.tokens.push_back(code[l]);
        cur.children.push_back(next);
        nodes_.emplace_back();  // invalidates `cur`
        nodes_[next].parent = node;
        node = next;
      } else {
        node = cur.children.back();
      }
      ++nodes_[node].count;
    }
    MUONREC_CHECK(nodes_[node].item == 0, "PrefixTrie: items {} and {} have the same code", nodes_[node].item, item);
    nodes_[node].item = item;
    leaves_[item] = node;
  }
}

int32_t PrefixTrie::child(int32_t node, int64_t token) const {
  const Node& n = nodes_.at(node);
  auto it = std::lower_bound(n.tokens.begin(), n.tokens.end(), token);
  if (it == n.tokens.end() || *it != token) return -1;
  return n.children[it - n.tokens.begin()];
}

int32_t PrefixTrie::find(const std::vector<int64_t>& prefix) const {
  MUONREC_CHECK(static_cast<int64_t>(prefix.size()) <= depth_, "PrefixTrie: prefix of length {} exceeds depth {}",
                prefix.size(), depth_);
  if (nodes_.empty()) return -1;
  int32_t node = kRoot;
  for (int64_t token : prefix) {
    node = child(node, token);
    if (node < 0) return -1;
  }
  return node;
}

std::vector<int64_t> PrefixTrie::allowed_next(const std::vector<int64_t>& prefix) const {
  const int32_t node = find(prefix);
  if (node < 0) return {};
  return nodes_[node].tokens;
}

int64_t PrefixTrie::item(const std::vector<int64_t>& code) const {
  if (static_cast<int64_t>(code.size()) != depth_) return 0;
  const int32_t node = find(code);
  return node < 0 ? 0 : nodes_[node].item;
}

int64_t PrefixTrie::count(const std::vector<int64_t>& prefix) const {
  const int32_t node = find(prefix);
  return node < 0 ? 0 : nodes_[node].count;
}

}  // namespace muonrec::semantic_id

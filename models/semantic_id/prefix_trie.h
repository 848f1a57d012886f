// A trie over the items' semantic IDs, for constrained decoding: given the tokens generated so far
// it lists the tokens that still lead to a real item, and at full depth it names the item.
// Nodes live in one vector; each node keeps its children's tokens ascending (binary-searched), so
// memory is one entry per distinct prefix and lookups cost O(depth log fanout).
#pragma once

#include <cstdint>
#include <vector>

namespace muonrec::semantic_id {

class PrefixTrie {
 public:
  PrefixTrie() = default;
  // codes: [n_items + 1, depth] row-major indexed by item id (e.g. RqKMeans::item_codes() with depth
  // = code_length()); row 0, the padding row, is ignored. Tokens must be >= 0. Two items with the
  // same full code are an error (the message names both).
  PrefixTrie(const std::vector<int64_t>& codes, int64_t depth);

  int64_t depth() const { return depth_; }
  int64_t n_items() const { return n_items_; }
  int64_t num_nodes() const { return static_cast<int64_t>(nodes_.size()); }

  // Tokens allowed after `prefix` (ascending). Empty when the prefix leads to no item or is already
  // full depth; a prefix longer than depth is an error.
  std::vector<int64_t> allowed_next(const std::vector<int64_t>& prefix) const;
  // The item whose full code is `code`, or 0 (the padding id: no item) when there is none.
  int64_t item(const std::vector<int64_t>& code) const;
  // Number of items under `prefix` (0 when the prefix is not in the trie).
  int64_t count(const std::vector<int64_t>& prefix) const;

  // Node-level access for decoders that walk the trie step by step. The root is node 0.
  static constexpr int32_t kRoot = 0;
  // The child of `node` reached by `token`, or -1.
  int32_t child(int32_t node, int64_t token) const;
  // Node of a prefix, or -1.
  int32_t find(const std::vector<int64_t>& prefix) const;
  const std::vector<int64_t>& tokens(int32_t node) const { return nodes_.at(node).tokens; }
  const std::vector<int32_t>& children(int32_t node) const { return nodes_.at(node).children; }
  // Item at a leaf (a full-depth node), else 0.
  int64_t leaf_item(int32_t node) const { return nodes_.at(node).item; }
  int64_t node_count(int32_t node) const { return nodes_.at(node).count; }
  // The node above `node` (-1 for the root), and the leaf of an item (-1 for an id outside 1..n_items).
  int32_t parent(int32_t node) const { return nodes_.at(node).parent; }
  int32_t leaf(int64_t item) const { return item >= 1 && item <= n_items_ ? leaves_[item] : -1; }

 private:
  struct Node {
    std::vector<int64_t> tokens;    // ascending
    std::vector<int32_t> children;  // parallel to tokens
    int64_t item = 0;               // leaves only
    int64_t count = 0;              // items below
    int32_t parent = -1;
  };
  int64_t depth_ = 0;
  int64_t n_items_ = 0;
  std::vector<Node> nodes_;
  std::vector<int32_t> leaves_;  // by item id; entry 0 unused
};

}  // namespace muonrec::semantic_id

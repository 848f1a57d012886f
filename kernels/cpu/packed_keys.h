// What the CPU attention kernels (softmax and HSTU) share: one head of one sequence with its keys
// and values packed at the valid positions only, so that the k and v of padding (which may be
// anything, even not finite) never enter a matrix product, and the blocks of query rows that are
// multiplied together.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace muonrec::kernels::cpu {

// Rows of queries handled by one set of matrix products. Causality hides the keys after a block's
// last query, so each block multiplies only against the keys up to it: at T = 200 that is 0.66 of
// the T x T products (1 with one block, 0.5 in the limit), and blocks this tall still run the
// products near OpenBLAS's peak.
constexpr int64_t kQueryBlock = 64;

struct PackedKeys {
  std::vector<int64_t> positions;  // the valid positions, ascending
  std::vector<float> k, v;         // [count, head_dim]: their k and v rows

  int64_t count() const { return static_cast<int64_t>(positions.size()); }
  // Packs the positions t < seq with valid[t] != 0 and their rows k + t * row, v + t * row.
  void pack(const float* valid, int64_t seq, const float* k_rows, const float* v_rows, int64_t row,
            int64_t head_dim);
  // Copies the packed rows src [count, head_dim] to their positions' rows dst + t * row.
  void scatter(const float* src, int64_t head_dim, float* dst, int64_t row) const;
};

// The block of query rows starting at `row0` and the number of packed keys its last query sees.
struct QueryBlock {
  int64_t row0, rows, keys;
};

// Calls body(QueryBlock) for consecutive blocks of kQueryBlock query rows, where seen[r] (not
// decreasing) is how many packed keys query row r sees.
template <class Body>
void for_each_query_block(const std::vector<int64_t>& seen, Body body) {
  const int64_t total = static_cast<int64_t>(seen.size());
  for (int64_t row0 = 0; row0 < total; row0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, total - row0);
    body(QueryBlock{row0, rows, seen[row0 + rows - 1]});
  }
}

}  // namespace muonrec::kernels::cpu

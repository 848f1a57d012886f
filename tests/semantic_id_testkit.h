// Test data and checks shared by the semantic-ID tokenizer tests (RQ-KMeans, RQ-VAE).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "muonrec/engine/rng.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"

namespace muonrec::testkit {

// n points in `dim` dimensions from a three-level hierarchy of cluster centres (8 x 4 x 4 leaves,
// scales 8, 2, 0.5) plus small noise. Row 0 is padding (zeros).
inline std::vector<float> clustered_data(int64_t n, int64_t dim, uint64_t seed, bool skewed = false) {
  PhiloxGenerator gen(seed);
  auto centres = [&](int64_t count, float scale) {
    std::vector<float> c(static_cast<size_t>(count * dim));
    for (float& v : c) v = gen.normal() * scale;
    return c;
  };
  std::vector<float> top = centres(8, 8.0f), mid = centres(4, 2.0f), low = centres(4, 0.5f);
  std::vector<float> x(static_cast<size_t>((n + 1) * dim), 0.0f);
  for (int64_t i = 1; i <= n; ++i) {
    int64_t a = static_cast<int64_t>(gen.uniform() * 8) % 8;
    if (skewed && gen.uniform() < 0.6f) a = 0;  // 60% of points in one top cluster
    const int64_t b = static_cast<int64_t>(gen.uniform() * 4) % 4, c = static_cast<int64_t>(gen.uniform() * 4) % 4;
    for (int64_t j = 0; j < dim; ++j)
      x[i * dim + j] = top[a * dim + j] + mid[b * dim + j] + low[c * dim + j] + 0.05f * gen.normal();
  }
  return x;
}

// Every item's full code is its own and inside the vocabularies; the report's prefix counts agree.
inline void expect_unique_codes(const semantic_id::RqKMeans& rq) {
  const int64_t w = rq.code_length();
  std::set<std::vector<int64_t>> seen;
  std::map<std::vector<int64_t>, int64_t> groups;
  for (int64_t i = 1; i <= rq.n_items(); ++i) {
    std::vector<int64_t> code = rq.item_code(i);
    ASSERT_EQ(static_cast<int64_t>(code.size()), w);
    for (int64_t l = 0; l < w; ++l) {
      EXPECT_GE(code[l], 0);
      EXPECT_LT(code[l], rq.vocab_sizes()[l]);
    }
    EXPECT_TRUE(seen.insert(code).second) << "item " << i << " repeats a code";
    ++groups[std::vector<int64_t>(code.begin(), code.end() - 1)];
  }
  int64_t largest = 0;
  for (auto& [k, v] : groups) largest = std::max(largest, v);
  EXPECT_EQ(rq.disambiguation_size(), largest);
  EXPECT_EQ(rq.report().unique_prefixes, static_cast<int64_t>(groups.size()));
}

}  // namespace muonrec::testkit

// Collaborative item vectors from co-occurrence (models/semantic_id/cooccurrence.h): the PPMI matrix
// against hand-computed values, the subspace vectors against the exact PPMI row cosines when the
// subspace is the whole space, and the property the tokenizer needs: items bought by the same users
// share a first code.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/rng.h"
#include "models/semantic_id/cooccurrence.h"
#include "models/semantic_id/rq_kmeans.h"
#include "test_util.h"

namespace muonrec::semantic_id {
namespace {

using testkit::expect_error;

double row_cosine(const SparseMatrix& m, int64_t a, int64_t b) {
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (int64_t j = 0; j < m.cols; ++j) {
    dot += static_cast<double>(m.at(a, j)) * m.at(b, j);
    na += static_cast<double>(m.at(a, j)) * m.at(a, j);
    nb += static_cast<double>(m.at(b, j)) * m.at(b, j);
  }
  return dot / std::sqrt(na * nb);
}

double vector_cosine(const CooccurrenceVectors& v, int64_t a, int64_t b) {
  double dot = 0.0;
  for (int64_t j = 0; j < v.width; ++j) dot += static_cast<double>(v.row(a)[j]) * v.row(b)[j];
  return dot;  // rows are unit vectors
}

TEST(Cooccurrence, PpmiHandComputed) {
  // Window 2. Counted pairs: (1,2) 1, (1,3) 1/2, (2,3) 1 + 1; item 4 sits past user 0's training
  // length and user 2's repeat never pairs an item with itself. Row sums 1.5, 3, 2.5; total 7.
  const std::vector<std::vector<int64_t>> sequences = {{1, 2, 3, 4}, {2, 3}, {4, 4}};
  SparseMatrix m = ppmi_matrix(sequences, {3, 2, 2}, 4, 2);
  ASSERT_EQ(m.rows, 5);
  EXPECT_NEAR(m.at(1, 2), std::log(1.0 * 7 / (1.5 * 3)), 1e-6);
  EXPECT_NEAR(m.at(2, 1), m.at(1, 2), 0.0);
  EXPECT_NEAR(m.at(2, 3), std::log(2.0 * 7 / (3 * 2.5)), 1e-6);
  EXPECT_EQ(m.at(1, 3), 0.0f);  // ln(0.5 * 7 / (1.5 * 2.5)) < 0: dropped
  EXPECT_EQ(m.nnz(), 4);
  EXPECT_EQ(m.row_ptr[5] - m.row_ptr[4], 0);  // item 4: no pair
  EXPECT_EQ(m.row_ptr[1], 0);                 // padding row
}

TEST(Cooccurrence, FullWidthSubspaceKeepsPpmiRowCosines) {
  // With width >= n_items + 1 the subspace spans M's range, so M Q Q^T M = M^2 and the vectors'
  // cosines are exactly the cosines of the PPMI rows.
  const int64_t n_items = 12;
  PhiloxGenerator gen(3);
  std::vector<std::vector<int64_t>> sequences(40);
  std::vector<int64_t> lengths;
  for (auto& s : sequences) {
    for (int t = 0; t < 6; ++t) s.push_back(1 + static_cast<int64_t>(gen.uniform() * n_items) % n_items);
    lengths.push_back(static_cast<int64_t>(s.size()));
  }
  CooccurrenceOptions o;
  o.width = 16;
  o.power_iterations = 2;
  CooccurrenceVectors v = cooccurrence_item_vectors(sequences, lengths, n_items, o);
  SparseMatrix m = ppmi_matrix(sequences, lengths, n_items, o.window);
  ASSERT_EQ(v.isolated_items, 0);
  EXPECT_EQ(v.pairs, m.nnz());
  for (int64_t a = 1; a <= n_items; ++a)
    for (int64_t b = 1; b <= n_items; ++b) EXPECT_NEAR(vector_cosine(v, a, b), row_cosine(m, a, b), 2e-5) << a << "," << b;
}

TEST(Cooccurrence, CommunitiesShareTheFirstCode) {
  // Items 1..20 are only ever bought together, as are 21..40; rq-kmeans with two first-level codes
  // must split the catalogue exactly along the two communities.
  PhiloxGenerator gen(7);
  std::vector<std::vector<int64_t>> sequences;
  for (int u = 0; u < 400; ++u) {
    const int64_t base = u % 2 == 0 ? 0 : 20;
    std::vector<int64_t> s;
    for (int t = 0; t < 8; ++t) s.push_back(base + 1 + static_cast<int64_t>(gen.uniform() * 20) % 20);
    sequences.push_back(s);
  }
  std::vector<int64_t> lengths;
  for (const auto& s : sequences) lengths.push_back(static_cast<int64_t>(s.size()));
  CooccurrenceOptions o;
  o.width = 8;
  CooccurrenceVectors v = cooccurrence_item_vectors(sequences, lengths, 40, o);
  for (int64_t item = 1; item <= 40; ++item) {
    double norm2 = 0.0;
    for (int64_t j = 0; j < v.width; ++j) norm2 += static_cast<double>(v.row(item)[j]) * v.row(item)[j];
    EXPECT_NEAR(norm2, 1.0, 1e-5);
  }
  RqKMeansOptions k;
  k.levels = 1;
  k.codebook_size = 2;
  RqKMeans tokenizer(k);
  tokenizer.fit(v.values, v.width);
  const int64_t C = tokenizer.code_length();
  for (int64_t item = 2; item <= 40; ++item) {
    const bool same_community = (item <= 20) == (1 <= 20);
    EXPECT_EQ(tokenizer.item_codes()[item * C] == tokenizer.item_codes()[1 * C], same_community) << item;
  }
}

TEST(Cooccurrence, DeterministicIsolatedItemsAndBadInput) {
  const std::vector<std::vector<int64_t>> sequences = {{1, 2, 3, 1, 2}, {3, 2}, {2, 1, 3}};
  const std::vector<int64_t> lengths = {5, 2, 3};
  CooccurrenceOptions o;
  o.width = 3;
  CooccurrenceVectors a = cooccurrence_item_vectors(sequences, lengths, 5, o);
  CooccurrenceVectors b = cooccurrence_item_vectors(sequences, lengths, 5, o);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.isolated_items, 2);  // items 4 and 5 never occur
  for (int64_t j = 0; j < o.width; ++j) EXPECT_EQ(a.values[j], 0.0f);  // padding row
  o.seed = 1;
  EXPECT_NE(cooccurrence_item_vectors(sequences, lengths, 5, o).row(4)[0], a.row(4)[0]);

  expect_error([&] { ppmi_matrix({{1, 9}}, {2}, 5, 3); }, {"sequence 0", "event 1", "item 9"});
  expect_error([&] { ppmi_matrix({{1, 2}}, {3}, 5, 3); }, {"length 3", "sequence 0"});
  expect_error([&] { ppmi_matrix({{1, 2}}, {2}, 5, 0); }, {"window"});
  o.width = 0;
  expect_error([&] { cooccurrence_item_vectors(sequences, lengths, 5, o); }, {"width"});
}

}  // namespace
}  // namespace muonrec::semantic_id

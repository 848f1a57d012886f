// Collaborative item vectors from co-occurrence (models/semantic_id/cooccurrence.h): the PPMI matrix
// against hand-computed values, the subspace vectors against the exact PPMI row cosines when the
// subspace is the whole space and against a dense double computation of the power-iterated subspace
// when it is narrower, and the property the tokenizer needs: items bought by the same users
// share a first code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "muonrec/engine/rng.h"
#include "muonrec/models/semantic_id/cooccurrence.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
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

// `users` sequences of `length` items drawn uniformly from 1..n_items.
std::vector<std::vector<int64_t>> random_sequences(int64_t users, int64_t length, int64_t n_items, uint64_t seed) {
  PhiloxGenerator gen(seed);
  std::vector<std::vector<int64_t>> sequences(static_cast<size_t>(users));
  for (auto& s : sequences)
    for (int64_t t = 0; t < length; ++t) s.push_back(1 + static_cast<int64_t>(gen.uniform() * n_items) % n_items);
  return sequences;
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
  const std::vector<std::vector<int64_t>> sequences = random_sequences(40, 6, n_items, 3);
  const std::vector<int64_t> lengths(sequences.size(), 6);
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

// Cosines of the rows of M P M, P the projector onto span(M^p G): what the vectors of p power
// iterations from the Gaussian start G must reproduce whatever basis spans that subspace. Computed
// densely in double without any orthonormalisation: A = M^p G (columns rescaled, which keeps the span),
// B = M A, and M P M = B (A^T A)^-1 B^T by a Cholesky solve.
std::vector<double> power_subspace_cosines(const SparseMatrix& m, int64_t width, int64_t power_iterations,
                                           uint64_t seed) {
  const int64_t n = m.rows, k = width;
  std::vector<double> a(static_cast<size_t>(n * k));
  PhiloxGenerator gen(seed);
  for (double& x : a) x = gen.normal();
  auto times_m = [&](const std::vector<double>& x) {
    std::vector<double> y(x.size(), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < k; ++c) y[i * k + c] += static_cast<double>(m.at(i, j)) * x[j * k + c];
    return y;
  };
  for (int64_t it = 0; it < power_iterations; ++it) {
    a = times_m(a);
    for (int64_t c = 0; c < k; ++c) {
      double norm2 = 0.0;
      for (int64_t i = 0; i < n; ++i) norm2 += a[i * k + c] * a[i * k + c];
      for (int64_t i = 0; i < n; ++i) a[i * k + c] /= std::sqrt(norm2);
    }
  }
  const std::vector<double> b = times_m(a);
  std::vector<double> chol(static_cast<size_t>(k * k), 0.0);  // lower factor L of A^T A = L L^T
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c <= r; ++c) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += a[i * k + r] * a[i * k + c];
      for (int64_t q = 0; q < c; ++q) s -= chol[r * k + q] * chol[c * k + q];
      chol[r * k + c] = r == c ? std::sqrt(s) : s / chol[c * k + c];
    }
  }
  std::vector<double> whitened(b.size());  // rows of B L^-T: their dot products are B (A^T A)^-1 B^T
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < k; ++c) {
      double s = b[i * k + c];
      for (int64_t q = 0; q < c; ++q) s -= chol[c * k + q] * whitened[i * k + q];
      whitened[i * k + c] = s / chol[c * k + c];
    }
  }
  std::vector<double> cosines(static_cast<size_t>(n * n), 0.0);
  auto dot = [&](int64_t x, int64_t y) {
    double s = 0.0;
    for (int64_t c = 0; c < k; ++c) s += whitened[x * k + c] * whitened[y * k + c];
    return s;
  };
  for (int64_t x = 1; x < n; ++x)
    for (int64_t y = 1; y < n; ++y) cosines[x * n + y] = dot(x, y) / std::sqrt(dot(x, x) * dot(y, y));
  return cosines;
}

TEST(Cooccurrence, VectorsSpanThePowerIteratedSubspace) {
  // A subspace narrower than the catalogue: each count of power iterations gives its own subspace,
  // so one iteration too few or too many, or a start drawn differently, changes the cosines.
  const int64_t n_items = 24;
  const std::vector<std::vector<int64_t>> sequences = random_sequences(60, 7, n_items, 11);
  const std::vector<int64_t> lengths(sequences.size(), 7);
  CooccurrenceOptions o;
  o.width = 4;
  o.seed = 5;
  const SparseMatrix m = ppmi_matrix(sequences, lengths, n_items, o.window);
  std::vector<double> previous;
  for (int64_t p = 0; p <= 3; ++p) {
    o.power_iterations = p;
    const CooccurrenceVectors v = cooccurrence_item_vectors(sequences, lengths, n_items, o);
    ASSERT_EQ(v.isolated_items, 0);
    const std::vector<double> expected = power_subspace_cosines(m, o.width, p, o.seed);
    for (int64_t a = 1; a <= n_items; ++a)
      for (int64_t b = 1; b <= n_items; ++b)
        ASSERT_NEAR(vector_cosine(v, a, b), expected[a * m.rows + b], 1e-4) << "p=" << p << " " << a << "," << b;
    if (!previous.empty()) {
      double largest_change = 0.0;
      for (size_t i = 0; i < expected.size(); ++i)
        largest_change = std::max(largest_change, std::abs(expected[i] - previous[i]));
      EXPECT_GT(largest_change, 1e-2) << "p=" << p << " is not told apart from p-1 by this data";
    }
    previous = expected;
  }
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

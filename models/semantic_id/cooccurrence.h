// Collaborative item vectors from the interaction sequences alone: the input of the RQ-KMeans
// tokenizer when an item's text is weak or missing, without first training a model whose item table
// could be clustered (models/tiger_pipeline.h, --item-vectors cooccurrence).
//
// Choices (and why):
//   counts      two events of one user at most `window` steps apart count 1/distance for both
//               ordered pairs (symmetric): next-item neighbours matter most, as for the sequential
//               models, and a repeated item never pairs with itself.
//   PPMI        positive pointwise mutual information, max(0, ln(c_ij * c / (c_i * c_j))): divides
//               out popularity, which otherwise dominates raw counts (every item co-occurs most with
//               the best sellers). c_i are the row sums, c the total.
//   subspace    randomized subspace iteration (Halko, Martinsson, Tropp 2011): a Gaussian start
//               [n_items, width] (PhiloxGenerator(seed)), `power_iterations` products with the PPMI
//               matrix, each followed by modified Gram-Schmidt. The vectors are the rows of M Q: each
//               item's PPMI row projected on the dominant subspace. They equal U_k S_k of a truncated
//               eigen-decomposition up to one orthogonal rotation, which k-means (Euclidean) ignores,
//               so no small eigen-solver is needed.
//   rows        L2-normalised: k-means then clusters directions (tastes), not the norms, which track
//               how many neighbours an item has. Items without any pair (too rare) get a random unit
//               vector from their own stream (a function of seed and item id), as empty texts do.
// Deterministic: a pure function of (sequences, lengths, options) on any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/models/semantic_id/tfidf.h"

namespace muonrec::semantic_id {

struct CooccurrenceOptions {
  int64_t window = 3;            // events at most this many steps apart form a pair
  int64_t width = 64;            // output dimension
  int64_t power_iterations = 8;  // products with the PPMI matrix after the random start
  uint64_t seed = 0;
};

struct CooccurrenceVectors {
  std::vector<float> values;  // [n_items + 1, width] row-major; row 0 (padding) is zeros
  int64_t n_items = 0;
  int64_t width = 0;
  int64_t pairs = 0;          // nonzero entries of the PPMI matrix
  int64_t isolated_items = 0; // items without a positive PPMI entry (random vectors)
  const float* row(int64_t item) const { return values.data() + item * width; }
};

// Symmetric PPMI matrix [n_items + 1, n_items + 1] of the first lengths[u] events of sequences[u]
// (ids 1..n_items; row and column 0 stay empty). lengths may be shorter than the sequences so that
// held-out events (validation, test) never reach the tokenizer.
SparseMatrix ppmi_matrix(const std::vector<std::vector<int64_t>>& sequences, const std::vector<int64_t>& lengths,
                         int64_t n_items, int64_t window);

CooccurrenceVectors cooccurrence_item_vectors(const std::vector<std::vector<int64_t>>& sequences,
                                              const std::vector<int64_t>& lengths, int64_t n_items,
                                              const CooccurrenceOptions& options = {});

}  // namespace muonrec::semantic_id

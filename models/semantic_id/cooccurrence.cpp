#include "muonrec/models/semantic_id/cooccurrence.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"

namespace muonrec::semantic_id {
namespace {

struct WeightedPair {
  int32_t row, col;
  float weight;
};

// y [rows, k] = m [rows, cols] * x [cols, k], row-major; rows are independent, so the parallel split
// never changes a value.
void sparse_times_dense(const SparseMatrix& m, const std::vector<double>& x, int64_t k, std::vector<double>& y) {
  y.assign(static_cast<size_t>(m.rows * k), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m.rows; ++i) {
    double* out = y.data() + i * k;
    for (int64_t e = m.row_ptr[i]; e < m.row_ptr[i + 1]; ++e) {
      const double v = m.value[e];
      const double* in = x.data() + static_cast<int64_t>(m.col[e]) * k;
      for (int64_t c = 0; c < k; ++c) out[c] += v * in[c];
    }
  }
}

// Modified Gram-Schmidt on the k columns of y [rows, k]. A column left with (numerically) nothing of
// its own, as when the matrix has rank < k, becomes zero rather than amplified noise.
void orthonormalize_columns(std::vector<double>& y, int64_t rows, int64_t k) {
  for (int64_t c = 0; c < k; ++c) {
    double before = 0.0;
    for (int64_t i = 0; i < rows; ++i) before += y[i * k + c] * y[i * k + c];
    for (int64_t p = 0; p < c; ++p) {
      double dot = 0.0;
      for (int64_t i = 0; i < rows; ++i) dot += y[i * k + c] * y[i * k + p];
      for (int64_t i = 0; i < rows; ++i) y[i * k + c] -= dot * y[i * k + p];
    }
    double norm2 = 0.0;
    for (int64_t i = 0; i < rows; ++i) norm2 += y[i * k + c] * y[i * k + c];
    const double scale = norm2 > 1e-20 * before && norm2 > 0.0 ? 1.0 / std::sqrt(norm2) : 0.0;
    for (int64_t i = 0; i < rows; ++i) y[i * k + c] *= scale;
  }
}

}  // namespace

SparseMatrix ppmi_matrix(const std::vector<std::vector<int64_t>>& sequences, const std::vector<int64_t>& lengths,
                         int64_t n_items, int64_t window) {
  MUONREC_CHECK(lengths.size() == sequences.size(), "ppmi_matrix: {} lengths for {} sequences", lengths.size(),
                sequences.size());
  MUONREC_CHECK(window >= 1, "ppmi_matrix: window must be >= 1, got {}", window);
  MUONREC_CHECK(n_items >= 1 && n_items < (int64_t{1} << 31), "ppmi_matrix: n_items {} out of range", n_items);
  std::vector<WeightedPair> pairs;
  for (size_t u = 0; u < sequences.size(); ++u) {
    const std::vector<int64_t>& seq = sequences[u];
    const int64_t n = lengths[u];
    MUONREC_CHECK(n >= 0 && n <= static_cast<int64_t>(seq.size()), "ppmi_matrix: length {} of sequence {} (size {})",
                  n, u, seq.size());
    for (int64_t t = 0; t < n; ++t) {
      MUONREC_CHECK(seq[t] >= 1 && seq[t] <= n_items, "ppmi_matrix: sequence {} event {} has item {} (1..{})", u, t,
                    seq[t], n_items);
      for (int64_t d = 1; d <= window && t + d < n; ++d) {
        if (seq[t] == seq[t + d]) continue;
        const auto a = static_cast<int32_t>(seq[t]), b = static_cast<int32_t>(seq[t + d]);
        const float w = 1.0f / static_cast<float>(d);
        pairs.push_back({a, b, w});
        pairs.push_back({b, a, w});
      }
    }
  }
  // Equal (row, col) keys are summed in the order the sort leaves them; ties broken by weight keep
  // that order a function of the multiset of pairs alone.
  std::sort(pairs.begin(), pairs.end(), [](const WeightedPair& x, const WeightedPair& y) {
    if (x.row != y.row) return x.row < y.row;
    if (x.col != y.col) return x.col < y.col;
    return x.weight < y.weight;
  });

  SparseMatrix counts;
  counts.rows = counts.cols = n_items + 1;
  counts.row_ptr.assign(static_cast<size_t>(n_items + 2), 0);
  std::vector<double> row_sum(static_cast<size_t>(n_items + 1), 0.0);
  std::vector<double> merged;
  for (size_t e = 0; e < pairs.size();) {
    double sum = 0.0;
    size_t f = e;
    for (; f < pairs.size() && pairs[f].row == pairs[e].row && pairs[f].col == pairs[e].col; ++f) sum += pairs[f].weight;
    counts.col.push_back(pairs[e].col);
    merged.push_back(sum);
    ++counts.row_ptr[pairs[e].row + 1];
    row_sum[pairs[e].row] += sum;
    e = f;
  }
  for (int64_t i = 0; i <= n_items; ++i) counts.row_ptr[i + 1] += counts.row_ptr[i];
  double total = 0.0;
  for (double s : row_sum) total += s;

  SparseMatrix ppmi;
  ppmi.rows = ppmi.cols = n_items + 1;
  ppmi.row_ptr.assign(1, 0);
  for (int64_t i = 0; i <= n_items; ++i) {
    for (int64_t e = counts.row_ptr[i]; e < counts.row_ptr[i + 1]; ++e) {
      const int32_t j = counts.col[e];
      const double pmi = std::log(merged[e] * total / (row_sum[i] * row_sum[j]));
      if (pmi <= 0.0) continue;
      ppmi.col.push_back(j);
      ppmi.value.push_back(static_cast<float>(pmi));
    }
    ppmi.row_ptr.push_back(ppmi.nnz());
  }
  return ppmi;
}

CooccurrenceVectors cooccurrence_item_vectors(const std::vector<std::vector<int64_t>>& sequences,
                                              const std::vector<int64_t>& lengths, int64_t n_items,
                                              const CooccurrenceOptions& options) {
  MUONREC_CHECK(options.width >= 1, "cooccurrence_item_vectors: width must be >= 1, got {}", options.width);
  MUONREC_CHECK(options.power_iterations >= 0, "cooccurrence_item_vectors: power_iterations must be >= 0, got {}",
                options.power_iterations);
  const SparseMatrix m = ppmi_matrix(sequences, lengths, n_items, options.window);
  const int64_t rows = n_items + 1, k = options.width;

  std::vector<double> basis(static_cast<size_t>(rows * k)), product;
  PhiloxGenerator gen(options.seed);
  for (double& x : basis) x = gen.normal();
  orthonormalize_columns(basis, rows, k);
  for (int64_t it = 0; it < options.power_iterations; ++it) {
    sparse_times_dense(m, basis, k, product);
    basis.swap(product);
    orthonormalize_columns(basis, rows, k);
  }
  sparse_times_dense(m, basis, k, product);  // each item's PPMI row on the subspace

  CooccurrenceVectors out;
  out.n_items = n_items;
  out.width = k;
  out.pairs = m.nnz();
  out.values.assign(static_cast<size_t>(rows * k), 0.0f);
  for (int64_t item = 1; item <= n_items; ++item) {
    const double* v = product.data() + item * k;
    float* row = out.values.data() + item * k;
    double norm2 = 0.0;
    for (int64_t c = 0; c < k; ++c) norm2 += v[c] * v[c];
    if (m.row_ptr[item + 1] > m.row_ptr[item] && norm2 > 1e-24) {
      const double inv = 1.0 / std::sqrt(norm2);
      for (int64_t c = 0; c < k; ++c) row[c] = static_cast<float>(v[c] * inv);
    } else {
      ++out.isolated_items;
      random_item_vector(options.seed, item, 1.0, row, k);
    }
  }
  return out;
}

}  // namespace muonrec::semantic_id

#include "muonrec/models/semantic_id/tfidf.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"

namespace muonrec::semantic_id {
namespace {

bool is_token_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Key of the streams that draw the vectors of items without features, apart from the projection's.
constexpr uint64_t kItemStreamKey = 0x9E3779B97F4A7C15ull;

}  // namespace

std::vector<std::string> tokenize(const std::string& text, const TokenizerOptions& options) {
  std::vector<std::string> tokens;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    while (i < n && !is_token_byte(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < n && is_token_byte(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i && static_cast<int64_t>(j - i) >= options.min_token_length) {
      std::string token = text.substr(i, j - i);
      for (char& c : token)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      tokens.push_back(std::move(token));
    }
    i = j;
  }
  return tokens;
}

float SparseMatrix::at(int64_t row, int64_t column) const {
  MUONREC_CHECK(row >= 0 && row < rows && column >= 0 && column < cols, "SparseMatrix::at({}, {}) outside [{}, {}]",
                row, column, rows, cols);
  auto begin = col.begin() + row_ptr[row], end = col.begin() + row_ptr[row + 1];
  auto it = std::lower_bound(begin, end, static_cast<int32_t>(column));
  return (it != end && *it == column) ? value[it - col.begin()] : 0.0f;
}

Tfidf fit_tfidf(const std::vector<std::string>& documents, const TfidfOptions& options) {
  MUONREC_CHECK(options.min_df >= 1, "fit_tfidf: min_df must be >= 1, got {}", options.min_df);
  const int64_t n_docs = static_cast<int64_t>(documents.size());
  // Per-document token counts (std::map: tokens come out sorted, which makes the column order of a
  // row ascending once the vocabulary is sorted too).
  std::vector<std::map<std::string, int64_t>> counts(documents.size());
  std::map<std::string, int64_t> df;
  for (size_t d = 0; d < documents.size(); ++d) {
    for (std::string& t : tokenize(documents[d], options.tokenizer)) ++counts[d][std::move(t)];
    for (auto& [token, c] : counts[d]) ++df[token];
  }

  Tfidf out;
  for (auto& [token, f] : df) {
    if (f < options.min_df) continue;
    out.column.emplace(token, static_cast<int32_t>(out.vocabulary.size()));
    out.vocabulary.push_back(token);
    out.document_frequency.push_back(f);
    const double n = static_cast<double>(n_docs), fd = static_cast<double>(f);
    double idf = options.smooth_idf ? std::log((1.0 + n) / (1.0 + fd)) + 1.0 : std::log(n / fd) + 1.0;
    out.idf.push_back(static_cast<float>(idf));
  }
  MUONREC_CHECK(out.vocabulary.size() < (1ull << 31), "fit_tfidf: vocabulary of {} tokens is too large",
                out.vocabulary.size());

  SparseMatrix& m = out.matrix;
  m.rows = n_docs;
  m.cols = static_cast<int64_t>(out.vocabulary.size());
  m.row_ptr.assign(1, 0);
  for (size_t d = 0; d < documents.size(); ++d) {
    const size_t begin = m.col.size();
    double norm2 = 0.0;
    for (auto& [token, c] : counts[d]) {
      auto it = out.column.find(token);
      if (it == out.column.end()) continue;
      double tf = options.sublinear_tf ? 1.0 + std::log(static_cast<double>(c)) : static_cast<double>(c);
      double v = tf * out.idf[it->second];
      m.col.push_back(it->second);
      m.value.push_back(static_cast<float>(v));
      norm2 += v * v;
    }
    if (m.col.size() == begin) ++out.empty_rows;
    if (options.l2_normalize && norm2 > 0.0) {
      const double inv = 1.0 / std::sqrt(norm2);
      // Recompute from the double value rather than rescaling the rounded float.
      size_t k = begin;
      for (auto& [token, c] : counts[d]) {
        auto it = out.column.find(token);
        if (it == out.column.end()) continue;
        double tf = options.sublinear_tf ? 1.0 + std::log(static_cast<double>(c)) : static_cast<double>(c);
        m.value[k++] = static_cast<float>(tf * out.idf[it->second] * inv);
      }
    }
    m.row_ptr.push_back(static_cast<int64_t>(m.col.size()));
  }
  return out;
}

void random_item_vector(uint64_t seed, int64_t item, double norm, float* row, int64_t width) {
  // Offsets item*width ...: the vector is a function of (seed, item) only.
  PhiloxGenerator gen(seed ^ kItemStreamKey, static_cast<uint64_t>(item) * width);
  std::vector<double> draw(static_cast<size_t>(width));
  double n2 = 0.0;
  for (double& x : draw) {
    x = gen.normal();
    n2 += x * x;
  }
  const double s = norm / std::sqrt(std::max(n2, 1e-30));
  for (int64_t j = 0; j < width; ++j) row[j] = static_cast<float>(draw[j] * s);
}

TextEmbeddings embed_item_texts(const std::vector<std::string>& texts, const TextEmbeddingOptions& options) {
  MUONREC_CHECK(!texts.empty(), "embed_item_texts: texts must have n_items + 1 entries (index 0 is padding)");
  MUONREC_CHECK(options.width >= 1, "embed_item_texts: width must be >= 1, got {}", options.width);
  MUONREC_CHECK(options.empty_norm > 0.0f && std::isfinite(options.empty_norm),
                "embed_item_texts: empty_norm must be positive, got {}", options.empty_norm);
  const int64_t n_items = static_cast<int64_t>(texts.size()) - 1;
  const int64_t width = options.width;
  std::vector<std::string> documents(texts.begin() + 1, texts.end());
  Tfidf tfidf = fit_tfidf(documents, options.tfidf);
  const int64_t vocab = static_cast<int64_t>(tfidf.vocabulary.size());

  // Projection matrix [vocab, width], N(0, 1/width): column scale keeps the projected norm ~1.
  std::vector<float> projection(static_cast<size_t>(vocab * width));
  {
    PhiloxGenerator gen(options.seed);
    const float scale = 1.0f / std::sqrt(static_cast<float>(width));
    for (float& p : projection) p = gen.normal() * scale;
  }

  TextEmbeddings out;
  out.n_items = n_items;
  out.width = width;
  out.vocabulary_size = vocab;
  out.values.assign(static_cast<size_t>((n_items + 1) * width), 0.0f);
  const SparseMatrix& m = tfidf.matrix;
  std::vector<double> acc(static_cast<size_t>(width));
  for (int64_t item = 1; item <= n_items; ++item) {
    float* row = out.values.data() + item * width;
    const int64_t d = item - 1;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t k = m.row_ptr[d]; k < m.row_ptr[d + 1]; ++k) {
      const float v = m.value[k];
      const float* p = projection.data() + static_cast<int64_t>(m.col[k]) * width;
      for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(v) * p[j];
    }
    double norm2 = 0.0;
    for (double a : acc) norm2 += a * a;
    if (norm2 > 1e-24) {
      const double inv = 1.0 / std::sqrt(norm2);
      for (int64_t j = 0; j < width; ++j) row[j] = static_cast<float>(acc[j] * inv);
      continue;
    }
    ++out.empty_items;
    random_item_vector(options.seed, item, options.empty_norm, row, width);
  }
  return out;
}

}  // namespace muonrec::semantic_id

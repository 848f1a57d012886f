// Item text -> fixed-width dense vector, the input of the RQ-KMeans tokenizer.
//
// Choices (and why):
//   tokenizer   ASCII letters are lowercased; a token is a maximal run of ASCII letters/digits or
//               bytes >= 0x80 (so UTF-8 letters such as the transcoded 'é' of movies.dat stay inside
//               words); tokens shorter than min_token_length (2) are dropped, as in scikit-learn's
//               default pattern. Genres reach the tokenizer as ordinary words (see item_text.h).
//   vocabulary  tokens with document frequency >= min_df, sorted by byte order (column order is
//               therefore deterministic and independent of document order).
//   TF-IDF      scikit-learn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm='l2'):
//               tf = 1 + ln(count), idf = ln((1 + n_docs) / (1 + df)) + 1, rows L2-normalised.
//               n_docs counts every document, empty ones included (as scikit-learn does).
//   projection  a Gaussian random projection (Johnson-Lindenstrauss): entry (token, j) ~ N(0, 1/width)
//               drawn from PhiloxGenerator(seed) in row-major vocabulary order; rows are then
//               L2-normalised, so cosine structure of the TF-IDF rows is roughly kept and every
//               non-empty item lies on the unit sphere.
//   empty rows  an item without text (or whose tokens all fell below min_df) gets a random vector
//               of norm empty_norm, drawn from its own stream (a function of seed and item id only),
//               so it still receives a code. The default norm is 1, like every other item: a random
//               unit direction is what such an item's rare tokens would have projected to anyway,
//               and it scatters these items over the codebook. A tiny norm (e.g. 1e-3) keeps them
//               from pulling any centroid but sends them all down the same code path, where they
//               collide (on Beauty: 57 such items, and a disambiguation vocabulary of 57).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace muonrec::semantic_id {

struct TokenizerOptions {
  int min_token_length = 2;  // in bytes
};

std::vector<std::string> tokenize(const std::string& text, const TokenizerOptions& options = {});

// Compressed sparse rows; columns ascending within a row.
struct SparseMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> row_ptr;  // [rows + 1]
  std::vector<int32_t> col;
  std::vector<float> value;

  int64_t nnz() const { return static_cast<int64_t>(col.size()); }
  float at(int64_t row, int64_t column) const;  // 0 where absent (binary search)
};

struct TfidfOptions {
  TokenizerOptions tokenizer;
  int64_t min_df = 1;         // keep tokens that appear in at least this many documents
  bool sublinear_tf = true;   // 1 + ln(count) instead of count
  bool smooth_idf = true;     // ln((1+n)/(1+df)) + 1 instead of ln(n/df) + 1
  bool l2_normalize = true;   // rows to unit length (empty rows stay zero)
};

struct Tfidf {
  std::vector<std::string> vocabulary;               // column -> token
  std::unordered_map<std::string, int32_t> column;   // token -> column
  std::vector<int64_t> document_frequency;           // per column
  std::vector<float> idf;                            // per column
  SparseMatrix matrix;                               // [n_docs, vocabulary size]
  int64_t empty_rows = 0;                            // documents with no vocabulary token
};

// Fits the vocabulary and IDF on `documents` and returns their TF-IDF rows.
Tfidf fit_tfidf(const std::vector<std::string>& documents, const TfidfOptions& options = {});

struct TextEmbeddingOptions {
  TfidfOptions tfidf{TokenizerOptions{}, 2};  // min_df 2: a token seen once cannot relate two items
  int64_t width = 64;
  uint64_t seed = 0;
  float empty_norm = 1.0f;   // norm of the random vector given to items with an empty TF-IDF row
};

struct TextEmbeddings {
  std::vector<float> values;  // [n_items + 1, width] row-major; row 0 (padding) is zeros
  int64_t n_items = 0;
  int64_t width = 0;
  int64_t vocabulary_size = 0;
  int64_t empty_items = 0;    // items that got a random vector (empty TF-IDF row)
  const float* row(int64_t item) const { return values.data() + item * width; }
};

// A random vector of length `norm` for an item without features, from the item's own stream: a pure
// function of (seed, item), so it never depends on which other items lack features.
void random_item_vector(uint64_t seed, int64_t item, double norm, float* row, int64_t width);

// texts: [n_items + 1] as returned by the item_text loaders (texts[0] is ignored: the TF-IDF is fit
// on items 1..n_items only).
TextEmbeddings embed_item_texts(const std::vector<std::string>& texts, const TextEmbeddingOptions& options = {});

}  // namespace muonrec::semantic_id

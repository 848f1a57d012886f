// Residual-quantisation k-means (RQ-KMeans): the semantic-ID tokenizer of a TIGER-style generative
// retriever. Level 0 clusters the item vectors into codebook_size centroids; level l clusters what is
// left (the residual x - c_0 - ... - c_{l-1}). An item's semantic ID is its `levels` codes followed
// by one disambiguation token: items that share all `levels` codes are numbered 0, 1, 2, ... in
// item-id order, so every item's full code (levels + 1 tokens) is unique. The disambiguation
// vocabulary is the largest such group (1 when no two items collide).
//
// Numerics and determinism: squared distances as |c|^2 - 2 x.c (+ |x|^2 where points are compared
// with each other) with float accumulation over the feature axis (the centroid table is stored
// transposed so the inner loop over centroids vectorises without reassociation); centroid sums in
// double, accumulated serially in item order. Assignment is per point, so the OpenMP split over
// points never changes a result: the same seed gives the same codes on any thread count. Only the
// big assignment passes (n * k * dim >= 2^24) run in parallel; k-means++ runs on one thread over
// transposed points.
//
// Training per level: k-means++ initialisation (or distinct random points), then Lloyd iterations
// until no assignment changes or `iterations` is reached; an empty cluster is reseeded with the point
// farthest from its centroid. Balanced mode caps every cluster at ceil(n / codebook_size) members:
// (point, centroid) pairs from each point's `balanced_candidates` nearest centroids are taken in
// ascending distance order while the centroid has room; a point whose candidates all filled up takes
// its nearest centroid that still has room (points in id order). The codes of the fitted items are
// the (balanced) training assignment; encode() of new vectors is always plain nearest-centroid.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "muonrec/engine/tensor.h"

namespace muonrec::semantic_id {

struct RqKMeansOptions {
  int64_t levels = 3;
  int64_t codebook_size = 256;
  int64_t iterations = 25;          // Lloyd iterations per level at most
  uint64_t seed = 0;
  bool balanced = false;
  bool kmeans_plus_plus = true;     // false: distinct uniformly drawn points
  int64_t balanced_candidates = 8;  // nearest centroids per point offered to the balanced greedy pass
};

struct RqKMeansLevelStats {
  int64_t iterations = 0;      // Lloyd iterations run (assignment passes after the first)
  bool converged = false;      // stopped because no assignment changed
  int64_t used_clusters = 0;   // centroids with at least one item
  int64_t largest_cluster = 0;
  int64_t reseeded = 0;        // empty clusters reseeded over all iterations
  double mse = 0.0;            // mean over items of |residual|^2 after this level
};

struct RqKMeansReport {
  double initial_mse = 0.0;                 // mean |x|^2 (the error of quantising to zero)
  std::vector<RqKMeansLevelStats> levels;   // empty after from_state_dict
  int64_t unique_prefixes = 0;              // distinct `levels`-code tuples
  int64_t colliding_items = 0;              // items that share their prefix with another item
  int64_t disambiguation_size = 0;          // largest group = vocabulary of the last token
  double seconds = 0.0;                     // wall time of fit
  std::string summary() const;
  std::string prefix_summary() const;       // the prefix and collision counts alone
};

class RqKMeans {
 public:
  explicit RqKMeans(const RqKMeansOptions& options = {});

  // vectors: [n_items + 1, dim] row-major; row 0 (padding) is ignored. Learns the codebooks on items
  // 1..n_items and gives every item its full code. Throws on non-finite input or n_items < 1.
  void fit(const std::vector<float>& vectors, int64_t dim);
  void fit(const float* vectors, int64_t n_rows, int64_t dim);

  // Nearest-centroid residual codes [n, levels] of arbitrary vectors [n, dim] (no disambiguation).
  std::vector<int64_t> encode(const float* vectors, int64_t n) const;
  // Sum of the centroids named by the first `levels_used` codes of each row: codes [n, code_stride]
  // -> [n, dim]. code_stride = levels() for encode() output, code_length() for item_codes().
  std::vector<float> decode(const int64_t* codes, int64_t n, int64_t code_stride, int64_t levels_used) const;

  bool fitted() const { return n_items_ > 0; }
  const RqKMeansOptions& options() const { return options_; }
  int64_t dim() const { return dim_; }
  int64_t levels() const { return options_.levels; }
  int64_t codebook_size() const { return options_.codebook_size; }
  int64_t code_length() const { return options_.levels + 1; }
  int64_t n_items() const { return n_items_; }
  // [codebook_size, dim] row-major.
  const std::vector<float>& codebook(int64_t level) const;
  // [n_items + 1, levels + 1] row-major; row 0 (padding) is all -1.
  const std::vector<int64_t>& item_codes() const { return codes_; }
  std::vector<int64_t> item_code(int64_t item) const;
  // Vocabulary of each code position: codebook_size per level, then the disambiguation size.
  std::vector<int64_t> vocab_sizes() const;
  int64_t disambiguation_size() const { return report_.disambiguation_size; }
  const RqKMeansReport& report() const { return report_; }

  // Checkpoint form: {prefix}codebook.{l} F32 [codebook_size, dim], {prefix}codes I64
  // [n_items + 1, levels + 1], {prefix}vocab_sizes I64 [levels + 1], {prefix}options I64
  // [levels, codebook_size, iterations, seed bits, balanced, kmeans_plus_plus, balanced_candidates].
  // The tensors alone restore the tokenizer; metadata() gives the same facts as readable strings
  // for the safetensors header.
  std::map<std::string, Tensor> state_dict(const std::string& prefix = "semantic_id.") const;
  std::map<std::string, std::string> metadata(const std::string& prefix = "semantic_id.") const;
  // `metadata` (the safetensors header's) restores name(); the tensors alone restore everything else.
  static RqKMeans from_state_dict(const std::map<std::string, Tensor>& tensors,
                                  const std::string& prefix = "semantic_id.",
                                  const std::map<std::string, std::string>& metadata = {});
  // A tokenizer over codebooks learned elsewhere (RQ-VAE's latent codebooks, rq_vae.h): codebooks
  // [levels][codebook_size * dim], level_codes [n_items + 1, levels] the items' codes (row 0 ignored;
  // the disambiguation token is appended here). `name` is what metadata() records as the tokenizer.
  static RqKMeans from_codebooks(const RqKMeansOptions& options, int64_t dim,
                                 std::vector<std::vector<float>> codebooks, const std::vector<int64_t>& level_codes,
                                 const std::string& name);
  // "rq-kmeans" for fit(); from_codebooks' name otherwise.
  const std::string& name() const { return name_; }
  // A standalone safetensors file with the state_dict and metadata.
  void save(const std::string& path) const;
  static RqKMeans load(const std::string& path);

 private:
  // codes_, n_items_ and the report's prefix counts from level codes [n_items + 1, levels].
  void set_item_codes(const std::vector<int64_t>& level_codes);

  RqKMeansOptions options_;
  std::string name_ = "rq-kmeans";
  int64_t dim_ = 0;
  int64_t n_items_ = 0;
  std::vector<std::vector<float>> codebooks_;  // per level [codebook_size, dim]
  std::vector<int64_t> codes_;
  RqKMeansReport report_;
};

// Greedy residual quantisation of rows x [n, dim]: level l takes the centroid of codebooks[l]
// ([codebook_size, dim] row-major) nearest to x minus the centroids chosen before it (ties to the
// lower index). Returns codes [n, codebooks.size()].
std::vector<int64_t> residual_quantize(const float* x, int64_t n, int64_t dim,
                                       const std::vector<std::vector<float>>& codebooks, int64_t codebook_size);

// Appends the disambiguation token: codes [n_items + 1, levels] indexed by item id (row 0, the
// padding row, is ignored) -> [n_items + 1, levels + 1], where items with equal codes get 0, 1, 2, ...
// in item-id order and row 0 is all -1. *max_group receives the largest group size (the
// disambiguation vocabulary), *unique_prefixes the number of distinct code tuples.
std::vector<int64_t> append_disambiguation(const std::vector<int64_t>& codes, int64_t levels, int64_t* max_group,
                                           int64_t* unique_prefixes = nullptr);

}  // namespace muonrec::semantic_id

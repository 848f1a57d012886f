#include "muonrec/models/semantic_id/rq_kmeans.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "muonrec/engine/error.h"
#include "muonrec/engine/rng.h"
#include "muonrec/engine/safetensors.h"

namespace muonrec::semantic_id {
namespace {

// A codebook in the two layouts the distance loop wants: rows for updates and decoding, the
// transpose [dim, k] so that the inner loop runs over centroids (contiguous, no reduction, hence
// vectorised by the compiler without reassociating float sums), and the squared norms.
struct Centroids {
  int64_t k = 0, dim = 0;
  std::vector<float> rows;   // [k, dim]
  std::vector<float> cols;   // [dim, k]
  std::vector<float> norm2;  // [k]

  Centroids(int64_t k_, int64_t dim_) : k(k_), dim(dim_), rows(k_ * dim_), cols(k_ * dim_), norm2(k_) {}
  void refresh() {
    for (int64_t c = 0; c < k; ++c) {
      float s = 0.0f;
      for (int64_t j = 0; j < dim; ++j) {
        const float v = rows[c * dim + j];
        cols[j * k + c] = v;
        s += v * v;
      }
      norm2[c] = s;
    }
  }
};

// out[r * k + c] = |c|^2 - 2 x_r . c for `count` (<= 4) consecutive rows of x. Four rows share every
// load of the centroid table.
void partial_distances(const float* x, int64_t count, const Centroids& cb, float* out) {
  const int64_t k = cb.k, dim = cb.dim;
  const float* cols = cb.cols.data();
  for (int64_t r = 0; r < count; ++r) std::memcpy(out + r * k, cb.norm2.data(), sizeof(float) * k);
  if (count == 4) {
    float* o0 = out;
    float* o1 = out + k;
    float* o2 = out + 2 * k;
    float* o3 = out + 3 * k;
    for (int64_t j = 0; j < dim; ++j) {
      const float a0 = -2.0f * x[j], a1 = -2.0f * x[dim + j], a2 = -2.0f * x[2 * dim + j], a3 = -2.0f * x[3 * dim + j];
      const float* col = cols + j * k;
      for (int64_t c = 0; c < k; ++c) {
        const float v = col[c];
        o0[c] += a0 * v;
        o1[c] += a1 * v;
        o2[c] += a2 * v;
        o3[c] += a3 * v;
      }
    }
    return;
  }
  for (int64_t r = 0; r < count; ++r) {
    float* o = out + r * k;
    for (int64_t j = 0; j < dim; ++j) {
      const float a = -2.0f * x[r * dim + j];
      const float* col = cols + j * k;
      for (int64_t c = 0; c < k; ++c) o[c] += a * col[c];
    }
  }
}

// OpenMP only pays for itself on big passes: a parallel region costs a barrier, and on a loaded
// machine a barrier waits for a descheduled thread (milliseconds). Below this many multiply-adds a
// pass runs on one thread.
constexpr int64_t kParallelWork = int64_t{1} << 24;

float squared_norm(const float* x, int64_t dim) {
  float s = 0.0f;
  for (int64_t j = 0; j < dim; ++j) s += x[j] * x[j];
  return s;
}

// Nearest centroid of every row (ties to the lower index) and its squared distance.
void assign_nearest(const float* x, int64_t n, const Centroids& cb, int64_t* assign, float* dist) {
  const int64_t k = cb.k, dim = cb.dim;
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel if (n * k * dim >= kParallelWork)
  {
    std::vector<float> buf(static_cast<size_t>(4 * k));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t start = b * 4, count = std::min<int64_t>(4, n - start);
      partial_distances(x + start * dim, count, cb, buf.data());
      for (int64_t r = 0; r < count; ++r) {
        const float* o = buf.data() + r * k;
        int64_t best = 0;
        float best_v = o[0];
        for (int64_t c = 1; c < k; ++c)
          if (o[c] < best_v) best_v = o[c], best = c;
        assign[start + r] = best;
        if (dist) dist[start + r] = std::max(0.0f, best_v + squared_norm(x + (start + r) * dim, dim));
      }
    }
  }
}

struct Candidate {
  float dist;
  int32_t point;
  int32_t cluster;
};

// Capacity-constrained greedy assignment (see the header): every cluster gets at most `capacity`.
void assign_balanced(const float* x, int64_t n, const Centroids& cb, int64_t capacity, int64_t n_candidates,
                     int64_t* assign, float* dist) {
  const int64_t k = cb.k, dim = cb.dim;
  const int64_t m = std::min(n_candidates, k);
  MUONREC_CHECK(n * m < (int64_t{1} << 32), "RqKMeans: {} points x {} candidates is too many", n, m);
  std::vector<Candidate> cand(static_cast<size_t>(n * m));
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel if (n * k * dim >= kParallelWork)
  {
    std::vector<float> buf(static_cast<size_t>(4 * k));
    std::vector<float> top_d(static_cast<size_t>(m));
    std::vector<int32_t> top_c(static_cast<size_t>(m));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t start = b * 4, count = std::min<int64_t>(4, n - start);
      partial_distances(x + start * dim, count, cb, buf.data());
      for (int64_t r = 0; r < count; ++r) {
        const float* o = buf.data() + r * k;
        // The m nearest by insertion into a sorted list: after the first few centroids almost every
        // candidate is rejected by one comparison. Strict '<' keeps the lower index on ties.
        int64_t size = 0;
        for (int64_t c = 0; c < k; ++c) {
          const float v = o[c];
          if (size == m && !(v < top_d[m - 1])) continue;
          int64_t pos = size < m ? size++ : m - 1;
          while (pos > 0 && v < top_d[pos - 1]) {
            top_d[pos] = top_d[pos - 1];
            top_c[pos] = top_c[pos - 1];
            --pos;
          }
          top_d[pos] = v;
          top_c[pos] = static_cast<int32_t>(c);
        }
        const float xn = squared_norm(x + (start + r) * dim, dim);
        Candidate* dst = cand.data() + (start + r) * m;
        for (int64_t i = 0; i < m; ++i)
          dst[i] = Candidate{std::max(0.0f, top_d[i] + xn), static_cast<int32_t>(start + r), top_c[i]};
      }
    }
  }
  // Global order by (distance, point, cluster). Distances are >= 0, so their float bits order like
  // the values; and within a point the candidates already sit in (distance, cluster) order, so the
  // array index breaks ties exactly as (point, cluster) would. Sorting plain 64-bit keys is several
  // times faster than sorting the structs with a comparator.
  std::vector<uint64_t> keys(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &cand[i].dist, sizeof bits);
    keys[i] = (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(i);
  }
  std::sort(keys.begin(), keys.end());
  std::vector<int64_t> fill(static_cast<size_t>(k), 0);
  std::fill(assign, assign + n, -1);
  for (uint64_t key : keys) {
    const Candidate& c = cand[static_cast<uint32_t>(key)];
    if (assign[c.point] >= 0 || fill[c.cluster] >= capacity) continue;
    assign[c.point] = c.cluster;
    dist[c.point] = c.dist;
    ++fill[c.cluster];
  }
  // Points whose candidates all filled up: nearest centroid with room, in point order.
  std::vector<float> buf(static_cast<size_t>(k));
  for (int64_t p = 0; p < n; ++p) {
    if (assign[p] >= 0) continue;
    partial_distances(x + p * dim, 1, cb, buf.data());
    int64_t best = -1;
    for (int64_t c = 0; c < k; ++c)
      if (fill[c] < capacity && (best < 0 || buf[c] < buf[best])) best = c;
    MUONREC_CHECK(best >= 0, "RqKMeans: balanced assignment ran out of capacity (internal error)");
    assign[p] = best;
    dist[p] = std::max(0.0f, buf[best] + squared_norm(x + p * dim, dim));
    ++fill[best];
  }
}

// A uniform double in [0, 1) with 53 random bits.
double unit_double(PhiloxGenerator& gen) { return static_cast<double>(gen.uniform_u64() >> 11) * 0x1.0p-53; }

int64_t uniform_index(PhiloxGenerator& gen, int64_t n) {
  return static_cast<int64_t>(unit_double(gen) * static_cast<double>(n)) % n;
}

void initialise(const float* x, int64_t n, Centroids& cb, bool plus_plus, PhiloxGenerator& gen) {
  const int64_t k = cb.k, dim = cb.dim;
  auto set = [&](int64_t c, int64_t p) { std::copy(x + p * dim, x + (p + 1) * dim, cb.rows.begin() + c * dim); };
  if (!plus_plus) {
    // Distinct points by a partial Fisher-Yates shuffle; repeats only when k > n.
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) idx[i] = i;
    for (int64_t c = 0; c < k; ++c) {
      if (c < n) {
        const int64_t j = c + uniform_index(gen, n - c);
        std::swap(idx[c], idx[j]);
        set(c, idx[c]);
      } else {
        set(c, uniform_index(gen, n));
      }
    }
    cb.refresh();
    return;
  }
  // k-means++ (Arthur & Vassilvitskii 2007): each next centroid is a point drawn with probability
  // proportional to its squared distance to the nearest centroid so far. The points are transposed
  // once so that the distance update of a new centroid runs over points in the inner loop
  // (vectorised, no float reduction), which makes k passes over n x dim cheap enough for one thread.
  std::vector<float> xt(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) xt[j * n + i] = x[i * dim + j];
  std::vector<float> d2(static_cast<size_t>(n)), cur(static_cast<size_t>(n));
  auto distances_to = [&](const float* c, float* out) {
    std::fill(out, out + n, 0.0f);
    for (int64_t j = 0; j < dim; ++j) {
      const float cj = c[j];
      const float* row = xt.data() + j * n;
      for (int64_t i = 0; i < n; ++i) {
        const float d = row[i] - cj;
        out[i] += d * d;
      }
    }
  };
  int64_t pick = uniform_index(gen, n);
  set(0, pick);
  distances_to(cb.rows.data(), d2.data());
  for (int64_t c = 1; c < k; ++c) {
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += d2[i];
    if (!(total > 0.0)) {
      pick = uniform_index(gen, n);  // every point already coincides with a centroid
    } else {
      const double u = unit_double(gen) * total;
      double cum = 0.0;
      pick = -1;
      int64_t last_positive = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (d2[i] <= 0.0f) continue;
        last_positive = i;
        cum += d2[i];
        if (cum > u) {
          pick = i;
          break;
        }
      }
      if (pick < 0) pick = last_positive;  // rounding at the very end of the cumulative sum
    }
    set(c, pick);
    distances_to(cb.rows.data() + c * dim, cur.data());
    for (int64_t i = 0; i < n; ++i) d2[i] = std::min(d2[i], cur[i]);
  }
  cb.refresh();
}

// Centroids := member means (double sums, item order). With reseed, an empty cluster takes the
// point farthest from its centroid (distinct points, farthest first); returns the reseed count.
int64_t update_centroids(const float* x, int64_t n, const int64_t* assign, const float* dist, Centroids& cb,
                         bool reseed) {
  const int64_t k = cb.k, dim = cb.dim;
  std::vector<double> sums(static_cast<size_t>(k * dim), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(k), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = assign[i];
    ++count[c];
    double* s = sums.data() + c * dim;
    const float* xi = x + i * dim;
    for (int64_t j = 0; j < dim; ++j) s[j] += xi[j];
  }
  std::vector<int64_t> empty;
  for (int64_t c = 0; c < k; ++c) {
    if (count[c] == 0) {
      empty.push_back(c);
      continue;
    }
    const double inv = 1.0 / static_cast<double>(count[c]);
    for (int64_t j = 0; j < dim; ++j) cb.rows[c * dim + j] = static_cast<float>(sums[c * dim + j] * inv);
  }
  int64_t reseeded = 0;
  if (reseed && !empty.empty()) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    const size_t take = std::min(empty.size(), order.size());
    std::partial_sort(order.begin(), order.begin() + take, order.end(),
                      [dist](int64_t a, int64_t b) { return dist[a] > dist[b] || (dist[a] == dist[b] && a < b); });
    for (size_t e = 0; e < take; ++e) {
      const int64_t p = order[e];
      if (!(dist[p] > 0.0f)) break;
      std::copy(x + p * dim, x + (p + 1) * dim, cb.rows.begin() + empty[e] * dim);
      ++reseeded;
    }
  }
  cb.refresh();
  return reseeded;
}

// One level: learns the codebook on x [n, dim] and returns the training assignment.
std::vector<int64_t> train_level(const float* x, int64_t n, Centroids& cb, const RqKMeansOptions& opt,
                                 PhiloxGenerator& gen, RqKMeansLevelStats& stats) {
  initialise(x, n, cb, opt.kmeans_plus_plus, gen);
  const int64_t capacity = (n + cb.k - 1) / cb.k;
  std::vector<int64_t> assign(static_cast<size_t>(n), -1), previous;
  std::vector<float> dist(static_cast<size_t>(n));
  for (int64_t it = 0;; ++it) {
    if (opt.balanced)
      assign_balanced(x, n, cb, capacity, opt.balanced_candidates, assign.data(), dist.data());
    else
      assign_nearest(x, n, cb, assign.data(), dist.data());
    if (it > 0 && assign == previous) {
      stats.converged = true;
      break;
    }
    if (it == opt.iterations) break;
    stats.reseeded += update_centroids(x, n, assign.data(), dist.data(), cb, /*reseed=*/true);
    stats.iterations = it + 1;
    previous = assign;
  }
  // Balanced codes are not nearest-centroid codes, so make each centroid the mean of the members it
  // actually has (this can only lower the reconstruction error of the level).
  if (opt.balanced) update_centroids(x, n, assign.data(), dist.data(), cb, /*reseed=*/false);
  std::vector<int64_t> count(static_cast<size_t>(cb.k), 0);
  for (int64_t a : assign) ++count[a];
  for (int64_t c : count) {
    stats.used_clusters += c > 0;
    stats.largest_cluster = std::max(stats.largest_cluster, c);
  }
  return assign;
}

std::string tensor_key(const std::string& prefix, const std::string& name) { return prefix + name; }

const Tensor& find_tensor(const std::map<std::string, Tensor>& tensors, const std::string& key, DType dtype,
                          const Shape& shape_or_empty) {
  auto it = tensors.find(key);
  MUONREC_CHECK(it != tensors.end(), "RqKMeans state: tensor '{}' missing", key);
  const Tensor& t = it->second;
  MUONREC_CHECK(t.defined() && t.dtype() == dtype, "RqKMeans state: tensor '{}' must be {}, got {}", key,
                dtype_name(dtype), t.defined() ? dtype_name(t.dtype()) : "undefined");
  MUONREC_CHECK(shape_or_empty.empty() || t.shape() == shape_or_empty,
                "RqKMeans state: tensor '{}' has shape {}, expected {}", key, shape_str(t.shape()),
                shape_str(shape_or_empty));
  return t;
}

}  // namespace

std::string RqKMeansReport::summary() const {
  std::string s = fmt::format("rq-kmeans: mse {:.4g}", initial_mse);
  for (size_t l = 0; l < levels.size(); ++l)
    s += fmt::format(" -> L{} {:.4g} ({} iters{}, {} used, max {})", l, levels[l].mse, levels[l].iterations,
                     levels[l].converged ? ", converged" : "", levels[l].used_clusters, levels[l].largest_cluster);
  return s + "; " + prefix_summary() + fmt::format("; {:.3f} s", seconds);
}

std::string RqKMeansReport::prefix_summary() const {
  return fmt::format("{} unique prefixes, {} colliding items, disambiguation vocab {}", unique_prefixes,
                     colliding_items, disambiguation_size);
}

std::vector<int64_t> append_disambiguation(const std::vector<int64_t>& codes, int64_t levels, int64_t* max_group,
                                           int64_t* unique_prefixes) {
  MUONREC_CHECK(levels >= 1, "append_disambiguation: levels must be >= 1, got {}", levels);
  MUONREC_CHECK(!codes.empty() && codes.size() % levels == 0,
                "append_disambiguation: {} codes do not form rows of {} levels", codes.size(), levels);
  const int64_t rows = static_cast<int64_t>(codes.size()) / levels;
  const int64_t width = levels + 1;
  std::vector<int64_t> out(static_cast<size_t>(rows * width), -1);
  std::map<std::vector<int64_t>, int64_t> groups;
  int64_t largest = 0;
  for (int64_t i = 1; i < rows; ++i) {
    std::vector<int64_t> key(codes.begin() + i * levels, codes.begin() + (i + 1) * levels);
    int64_t& next = groups[key];
    std::copy(key.begin(), key.end(), out.begin() + i * width);
    out[i * width + levels] = next++;
    largest = std::max(largest, next);
  }
  if (max_group) *max_group = largest;
  if (unique_prefixes) *unique_prefixes = static_cast<int64_t>(groups.size());
  return out;
}

RqKMeans::RqKMeans(const RqKMeansOptions& options) : options_(options) {
  MUONREC_CHECK(options.levels >= 1, "RqKMeans: levels must be >= 1, got {}", options.levels);
  MUONREC_CHECK(options.codebook_size >= 1 && options.codebook_size <= (1 << 24),
                "RqKMeans: codebook_size must be in [1, 2^24], got {}", options.codebook_size);
  MUONREC_CHECK(options.iterations >= 0, "RqKMeans: iterations must be >= 0, got {}", options.iterations);
  MUONREC_CHECK(options.balanced_candidates >= 1, "RqKMeans: balanced_candidates must be >= 1, got {}",
                options.balanced_candidates);
}

void RqKMeans::fit(const std::vector<float>& vectors, int64_t dim) {
  MUONREC_CHECK(dim >= 1, "RqKMeans::fit: dim must be >= 1, got {}", dim);
  MUONREC_CHECK(vectors.size() % dim == 0, "RqKMeans::fit: {} values do not form rows of width {}", vectors.size(),
                dim);
  fit(vectors.data(), static_cast<int64_t>(vectors.size()) / dim, dim);
}

void RqKMeans::fit(const float* vectors, int64_t n_rows, int64_t dim) {
  MUONREC_CHECK(dim >= 1, "RqKMeans::fit: dim must be >= 1, got {}", dim);
  MUONREC_CHECK(n_rows >= 2, "RqKMeans::fit: need rows [n_items + 1, dim] with n_items >= 1, got {} rows", n_rows);
  MUONREC_CHECK(n_rows - 1 < (int64_t{1} << 31), "RqKMeans::fit: {} items is too many", n_rows - 1);
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = n_rows - 1;
  for (int64_t i = dim; i < n_rows * dim; ++i)
    MUONREC_CHECK(std::isfinite(vectors[i]), "RqKMeans::fit: item {} feature {} is not finite ({})", i / dim,
                  i % dim, vectors[i]);
  // Distances are |c|^2 - 2 x.c + |x|^2 in float: rows whose squared norm, doubled twice, overflows
  // would make them NaN and put every item in the first cluster.
  for (int64_t item = 1; item < n_rows; ++item) {
    const float norm = squared_norm(vectors + item * dim, dim);
    MUONREC_CHECK(std::isfinite(4.0f * norm),
                  "RqKMeans::fit: item {}'s vector is too long for float distances (squared norm {}): scale the "
                  "vectors down", item, norm);
  }

  dim_ = dim;
  name_ = "rq-kmeans";  // a refit object is RQ-KMeans's, whatever it was made or loaded as
  n_items_ = 0;
  codebooks_.clear();
  report_ = RqKMeansReport{};
  std::vector<float> residual(vectors + dim, vectors + n_rows * dim);
  double mse = 0.0;
  for (int64_t i = 0; i < n; ++i) mse += squared_norm(residual.data() + i * dim, dim);
  report_.initial_mse = mse / static_cast<double>(n);

  const int64_t levels = options_.levels, k = options_.codebook_size;
  std::vector<int64_t> level_codes(static_cast<size_t>((n + 1) * levels), -1);
  PhiloxGenerator gen(options_.seed);
  for (int64_t l = 0; l < levels; ++l) {
    Centroids cb(k, dim);
    RqKMeansLevelStats stats;
    std::vector<int64_t> assign = train_level(residual.data(), n, cb, options_, gen, stats);
    double err = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      float* r = residual.data() + i * dim;
      const float* c = cb.rows.data() + assign[i] * dim;
      for (int64_t j = 0; j < dim; ++j) r[j] -= c[j];
      err += squared_norm(r, dim);
      level_codes[(i + 1) * levels + l] = assign[i];
    }
    stats.mse = err / static_cast<double>(n);
    report_.levels.push_back(stats);
    codebooks_.push_back(std::move(cb.rows));
  }
  set_item_codes(level_codes);
  report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void RqKMeans::set_item_codes(const std::vector<int64_t>& level_codes) {
  const int64_t levels = options_.levels;
  MUONREC_CHECK(level_codes.size() % levels == 0 && level_codes.size() / levels >= 2,
                "RqKMeans: {} codes do not form rows [n_items + 1, {}] with n_items >= 1", level_codes.size(), levels);
  const int64_t n = static_cast<int64_t>(level_codes.size()) / levels - 1;
  codes_ = append_disambiguation(level_codes, levels, &report_.disambiguation_size, &report_.unique_prefixes);
  std::map<std::vector<int64_t>, int64_t> sizes;
  for (int64_t i = 1; i <= n; ++i)
    ++sizes[std::vector<int64_t>(level_codes.begin() + i * levels, level_codes.begin() + (i + 1) * levels)];
  report_.colliding_items = 0;
  for (auto& [key, size] : sizes)
    if (size > 1) report_.colliding_items += size;
  n_items_ = n;
}

RqKMeans RqKMeans::from_codebooks(const RqKMeansOptions& options, int64_t dim,
                                  std::vector<std::vector<float>> codebooks, const std::vector<int64_t>& level_codes,
                                  const std::string& name) {
  RqKMeans r(options);
  MUONREC_CHECK(dim >= 1 && static_cast<int64_t>(codebooks.size()) == options.levels,
                "RqKMeans::from_codebooks: {} codebooks of width {} for {} levels", codebooks.size(), dim,
                options.levels);
  for (const std::vector<float>& codebook : codebooks)
    MUONREC_CHECK(static_cast<int64_t>(codebook.size()) == options.codebook_size * dim,
                  "RqKMeans::from_codebooks: a codebook of {} values, expected {} x {}", codebook.size(),
                  options.codebook_size, dim);
  for (size_t i = static_cast<size_t>(options.levels); i < level_codes.size(); ++i)
    MUONREC_CHECK(level_codes[i] >= 0 && level_codes[i] < options.codebook_size,
                  "RqKMeans::from_codebooks: item {} level {} code {} outside [0, {})", i / options.levels,
                  i % options.levels, level_codes[i], options.codebook_size);
  r.dim_ = dim;
  r.codebooks_ = std::move(codebooks);
  r.name_ = name;
  r.set_item_codes(level_codes);
  return r;
}

const std::vector<float>& RqKMeans::codebook(int64_t level) const {
  MUONREC_CHECK(fitted(), "RqKMeans::codebook: not fitted");
  MUONREC_CHECK(level >= 0 && level < levels(), "RqKMeans::codebook: level {} outside [0, {})", level, levels());
  return codebooks_[level];
}

std::vector<int64_t> RqKMeans::item_code(int64_t item) const {
  MUONREC_CHECK(fitted(), "RqKMeans::item_code: not fitted");
  MUONREC_CHECK(item >= 1 && item <= n_items_, "RqKMeans::item_code: item {} outside [1, {}]", item, n_items_);
  const int64_t w = code_length();
  return std::vector<int64_t>(codes_.begin() + item * w, codes_.begin() + (item + 1) * w);
}

std::vector<int64_t> RqKMeans::vocab_sizes() const {
  MUONREC_CHECK(fitted(), "RqKMeans::vocab_sizes: not fitted");
  std::vector<int64_t> v(static_cast<size_t>(levels()), codebook_size());
  v.push_back(report_.disambiguation_size);
  return v;
}

std::vector<int64_t> residual_quantize(const float* x, int64_t n, int64_t dim,
                                       const std::vector<std::vector<float>>& codebooks, int64_t codebook_size) {
  MUONREC_CHECK(n >= 0 && dim >= 1 && codebook_size >= 1, "residual_quantize: n {} dim {} codebook size {}", n, dim,
                codebook_size);
  const int64_t levels = static_cast<int64_t>(codebooks.size());
  std::vector<float> residual(x, x + n * dim);
  std::vector<int64_t> assign(static_cast<size_t>(n));
  std::vector<int64_t> codes(static_cast<size_t>(n * levels));
  for (int64_t l = 0; l < levels; ++l) {
    MUONREC_CHECK(static_cast<int64_t>(codebooks[l].size()) == codebook_size * dim,
                  "residual_quantize: codebook {} has {} values, expected {} x {}", l, codebooks[l].size(),
                  codebook_size, dim);
    Centroids cb(codebook_size, dim);
    cb.rows = codebooks[l];
    cb.refresh();
    assign_nearest(residual.data(), n, cb, assign.data(), nullptr);
    for (int64_t i = 0; i < n; ++i) {
      codes[i * levels + l] = assign[i];
      const float* c = cb.rows.data() + assign[i] * dim;
      for (int64_t j = 0; j < dim; ++j) residual[i * dim + j] -= c[j];
    }
  }
  return codes;
}

std::vector<int64_t> RqKMeans::encode(const float* vectors, int64_t n) const {
  MUONREC_CHECK(fitted(), "RqKMeans::encode: not fitted");
  MUONREC_CHECK(n >= 0, "RqKMeans::encode: n must be >= 0, got {}", n);
  return residual_quantize(vectors, n, dim_, codebooks_, options_.codebook_size);
}

std::vector<float> RqKMeans::decode(const int64_t* codes, int64_t n, int64_t code_stride, int64_t levels_used) const {
  MUONREC_CHECK(fitted(), "RqKMeans::decode: not fitted");
  MUONREC_CHECK(n >= 0, "RqKMeans::decode: n must be >= 0, got {}", n);
  MUONREC_CHECK(levels_used >= 0 && levels_used <= levels() && code_stride >= levels_used,
                "RqKMeans::decode: levels_used {} / code_stride {} invalid for {} levels", levels_used, code_stride,
                levels());
  std::vector<float> out(static_cast<size_t>(n * dim_), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < levels_used; ++l) {
      const int64_t c = codes[i * code_stride + l];
      MUONREC_CHECK(c >= 0 && c < codebook_size(), "RqKMeans::decode: row {} level {} code {} outside [0, {})", i, l,
                    c, codebook_size());
      const float* row = codebooks_[l].data() + c * dim_;
      for (int64_t j = 0; j < dim_; ++j) out[i * dim_ + j] += row[j];
    }
  return out;
}

std::map<std::string, Tensor> RqKMeans::state_dict(const std::string& prefix) const {
  MUONREC_CHECK(fitted(), "RqKMeans::state_dict: not fitted");
  std::map<std::string, Tensor> t;
  for (int64_t l = 0; l < levels(); ++l)
    t[tensor_key(prefix, fmt::format("codebook.{}", l))] = Tensor::from_f32(codebooks_[l], {codebook_size(), dim_});
  t[tensor_key(prefix, "codes")] = Tensor::from_i64(codes_, {n_items_ + 1, code_length()});
  t[tensor_key(prefix, "vocab_sizes")] = Tensor::from_i64(vocab_sizes(), {code_length()});
  int64_t seed_bits;
  std::memcpy(&seed_bits, &options_.seed, sizeof seed_bits);
  t[tensor_key(prefix, "options")] = Tensor::from_i64(
      {options_.levels, options_.codebook_size, options_.iterations, seed_bits, options_.balanced ? 1 : 0,
       options_.kmeans_plus_plus ? 1 : 0, options_.balanced_candidates},
      {7});
  return t;
}

std::map<std::string, std::string> RqKMeans::metadata(const std::string& prefix) const {
  MUONREC_CHECK(fitted(), "RqKMeans::metadata: not fitted");
  std::string vocab;
  for (int64_t v : vocab_sizes()) vocab += (vocab.empty() ? "" : ",") + std::to_string(v);
  return {
      {prefix + "tokenizer", name_},
      {prefix + "levels", std::to_string(levels())},
      {prefix + "codebook_size", std::to_string(codebook_size())},
      {prefix + "dim", std::to_string(dim_)},
      {prefix + "n_items", std::to_string(n_items_)},
      {prefix + "vocab_sizes", vocab},
      {prefix + "disambiguation_size", std::to_string(disambiguation_size())},
      {prefix + "iterations", std::to_string(options_.iterations)},
      {prefix + "seed", std::to_string(options_.seed)},
      {prefix + "balanced", options_.balanced ? "true" : "false"},
  };
}

RqKMeans RqKMeans::from_state_dict(const std::map<std::string, Tensor>& tensors, const std::string& prefix,
                                   const std::map<std::string, std::string>& metadata) {
  std::vector<int64_t> o = find_tensor(tensors, tensor_key(prefix, "options"), DType::I64, {7}).to_i64_vector();
  RqKMeansOptions opt;
  opt.levels = o[0];
  opt.codebook_size = o[1];
  opt.iterations = o[2];
  std::memcpy(&opt.seed, &o[3], sizeof opt.seed);
  opt.balanced = o[4] != 0;
  opt.kmeans_plus_plus = o[5] != 0;
  opt.balanced_candidates = o[6];
  RqKMeans r(opt);
  if (auto name = metadata.find(prefix + "tokenizer"); name != metadata.end()) r.name_ = name->second;
  const Tensor& codes = find_tensor(tensors, tensor_key(prefix, "codes"), DType::I64, {});
  // Compared as codes.dim(1) - 1: a damaged levels count near 2^63 would overflow levels + 1.
  MUONREC_CHECK(codes.rank() == 2 && codes.dim(1) - 1 == opt.levels && codes.dim(0) >= 2,
                "RqKMeans state: tensor '{}' has shape {}, expected [n_items + 1, levels {} + 1]",
                tensor_key(prefix, "codes"), shape_str(codes.shape()), opt.levels);
  const Tensor& cb0 = find_tensor(tensors, tensor_key(prefix, "codebook.0"), DType::F32, {});
  MUONREC_CHECK(cb0.rank() == 2 && cb0.dim(0) == opt.codebook_size && cb0.dim(1) >= 1,
                "RqKMeans state: tensor '{}' has shape {}, expected [{}, dim]", tensor_key(prefix, "codebook.0"),
                shape_str(cb0.shape()), opt.codebook_size);
  r.dim_ = cb0.dim(1);
  for (int64_t l = 0; l < opt.levels; ++l)
    r.codebooks_.push_back(find_tensor(tensors, tensor_key(prefix, fmt::format("codebook.{}", l)), DType::F32,
                                       {opt.codebook_size, r.dim_})
                               .to_f32_vector());
  std::vector<int64_t> vocab =
      find_tensor(tensors, tensor_key(prefix, "vocab_sizes"), DType::I64, {opt.levels + 1}).to_i64_vector();
  r.codes_ = codes.to_i64_vector();
  r.n_items_ = codes.dim(0) - 1;
  r.report_.disambiguation_size = vocab.back();
  // Validate the vocabularies and codes, so a corrupt checkpoint fails here, not in decoding: every
  // level's vocabulary is the codebook, and every item's full code is its own.
  for (int64_t l = 0; l < opt.levels; ++l)
    MUONREC_CHECK(vocab[l] == opt.codebook_size, "RqKMeans state: level {} has a vocabulary of {}, the codebook {}", l,
                  vocab[l], opt.codebook_size);
  const int64_t w = opt.levels + 1;
  for (int64_t i = 1; i <= r.n_items_; ++i)
    for (int64_t l = 0; l < w; ++l) {
      const int64_t c = r.codes_[i * w + l];
      MUONREC_CHECK(c >= 0 && c < vocab[l], "RqKMeans state: item {} position {} code {} outside [0, {})", i, l, c,
                    vocab[l]);
    }
  std::map<std::vector<int64_t>, int64_t> prefixes, full_codes;
  for (int64_t i = 1; i <= r.n_items_; ++i) {
    ++prefixes[std::vector<int64_t>(r.codes_.begin() + i * w, r.codes_.begin() + i * w + opt.levels)];
    const auto [previous, unique] =
        full_codes.emplace(std::vector<int64_t>(r.codes_.begin() + i * w, r.codes_.begin() + (i + 1) * w), i);
    MUONREC_CHECK(unique, "RqKMeans state: items {} and {} share a code", previous->second, i);
  }
  r.report_.unique_prefixes = static_cast<int64_t>(prefixes.size());
  for (auto& [key, size] : prefixes)
    if (size > 1) r.report_.colliding_items += size;
  return r;
}

void RqKMeans::save(const std::string& path) const { save_safetensors(path, state_dict(), metadata()); }

RqKMeans RqKMeans::load(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  return from_state_dict(file.tensors, "semantic_id.", file.metadata);
}

}  // namespace muonrec::semantic_id

#include "muonrec/kernels/cpu/chunked_ce.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "muonrec/kernels/cpu/loss.h"
#include "muonrec/kernels/cpu/matmul.h"
#include "muonrec/kernels/cpu/vector_functions.h"
#include "muonrec/kernels/cpu/vector_math.h"

namespace muonrec::kernels::cpu {
namespace {

// 4 MB of fp32 logits per tile: it stays in cache between the product that writes it and the pass
// that reads it back.
constexpr int64_t kTileElements = int64_t{1} << 20;

int64_t rows_per_tile(int64_t rows, int64_t width) {
  return std::clamp<int64_t>(kTileElements / width, 1, std::max<int64_t>(rows, 1));
}

// Folds a tile of logits [rows, width] (classes chunk_begin .. chunk_begin + width) into the
// running row maximum and sum of exponentials (online log-sum-exp), and picks up the logit of the
// target when it falls in this tile. Before the first chunk: max = -inf, sum = 0, target 0. The
// tile is scratch: its rows are overwritten by their exponentials (exp_array: vectorised).
void fold_tile(float* logits, const int64_t* targets, int64_t rows, int64_t width, int64_t chunk_begin,
               float* row_max, float* row_sum, float* target_logit) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    float* z = logits + r * width;
    const int64_t t = targets[r] - chunk_begin;
    if (t >= 0 && t < width) target_logit[r] = z[t];
    const float new_max = std::max(row_max[r], max_value(z, width));
    for (int64_t c = 0; c < width; ++c) z[c] -= new_max;
    exp_array(z, z, width);
    // What was summed under the old maximum, rescaled (exp(-inf) = 0 before the first chunk).
    row_sum[r] = row_sum[r] * std::exp(row_max[r] - new_max) + sum(z, width);
    row_max[r] = new_max;
  }
}

// Turns a tile of logits into d(loss)/d(logits) in place: (softmax - onehot) * factor, and 0 on
// ignored rows.
void gradient_tile(float* logits, const int64_t* targets, const float* logsumexp, float factor, int64_t rows,
                   int64_t width, int64_t chunk_begin) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r)
    cross_entropy_gradient_row(logits + r * width, targets[r], logsumexp[r], factor, width, chunk_begin,
                               logits + r * width);
}

}  // namespace

void linear_ce_forward(const float* h, const float* weight, const int64_t* targets, int64_t rows, int64_t dim,
                       int64_t classes, float scale, int64_t chunk, float* logsumexp, float* loss, float* valid_count) {
  const int64_t max_width = std::min(chunk, classes);
  const int64_t block = rows_per_tile(rows, max_width);
  std::vector<float> tile(static_cast<size_t>(block * max_width));
  std::vector<float> row_max(static_cast<size_t>(rows), -INFINITY), row_sum(static_cast<size_t>(rows), 0.0f);
  std::vector<float> target_logit(static_cast<size_t>(rows), 0.0f);
  for (int64_t begin = 0; begin < classes; begin += max_width) {
    const int64_t width = std::min(max_width, classes - begin);
    for (int64_t first = 0; first < rows; first += block) {
      const int64_t count = std::min(block, rows - first);
      gemm(false, true, count, width, dim, scale, h + first * dim, weight + begin * dim, 0.0f, tile.data());
      fold_tile(tile.data(), targets + first, count, width, begin, row_max.data() + first, row_sum.data() + first,
                target_logit.data() + first);
    }
  }
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) {
      logsumexp[r] = 0.0f;
      continue;
    }
    logsumexp[r] = row_max[r] + std::log(row_sum[r]);
    total += logsumexp[r] - target_logit[r];
    ++counted;
  }
  valid_count[0] = static_cast<float>(counted);
  loss[0] = counted ? static_cast<float>(total / counted) : 0.0f;
}

void linear_ce_backward(const float* h, const float* weight, const int64_t* targets, const float* logsumexp,
                        const float* valid_count, const float* dloss, int64_t rows, int64_t dim, int64_t classes,
                        float scale, int64_t chunk, float* dh, float* dweight) {
  // No row block ever writes dweight when there are no rows.
  if (rows == 0) std::fill(dweight, dweight + classes * dim, 0.0f);
  const float factor = valid_count[0] > 0 ? dloss[0] / valid_count[0] : 0.0f;
  const int64_t max_width = std::min(chunk, classes);
  const int64_t block = rows_per_tile(rows, max_width);
  std::vector<float> tile(static_cast<size_t>(block * max_width));
  for (int64_t begin = 0; begin < classes; begin += max_width) {
    const int64_t width = std::min(max_width, classes - begin);
    for (int64_t first = 0; first < rows; first += block) {
      const int64_t count = std::min(block, rows - first);
      gemm(false, true, count, width, dim, scale, h + first * dim, weight + begin * dim, 0.0f, tile.data());
      gradient_tile(tile.data(), targets + first, logsumexp + first, factor, count, width, begin);
      // dh[block] += scale * G @ W[chunk]; dW[chunk] += scale * G^T @ h[block]. The first chunk
      // (and the first row block) overwrites instead, so neither output needs zeroing first.
      gemm(false, false, count, dim, width, scale, tile.data(), weight + begin * dim, begin == 0 ? 0.0f : 1.0f,
           dh + first * dim);
      gemm(true, false, width, dim, count, scale, tile.data(), h + first * dim, first == 0 ? 0.0f : 1.0f,
           dweight + begin * dim);
    }
  }
}

}  // namespace muonrec::kernels::cpu

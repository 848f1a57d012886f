#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace muonrec::kernels::cpu {

void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    // Two-pass statistics in double: the reference must not lose digits to cancellation.
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    double mu = sum / cols;
    double var = 0.0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    float rs = static_cast<float>(1.0 / std::sqrt(var / cols + eps));
    mean[r] = static_cast<float>(mu);
    rstd[r] = rs;
    for (int64_t c = 0; c < cols; ++c) {
      float n = (xr[c] - mean[r]) * rs;
      y[r * cols + c] = n * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
    }
  }
}

void layer_norm_backward(const float* x, const float* weight, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dweight, float* dbias, int64_t rows, int64_t cols) {
  if (dweight) std::fill(dweight, dweight + cols, 0.0f);
  if (dbias) std::fill(dbias, dbias + cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    // dx = rstd * (g - mean(g) - n * mean(g * n)) with g = dy * weight and n the normalized input.
    double sum_g = 0.0, sum_gn = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      float n = (xr[c] - mean[r]) * rstd[r];
      float g = dyr[c] * (weight ? weight[c] : 1.0f);
      sum_g += g;
      sum_gn += g * n;
      if (dweight) dweight[c] += dyr[c] * n;
      if (dbias) dbias[c] += dyr[c];
    }
    float mean_g = static_cast<float>(sum_g / cols), mean_gn = static_cast<float>(sum_gn / cols);
    for (int64_t c = 0; c < cols; ++c) {
      float n = (xr[c] - mean[r]) * rstd[r];
      float g = dyr[c] * (weight ? weight[c] : 1.0f);
      dx[r * cols + c] = rstd[r] * (g - mean_g - n * mean_gn);
    }
  }
}

void l2_normalize_forward(const float* x, float* y, float* norm, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) sq += static_cast<double>(x[r * cols + c]) * x[r * cols + c];
    norm[r] = static_cast<float>(std::sqrt(sq));
    float inv = 1.0f / std::max(norm[r], eps);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] * inv;
  }
}

void l2_normalize_backward(const float* x, const float* norm, const float* dy, float* dx, int64_t rows, int64_t cols,
                           float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    if (norm[r] <= eps) {  // the clamp is active: y = x / eps is linear in x
      for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] = dyr[c] / eps;
      continue;
    }
    // y = x / |x|: dx = (dy - y * <y, dy>) / |x|
    double dot = 0.0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(xr[c]) * dyr[c];
    float inv = 1.0f / norm[r];
    float proj = static_cast<float>(dot) * inv * inv;
    for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] = (dyr[c] - xr[c] * proj) * inv;
  }
}

}  // namespace muonrec::kernels::cpu

#include "muonrec/kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace muonrec::kernels::cpu {
namespace {

double row_mean(const float* row, int64_t cols) {
  double sum = 0.0;
  for (int64_t c = 0; c < cols; ++c) sum += row[c];
  return sum / cols;
}

// One element of a layer-normalized row, centred on the mean in double.
float normalized(float x, double mean, float rstd) { return static_cast<float>((x - mean) * rstd); }

}  // namespace

void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    // Two-pass statistics in double, and the input centred on the double mean: the reference must
    // not lose digits to cancellation (a row 1000 + noise centred on the float mean is off by 3e-3).
    const double mu = row_mean(xr, cols);
    double var = 0.0;
    for (int64_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    const float rs = static_cast<float>(1.0 / std::sqrt(var / cols + eps));
    mean[r] = static_cast<float>(mu);
    rstd[r] = rs;
    for (int64_t c = 0; c < cols; ++c) {
      const float n = normalized(xr[c], mu, rs);
      y[r * cols + c] = n * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
    }
  }
}

// `mean` is the forward's, rounded to float (the CUDA kernel centres on it); this reference
// recomputes it in double, to normalize exactly as its forward did.
void layer_norm_backward(const float* x, const float* weight, const float* /*mean*/, const float* rstd,
                         const float* dy, float* dx, float* dweight, float* dbias, int64_t rows, int64_t cols) {
  // The parameter gradients sum over every row (a batch of 1024 windows of 200: 204,800 terms), in
  // double as the linear layers' bias gradients are: a float running sum drifts by 2e-3 there.
  std::vector<double> dweight_sum(dweight ? cols : 0, 0.0), dbias_sum(dbias ? cols : 0, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* dyr = dy + r * cols;
    const double mu = row_mean(xr, cols);
    // dx = rstd * (g - mean(g) - n * mean(g * n)) with g = dy * weight and n the normalized input.
    double sum_g = 0.0, sum_gn = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const float n = normalized(xr[c], mu, rstd[r]);
      const float g = dyr[c] * (weight ? weight[c] : 1.0f);
      sum_g += g;
      sum_gn += g * n;
      if (dweight) dweight_sum[c] += dyr[c] * n;
      if (dbias) dbias_sum[c] += dyr[c];
    }
    const float mean_g = static_cast<float>(sum_g / cols), mean_gn = static_cast<float>(sum_gn / cols);
    for (int64_t c = 0; c < cols; ++c) {
      const float n = normalized(xr[c], mu, rstd[r]);
      const float g = dyr[c] * (weight ? weight[c] : 1.0f);
      dx[r * cols + c] = rstd[r] * (g - mean_g - n * mean_gn);
    }
  }
  for (int64_t c = 0; c < (dweight ? cols : 0); ++c) dweight[c] = static_cast<float>(dweight_sum[c]);
  for (int64_t c = 0; c < (dbias ? cols : 0); ++c) dbias[c] = static_cast<float>(dbias_sum[c]);
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

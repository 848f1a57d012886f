#include "muonrec/kernels/cuda/norm.h"

#include <algorithm>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/kernels/cuda/column_partials.cuh"

namespace muonrec::kernels::cuda {
namespace {

// One warp per row: rows are short (model widths of 32..1024), and a warp reduces with shuffles
// alone, no shared memory or block barriers.
constexpr unsigned kWarpsPerBlock = 8;
constexpr unsigned kRowBlock = 32 * kWarpsPerBlock;

// The parameter gradients sum over every row in two fixed-order stages (column_partials.cuh).


__device__ __forceinline__ int64_t warp_row() {
  return static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
}

__global__ void layer_norm_forward_kernel(const float* x, const float* weight, const float* bias, float* y,
                                          float* mean, float* rstd, int64_t rows, int64_t cols, float eps) {
  const int64_t r = warp_row();
  if (r >= rows) return;  // whole warps leave together, so the shuffles below stay converged
  const unsigned lane = threadIdx.x % 32;
  const float* xr = x + r * cols;
  // Two passes (mean, then squared deviations) as in the reference: no E[x^2] - E[x]^2 cancellation.
  float sum = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) sum += xr[c];
  const float mu = warp_sum(sum) / static_cast<float>(cols);
  float var = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) {
    float d = xr[c] - mu;
    var += d * d;
  }
  const float rs = 1.0f / sqrtf(warp_sum(var) / static_cast<float>(cols) + eps);
  if (lane == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
  float* yr = y + r * cols;
  for (int64_t c = lane; c < cols; c += 32) {
    float n = (xr[c] - mu) * rs;
    yr[c] = n * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
  }
}

__global__ void layer_norm_backward_dx_kernel(const float* x, const float* weight, const float* mean,
                                              const float* rstd, const float* dy, float* dx, int64_t rows,
                                              int64_t cols) {
  const int64_t r = warp_row();
  if (r >= rows) return;
  const unsigned lane = threadIdx.x % 32;
  const float* xr = x + r * cols;
  const float* dyr = dy + r * cols;
  const float mu = mean[r], rs = rstd[r];
  // dx = rstd * (g - mean(g) - n * mean(g * n)) with g = dy * weight and n the normalized input.
  float sum_g = 0.0f, sum_gn = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) {
    float n = (xr[c] - mu) * rs;
    float g = dyr[c] * (weight ? weight[c] : 1.0f);
    sum_g += g;
    sum_gn += g * n;
  }
  const float mean_g = warp_sum(sum_g) / static_cast<float>(cols);
  const float mean_gn = warp_sum(sum_gn) / static_cast<float>(cols);
  float* dxr = dx + r * cols;
  for (int64_t c = lane; c < cols; c += 32) {
    float n = (xr[c] - mu) * rs;
    float g = dyr[c] * (weight ? weight[c] : 1.0f);
    dxr[c] = rs * (g - mean_g - n * mean_gn);
  }
}

// Stage 1: partial[chunk, c] = sum over the chunk's rows (in row order) of dy * n and of dy.
__global__ void layer_norm_param_partial_kernel(const float* x, const float* mean, const float* rstd,
                                                const float* dy, double* partial_w, double* partial_b, int64_t rows,
                                                int64_t cols, int64_t rows_per_chunk) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  double acc_w = 0.0, acc_b = 0.0;
  for (int64_t r = begin; r < end; ++r) {
    float g = dy[r * cols + c];
    float n = (x[r * cols + c] - mean[r]) * rstd[r];
    acc_w += static_cast<double>(g * n);
    acc_b += static_cast<double>(g);
  }
  if (partial_w) partial_w[chunk * cols + c] = acc_w;
  if (partial_b) partial_b[chunk * cols + c] = acc_b;
}

__global__ void l2_normalize_forward_kernel(const float* x, float* y, float* norm, int64_t rows, int64_t cols,
                                            float eps) {
  const int64_t r = warp_row();
  if (r >= rows) return;
  const unsigned lane = threadIdx.x % 32;
  const float* xr = x + r * cols;
  float sq = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) sq += xr[c] * xr[c];
  const float nrm = sqrtf(warp_sum(sq));
  if (lane == 0) norm[r] = nrm;
  const float inv = 1.0f / fmaxf(nrm, eps);
  for (int64_t c = lane; c < cols; c += 32) y[r * cols + c] = xr[c] * inv;
}

__global__ void l2_normalize_backward_kernel(const float* x, const float* norm, const float* dy, float* dx,
                                             int64_t rows, int64_t cols, float eps) {
  const int64_t r = warp_row();
  if (r >= rows) return;
  const unsigned lane = threadIdx.x % 32;
  const float* xr = x + r * cols;
  const float* dyr = dy + r * cols;
  float* dxr = dx + r * cols;
  const float nrm = norm[r];
  if (nrm <= eps) {  // the clamp is active: y = x / eps is linear in x
    for (int64_t c = lane; c < cols; c += 32) dxr[c] = dyr[c] / eps;
    return;
  }
  // y = x / |x|: dx = (dy - y * <y, dy>) / |x|
  float dot = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) dot += xr[c] * dyr[c];
  const float inv = 1.0f / nrm;
  const float proj = warp_sum(dot) * inv * inv;
  for (int64_t c = lane; c < cols; c += 32) dxr[c] = (dyr[c] - xr[c] * proj) * inv;
}

}  // namespace

void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  NVTX_RANGE("layer_norm_forward");
  if (rows <= 0) return;
  layer_norm_forward_kernel<<<ceil_div(static_cast<size_t>(rows), kWarpsPerBlock), kRowBlock, 0, stream>>>(
      x, weight, bias, y, mean, rstd, rows, cols, eps);
  CUDA_LAUNCH_CHECK();
}

void layer_norm_backward(const float* x, const float* weight, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dweight, float* dbias, int64_t rows, int64_t cols, cudaStream_t stream) {
  NVTX_RANGE("layer_norm_backward");
  if (cols <= 0) return;
  if (rows > 0) {
    layer_norm_backward_dx_kernel<<<ceil_div(static_cast<size_t>(rows), kWarpsPerBlock), kRowBlock, 0, stream>>>(
        x, weight, mean, rstd, dy, dx, rows, cols);
    CUDA_LAUNCH_CHECK();
  }
  if (!dweight && !dbias) return;
  const size_t param_bytes = static_cast<size_t>(cols) * sizeof(float);
  if (rows == 0) {  // an empty sum
    if (dweight) CUDA_CHECK(cudaMemsetAsync(dweight, 0, param_bytes, stream));
    if (dbias) CUDA_CHECK(cudaMemsetAsync(dbias, 0, param_bytes, stream));
    return;
  }
  const ColumnChunks split = column_chunks(rows);
  const size_t partial_elems = static_cast<size_t>(split.chunks * cols);
  double* scratch = nullptr;
  CUDA_CHECK(cudaMallocAsync(&scratch, 2 * partial_elems * sizeof(double), stream));
  double* partial_w = dweight ? scratch : nullptr;
  double* partial_b = dbias ? scratch + partial_elems : nullptr;
  const dim3 grid(ceil_div(static_cast<size_t>(cols), kColumnBlock), static_cast<unsigned>(split.chunks));
  layer_norm_param_partial_kernel<<<grid, kColumnBlock, 0, stream>>>(x, mean, rstd, dy, partial_w, partial_b, rows,
                                                                     cols, split.rows_per_chunk);
  CUDA_LAUNCH_CHECK();
  if (dweight) finish_column_partials(partial_w, dweight, split.chunks, cols, stream);
  if (dbias) finish_column_partials(partial_b, dbias, split.chunks, cols, stream);
  CUDA_CHECK(cudaFreeAsync(scratch, stream));
}

void l2_normalize_forward(const float* x, float* y, float* norm, int64_t rows, int64_t cols, float eps,
                          cudaStream_t stream) {
  NVTX_RANGE("l2_normalize_forward");
  if (rows <= 0) return;
  l2_normalize_forward_kernel<<<ceil_div(static_cast<size_t>(rows), kWarpsPerBlock), kRowBlock, 0, stream>>>(
      x, y, norm, rows, cols, eps);
  CUDA_LAUNCH_CHECK();
}

void l2_normalize_backward(const float* x, const float* norm, const float* dy, float* dx, int64_t rows, int64_t cols,
                           float eps, cudaStream_t stream) {
  NVTX_RANGE("l2_normalize_backward");
  if (rows <= 0) return;
  l2_normalize_backward_kernel<<<ceil_div(static_cast<size_t>(rows), kWarpsPerBlock), kRowBlock, 0, stream>>>(
      x, norm, dy, dx, rows, cols, eps);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

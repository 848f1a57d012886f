#include "muonrec/kernels/cuda/loss.h"

#include <cmath>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

// One block per row: catalogues run from thousands to millions of classes.
constexpr unsigned kRowBlock = 256;
// The mean over rows is one block, in a fixed order (deterministic, no atomics).
constexpr unsigned kMeanBlock = 1024;


__global__ void logsumexp_kernel(const float* logits, float* logsumexp, int64_t classes) {
  __shared__ float shared[kRowBlock / 32];
  const float* z = logits + static_cast<int64_t>(blockIdx.x) * classes;
  float max_z = -INFINITY;
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) max_z = fmaxf(max_z, z[c]);
  max_z = block_reduce(max_z, MaxOp{}, shared);
  // exp of non-positive arguments: each term is in (0, 1], the sum cannot overflow.
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) sum += expf(z[c] - max_z);
  sum = block_reduce(sum, SumOp{}, shared);
  if (threadIdx.x == 0) logsumexp[blockIdx.x] = max_z + logf(sum);
}

// Mean over counted rows. Recomputes each row's term from logsumexp and the target logit (one
// gather per row) instead of keeping a per-row buffer.
__global__ void cross_entropy_mean_kernel(const float* logits, const int64_t* targets, const float* logsumexp,
                                          float* loss, float* valid_count, int64_t rows, int64_t classes) {
  __shared__ double shared_total[kMeanBlock / 32];
  __shared__ double shared_count[kMeanBlock / 32];
  double total = 0.0, count = 0.0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int64_t t = targets[r];
    if (t < 0) continue;
    total += static_cast<double>(logsumexp[r] - logits[r * classes + t]);
    count += 1.0;
  }
  total = block_reduce(total, SumOp{}, shared_total);
  count = block_reduce(count, SumOp{}, shared_count);
  if (threadIdx.x == 0) {
    valid_count[0] = static_cast<float>(count);
    loss[0] = count > 0.0 ? static_cast<float>(total / count) : 0.0f;
  }
}

__global__ void cross_entropy_backward_kernel(const float* logits, const int64_t* targets, const float* logsumexp,
                                              const float* valid_count, const float* dloss, float* dlogits,
                                              int64_t classes) {
  const int64_t r = blockIdx.x;
  float* dz = dlogits + r * classes;
  const int64_t t = targets[r];
  if (t < 0) {
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) dz[c] = 0.0f;
    return;
  }
  const float count = valid_count[0];
  const float factor = count > 0.0f ? dloss[0] / count : 0.0f;
  const float* z = logits + r * classes;
  const float lse = logsumexp[r];
  for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) {
    // Rounded multiply then subtract, as the reference does (no fused multiply-add).
    float g = __fmul_rn(expf(z[c] - lse), factor);
    dz[c] = c == t ? g - factor : g;
  }
}

}  // namespace

void cross_entropy_forward(const float* logits, const int64_t* targets, float* loss, float* logsumexp,
                           float* valid_count, int64_t rows, int64_t classes, cudaStream_t stream) {
  NVTX_RANGE("cross_entropy_forward");
  if (rows > 0) {
    logsumexp_kernel<<<static_cast<unsigned>(rows), kRowBlock, 0, stream>>>(logits, logsumexp, classes);
    CUDA_LAUNCH_CHECK();
  }
  // Launched even for rows == 0, so loss and valid_count are always written.
  cross_entropy_mean_kernel<<<1, kMeanBlock, 0, stream>>>(logits, targets, logsumexp, loss, valid_count, rows,
                                                          classes);
  CUDA_LAUNCH_CHECK();
}

void cross_entropy_backward(const float* logits, const int64_t* targets, const float* logsumexp,
                            const float* valid_count, const float* dloss, float* dlogits, int64_t rows,
                            int64_t classes, cudaStream_t stream) {
  NVTX_RANGE("cross_entropy_backward");
  if (rows <= 0 || classes <= 0) return;
  cross_entropy_backward_kernel<<<static_cast<unsigned>(rows), kRowBlock, 0, stream>>>(
      logits, targets, logsumexp, valid_count, dloss, dlogits, classes);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

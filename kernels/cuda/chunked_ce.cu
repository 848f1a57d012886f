#include <cfloat>

#include "engine/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "engine/nvtx.h"
#include "kernels/cuda/chunked_ce.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kRowBlock = 256;   // one block per row of the chunk
constexpr unsigned kFinishBlock = 1024;


__global__ void ce_chunk_forward_kernel(const float* logits, const int64_t* targets, int64_t width,
                                        int64_t chunk_begin, float* row_max, float* row_sum, float* target_logit) {
  __shared__ float shared[kRowBlock / 32];
  const int64_t r = blockIdx.x;
  const float* z = logits + r * width;
  float local_max = -FLT_MAX;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) local_max = fmaxf(local_max, z[c]);
  const float new_max = fmaxf(row_max[r], block_reduce(local_max, MaxOp{}, shared));
  float local_sum = 0.0f;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) local_sum += expf(z[c] - new_max);
  const float chunk_sum = block_reduce(local_sum, SumOp{}, shared);
  if (threadIdx.x == 0) {
    row_sum[r] = row_sum[r] * expf(row_max[r] - new_max) + chunk_sum;
    row_max[r] = new_max;
    const int64_t t = targets[r] - chunk_begin;
    if (targets[r] >= 0 && t >= 0 && t < width) target_logit[r] = z[t];
  }
}

// One block, fixed-order reduction: the loss is reproducible bit for bit.
__global__ void ce_finish_kernel(const float* row_max, const float* row_sum, const float* target_logit,
                                 const int64_t* targets, int64_t rows, float* logsumexp, float* loss,
                                 float* valid_count) {
  __shared__ float shared[kFinishBlock / 32];
  float total = 0.0f, counted = 0.0f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const float lse = row_max[r] + logf(row_sum[r]);
    logsumexp[r] = lse;
    if (targets[r] < 0) continue;
    total += lse - target_logit[r];
    counted += 1.0f;
  }
  total = block_reduce(total, SumOp{}, shared);
  counted = block_reduce(counted, SumOp{}, shared);
  if (threadIdx.x == 0) {
    valid_count[0] = counted;
    loss[0] = counted > 0 ? total / counted : 0.0f;
  }
}

__global__ void ce_chunk_backward_kernel(float* logits, const int64_t* targets, const float* logsumexp,
                                         const float* valid_count, const float* dloss, int64_t width,
                                         int64_t chunk_begin) {
  const int64_t r = blockIdx.x;
  float* z = logits + r * width;
  const float factor = valid_count[0] > 0 ? dloss[0] / valid_count[0] : 0.0f;
  const bool ignored = targets[r] < 0;
  const int64_t t = targets[r] - chunk_begin;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
    z[c] = ignored ? 0.0f : expf(z[c] - logsumexp[r]) * factor - (c == t ? factor : 0.0f);
}

}  // namespace

void ce_chunk_forward(const float* logits, const int64_t* targets, int64_t rows, int64_t width, int64_t chunk_begin,
                      float* row_max, float* row_sum, float* target_logit, cudaStream_t stream) {
  NVTX_RANGE("ce_chunk_forward");
  if (rows == 0) return;
  ce_chunk_forward_kernel<<<static_cast<unsigned>(rows), kRowBlock, 0, stream>>>(logits, targets, width, chunk_begin,
                                                                                 row_max, row_sum, target_logit);
  CUDA_LAUNCH_CHECK();
}

void ce_finish(const float* row_max, const float* row_sum, const float* target_logit, const int64_t* targets,
               int64_t rows, float* logsumexp, float* loss, float* valid_count, cudaStream_t stream) {
  NVTX_RANGE("ce_finish");
  ce_finish_kernel<<<1, kFinishBlock, 0, stream>>>(row_max, row_sum, target_logit, targets, rows, logsumexp, loss,
                                                   valid_count);
  CUDA_LAUNCH_CHECK();
}

void ce_chunk_backward(float* logits, const int64_t* targets, const float* logsumexp, const float* valid_count,
                       const float* dloss, int64_t rows, int64_t width, int64_t chunk_begin, cudaStream_t stream) {
  NVTX_RANGE("ce_chunk_backward");
  if (rows == 0) return;
  ce_chunk_backward_kernel<<<static_cast<unsigned>(rows), kRowBlock, 0, stream>>>(logits, targets, logsumexp,
                                                                                  valid_count, dloss, width,
                                                                                  chunk_begin);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

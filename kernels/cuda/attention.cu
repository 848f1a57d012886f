#include "kernels/cuda/attention.h"

#include <cmath>

#include "engine/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/head_row.cuh"
#include "engine/error.h"
#include "engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

// Row kernels (one block per (b, h, query i)): threads stride over keys j for the scores, then over
// the head dimension for the weighted sum of values. Sequences are up to a few hundred long.
constexpr unsigned kRowBlock = 128;
// Key kernel (one block per (b, h, key j)): threads stride over the head dimension only.
constexpr unsigned kKeyBlock = 64;
// The row kernels keep one row of scores (and probabilities) in shared memory.
constexpr size_t kMaxSharedBytes = 48 * 1024;

__global__ void attention_forward_kernel(const float* qkv, const float* valid, float* out, float* probs,
                                         int64_t seq, int64_t heads, int64_t head_dim, float scale, bool causal) {
  extern __shared__ float smem[];
  __shared__ float reduce_scratch[kRowBlock / 32];
  float* q = smem;             // [head_dim]
  float* p = smem + head_dim;  // [seq]: scores, then probabilities
  const HeadRow hr = head_row(seq, heads);
  const int64_t i = hr.t, d = heads * head_dim, stride = 3 * d;
  const float* qkv_b = qkv + hr.b * seq * stride + hr.h * head_dim;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) q[c] = qkv_b[i * stride + c];
  __syncthreads();

  float local_max = -INFINITY;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    const bool allowed = ((j <= i || !causal) && valid[hr.b * seq + j] != 0.0f) || j == i;
    float score = -INFINITY;
    if (allowed) {
      const float* k = qkv_b + j * stride + d;
      float dot = 0.0f;
      for (int64_t c = 0; c < head_dim; ++c) dot += q[c] * k[c];
      score = dot * scale;
      local_max = fmaxf(local_max, score);
    }
    p[j] = score;
  }
  // j == i is always allowed, so the maximum is finite.
  const float max_score = block_reduce(local_max, MaxOp{}, reduce_scratch);
  float local_sum = 0.0f;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    const float e = isinf(p[j]) ? 0.0f : expf(p[j] - max_score);
    p[j] = e;
    local_sum += e;
  }
  const float inv = 1.0f / block_reduce(local_sum, SumOp{}, reduce_scratch);
  float* probs_row = probs + static_cast<int64_t>(blockIdx.x) * seq;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    p[j] *= inv;
    probs_row[j] = p[j];
  }
  __syncthreads();  // every thread reads the whole probability row below

  // Masked keys (probability exactly 0) are skipped, as in the reference, so padding values never
  // reach the output even when they are not finite.
  float* o = out + (hr.b * seq + i) * d + hr.h * head_dim;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j < seq; ++j) {
      if (p[j] == 0.0f) continue;
      acc += p[j] * qkv_b[j * stride + 2 * d + c];
    }
    o[c] = acc;
  }
}

// Per query row i: dP_ij = dO_i . v_j, dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij) * scale (saved for the
// key kernel), and dQ_i = sum_j dS_ij k_j in increasing j.
__global__ void attention_backward_query_kernel(const float* qkv, const float* probs, const float* dout,
                                                float* dqkv, float* ds_all, int64_t seq, int64_t heads,
                                                int64_t head_dim, float scale) {
  extern __shared__ float smem[];
  __shared__ double reduce_scratch[kRowBlock / 32];
  float* dout_i = smem;             // [head_dim]
  float* p = smem + head_dim;       // [seq]
  float* ds = smem + head_dim + seq;  // [seq]: dP, then dS
  const HeadRow hr = head_row(seq, heads);
  const int64_t i = hr.t, d = heads * head_dim, stride = 3 * d;
  const float* qkv_b = qkv + hr.b * seq * stride + hr.h * head_dim;
  const float* dout_row = dout + (hr.b * seq + i) * d + hr.h * head_dim;
  const float* probs_row = probs + static_cast<int64_t>(blockIdx.x) * seq;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) dout_i[c] = dout_row[c];
  __syncthreads();

  // The row sum is in double, as in the reference: dS subtracts it from each dP, so its rounding
  // error would be amplified where the two nearly cancel.
  double local_weighted = 0.0;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    const float pj = probs_row[j];
    float dp = 0.0f;
    if (pj != 0.0f) {
      const float* v = qkv_b + j * stride + 2 * d;
      for (int64_t c = 0; c < head_dim; ++c) dp += dout_i[c] * v[c];
      local_weighted += static_cast<double>(pj) * dp;
    }
    p[j] = pj;
    ds[j] = dp;
  }
  const float weighted = static_cast<float>(block_reduce(local_weighted, SumOp{}, reduce_scratch));
  float* ds_row = ds_all + static_cast<int64_t>(blockIdx.x) * seq;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    const float value = p[j] == 0.0f ? 0.0f : p[j] * (ds[j] - weighted) * scale;
    ds[j] = value;
    ds_row[j] = value;
  }
  __syncthreads();

  float* dq = dqkv + (hr.b * seq + i) * stride + hr.h * head_dim;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j < seq; ++j) {
      if (p[j] == 0.0f) continue;
      acc += ds[j] * qkv_b[j * stride + d + c];
    }
    dq[c] = acc;
  }
}

// Per key row j: dK_j = sum_i dS_ij q_i and dV_j = sum_i P_ij dO_i, in increasing i. Each output
// element has one owner thread, so no atomics.
__global__ void attention_backward_key_kernel(const float* qkv, const float* probs, const float* dout,
                                              const float* ds_all, float* dqkv, int64_t seq, int64_t heads,
                                              int64_t head_dim) {
  const HeadRow hr = head_row(seq, heads);
  const int64_t j = hr.t, d = heads * head_dim, stride = 3 * d;
  const int64_t bh = static_cast<int64_t>(blockIdx.x) / seq;
  const float* qkv_b = qkv + hr.b * seq * stride + hr.h * head_dim;
  const float* dout_b = dout + hr.b * seq * d + hr.h * head_dim;
  const float* probs_col = probs + bh * seq * seq + j;  // element i at i * seq
  const float* ds_col = ds_all + bh * seq * seq + j;
  float* dk = dqkv + (hr.b * seq + j) * stride + d + hr.h * head_dim;
  float* dv = dk + d;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc_k = 0.0f, acc_v = 0.0f;
    // All i, not only i >= j: the reference makes no assumption on where probs is zero.
    for (int64_t i = 0; i < seq; ++i) {
      const float pij = probs_col[i * seq];
      if (pij == 0.0f) continue;
      acc_k += ds_col[i * seq] * qkv_b[i * stride + c];
      acc_v += pij * dout_b[i * d + c];
    }
    dk[c] = acc_k;
    dv[c] = acc_v;
  }
}

void check_attention_shape(const char* op, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                           size_t shared_bytes) {
  MUONREC_CHECK(shared_bytes <= kMaxSharedBytes,
                "{}: seq={} head_dim={} need {} bytes of shared memory per row (at most {})", op, seq, head_dim,
                shared_bytes, kMaxSharedBytes);
  MUONREC_CHECK(batch * heads * seq <= INT32_MAX, "{}: batch*heads*seq = {} exceeds one launch's grid", op,
                batch * heads * seq);
}

}  // namespace

void attention_forward(const float* qkv, const float* valid, float* out, float* probs, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal, cudaStream_t stream) {
  NVTX_RANGE("attention_forward");
  const int64_t rows = batch * heads * seq;
  if (rows <= 0 || head_dim <= 0) return;
  const size_t shared_bytes = static_cast<size_t>(head_dim + seq) * sizeof(float);
  check_attention_shape("attention_forward", batch, seq, heads, head_dim, shared_bytes);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));  // the reference's rounding
  attention_forward_kernel<<<static_cast<unsigned>(rows), kRowBlock, shared_bytes, stream>>>(
      qkv, valid, out, probs, seq, heads, head_dim, scale, causal);
  CUDA_LAUNCH_CHECK();
}

void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv, int64_t batch,
                        int64_t seq, int64_t heads, int64_t head_dim, cudaStream_t stream) {
  NVTX_RANGE("attention_backward");
  const int64_t rows = batch * heads * seq;
  if (rows <= 0 || head_dim <= 0) return;
  const size_t shared_bytes = static_cast<size_t>(head_dim + 2 * seq) * sizeof(float);
  check_attention_shape("attention_backward", batch, seq, heads, head_dim, shared_bytes);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  float* ds_all = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ds_all), static_cast<size_t>(rows * seq) * sizeof(float),
                             stream));
  attention_backward_query_kernel<<<static_cast<unsigned>(rows), kRowBlock, shared_bytes, stream>>>(
      qkv, probs, dout, dqkv, ds_all, seq, heads, head_dim, scale);
  CUDA_LAUNCH_CHECK();
  attention_backward_key_kernel<<<static_cast<unsigned>(rows), kKeyBlock, 0, stream>>>(qkv, probs, dout, ds_all,
                                                                                       dqkv, seq, heads, head_dim);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaFreeAsync(ds_all, stream));
}

}  // namespace muonrec::kernels::cuda

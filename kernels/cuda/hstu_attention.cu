#include "kernels/cuda/hstu_attention.h"
#include "kernels/hstu_time_bucket.h"

#include "engine/cuda_check.h"
#include "kernels/cuda/head_row.cuh"
#include "engine/error.h"
#include "engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

// Row kernels (one block per (b, h, query i)) and key kernel (one block per (b, h, key j)): threads
// stride over keys for the scores, then over the head dimension for the weighted sums. Sequences
// are up to a few hundred long, so one row of weights fits in shared memory.
constexpr unsigned kRowBlock = 128;
constexpr unsigned kKeyBlock = 64;
// Bias-gradient kernels: threads stride over the bias entries (offsets, then time buckets).
constexpr unsigned kBiasBlock = 128;
constexpr size_t kMaxSharedBytes = 48 * 1024;

__device__ __forceinline__ float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t c = 0; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// Relative attention bias of query i and key j in sequence b (the same for every head).
__device__ __forceinline__ float relative_bias(const float* pos_bias, const float* time_bias,
                                               const int32_t* time_buckets, int64_t b, int64_t seq, int64_t i,
                                               int64_t j) {
  float bias = pos_bias[j - i + seq - 1];
  if (time_bias) bias += time_bias[time_buckets[(b * seq + i) * seq + j]];
  return bias;
}

__global__ void hstu_attention_forward_kernel(const float* uvqk, const float* valid, const float* pos_bias,
                                              const float* time_bias, const int32_t* time_buckets, float* out,
                                              int64_t seq, int64_t heads, int64_t head_dim, float inv_seq) {
  extern __shared__ float smem[];
  float* q = smem;             // [head_dim]
  float* w = smem + head_dim;  // [seq]: weights of query i (keys j <= i)
  const HeadRow hr = head_row(seq, heads);
  const int64_t i = hr.t, d = heads * head_dim, stride = 4 * d;
  // Head h's columns of sequence b; the v, q, k blocks start d, 2d, 3d further.
  const float* seq_b = uvqk + hr.b * seq * stride + hr.h * head_dim;
  const float* valid_b = valid + hr.b * seq;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) q[c] = seq_b[i * stride + 2 * d + c];
  __syncthreads();
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    float weight = 0.0f;
    if (valid_b[j] != 0.0f) {
      const float z = dot(q, seq_b + j * stride + 3 * d, head_dim) +
                      relative_bias(pos_bias, time_bias, time_buckets, hr.b, seq, i, j);
      weight = z * sigmoid(z) * inv_seq;
    }
    w[j] = weight;
  }
  __syncthreads();
  // Masked keys are skipped (not multiplied by 0), as in the reference: padding values never reach
  // the output even when they are not finite.
  float* o = out + (hr.b * seq + i) * d + hr.h * head_dim;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j <= i; ++j) {
      if (valid_b[j] == 0.0f) continue;
      acc += w[j] * seq_b[j * stride + d + c];
    }
    o[c] = acc;
  }
}

// Per query row i: recomputes z_ij, saves w_ij and dz_ij = (dy_i . v_j) SiLU'(z_ij) / T for every key
// (0 where masked) for the key and bias kernels, writes dq_i = sum_j dz_ij k_j in increasing j and
// zeroes this head's u columns (u gets no gradient from this op).
__global__ void hstu_attention_backward_query_kernel(const float* uvqk, const float* valid, const float* pos_bias,
                                                     const float* time_bias, const int32_t* time_buckets,
                                                     const float* dout, float* duvqk, float* w_all, float* dz_all,
                                                     int64_t seq, int64_t heads, int64_t head_dim, float inv_seq) {
  extern __shared__ float smem[];
  float* q = smem;                    // [head_dim]
  float* dy = smem + head_dim;        // [head_dim]
  float* dz = smem + 2 * head_dim;    // [seq]
  const HeadRow hr = head_row(seq, heads);
  const int64_t i = hr.t, d = heads * head_dim, stride = 4 * d;
  const float* seq_b = uvqk + hr.b * seq * stride + hr.h * head_dim;
  const float* valid_b = valid + hr.b * seq;
  const float* dout_row = dout + (hr.b * seq + i) * d + hr.h * head_dim;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    q[c] = seq_b[i * stride + 2 * d + c];
    dy[c] = dout_row[c];
  }
  __syncthreads();
  float* w_row = w_all + static_cast<int64_t>(blockIdx.x) * seq;
  float* dz_row = dz_all + static_cast<int64_t>(blockIdx.x) * seq;
  for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
    float weight = 0.0f, grad = 0.0f;
    if (j <= i && valid_b[j] != 0.0f) {
      const float z = dot(q, seq_b + j * stride + 3 * d, head_dim) +
                      relative_bias(pos_bias, time_bias, time_buckets, hr.b, seq, i, j);
      const float s = sigmoid(z);
      weight = z * s * inv_seq;
      grad = dot(dy, seq_b + j * stride + d, head_dim) * s * (1.0f + z * (1.0f - s)) * inv_seq;
    }
    dz[j] = grad;
    w_row[j] = weight;
    dz_row[j] = grad;
  }
  __syncthreads();
  float* du = duvqk + (hr.b * seq + i) * stride + hr.h * head_dim;
  float* dq = du + 2 * d;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j <= i; ++j) {
      if (valid_b[j] == 0.0f) continue;
      acc += dz[j] * seq_b[j * stride + 3 * d + c];
    }
    dq[c] = acc;
    du[c] = 0.0f;
  }
}

// Per key row j: dk_j = sum_i dz_ij q_i and dv_j = sum_i w_ij dy_i over the queries i >= j that see
// it, in increasing i. Each output element has one owner thread.
__global__ void hstu_attention_backward_key_kernel(const float* uvqk, const float* valid, const float* dout,
                                                   const float* w_all, const float* dz_all, float* duvqk,
                                                   int64_t seq, int64_t heads, int64_t head_dim) {
  const HeadRow hr = head_row(seq, heads);
  const int64_t j = hr.t, d = heads * head_dim, stride = 4 * d;
  const int64_t bh = static_cast<int64_t>(blockIdx.x) / seq;
  const float* seq_b = uvqk + hr.b * seq * stride + hr.h * head_dim;
  const float* dout_b = dout + hr.b * seq * d + hr.h * head_dim;
  const float* w_col = w_all + bh * seq * seq + j;  // query i at i * seq
  const float* dz_col = dz_all + bh * seq * seq + j;
  const bool key_visible = valid[hr.b * seq + j] != 0.0f;
  float* dv = duvqk + (hr.b * seq + j) * stride + d + hr.h * head_dim;
  float* dk = dv + 2 * d;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float acc_k = 0.0f, acc_v = 0.0f;
    if (key_visible) {
      for (int64_t i = j; i < seq; ++i) {
        acc_k += dz_col[i * seq] * seq_b[i * stride + 2 * d + c];
        acc_v += w_col[i * seq] * dout_b[i * d + c];
      }
    }
    dk[c] = acc_k;
    dv[c] = acc_v;
  }
}

// One block per sequence b: partial[b, c] for column c of [offsets 0..2T-2, time buckets], summed
// over heads and queries in a fixed order (in double: the terms have both signs and many cancel).
// dz is 0 wherever the mask is, so masked pairs add nothing.
__global__ void hstu_bias_partial_kernel(const float* dz_all, const int32_t* time_buckets, double* partial,
                                         int64_t seq, int64_t heads, int64_t time_columns) {
  const int64_t b = blockIdx.x, num_offsets = 2 * seq - 1, width = num_offsets + time_columns;
  const float* dz_b = dz_all + b * heads * seq * seq;
  for (int64_t column = threadIdx.x; column < width; column += blockDim.x) {
    double acc = 0.0;
    if (column < num_offsets) {
      const int64_t shift = column - (seq - 1);  // j - i
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < seq; ++i) {
          const int64_t j = i + shift;
          if (j >= 0 && j <= i) acc += dz_b[(h * seq + i) * seq + j];
        }
    } else {
      const int32_t bucket = static_cast<int32_t>(column - num_offsets);
      const int32_t* buckets_b = time_buckets + b * seq * seq;
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j <= i; ++j) {
          if (buckets_b[i * seq + j] != bucket) continue;
          for (int64_t h = 0; h < heads; ++h) acc += dz_b[(h * seq + i) * seq + j];
        }
    }
    partial[b * width + column] = acc;
  }
}

// One thread per bias entry: the sum of the per-sequence partials in increasing b.
__global__ void hstu_bias_total_kernel(const double* partial, float* dpos_bias, float* dtime_bias, int64_t batch,
                                       int64_t num_offsets, int64_t width) {
  const int64_t column = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (column >= width) return;
  double acc = 0.0;
  for (int64_t b = 0; b < batch; ++b) acc += partial[b * width + column];
  if (column < num_offsets)
    dpos_bias[column] = static_cast<float>(acc);
  else
    dtime_bias[column - num_offsets] = static_cast<float>(acc);
}

void check_hstu_shape(const char* op, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                      size_t shared_bytes) {
  MUONREC_CHECK(shared_bytes <= kMaxSharedBytes,
                "{}: seq={} head_dim={} need {} bytes of shared memory per row (at most {})", op, seq, head_dim,
                shared_bytes, kMaxSharedBytes);
  MUONREC_CHECK(batch * heads * seq <= INT32_MAX, "{}: batch*heads*seq = {} exceeds one launch's grid", op,
                batch * heads * seq);
}

}  // namespace

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim, cudaStream_t stream) {
  NVTX_RANGE("hstu_attention_forward");
  const int64_t rows = batch * heads * seq;
  if (rows <= 0 || head_dim <= 0) return;
  const size_t shared_bytes = static_cast<size_t>(head_dim + seq) * sizeof(float);
  check_hstu_shape("hstu_attention_forward", batch, seq, heads, head_dim, shared_bytes);
  const float inv_seq = 1.0f / static_cast<float>(seq);  // the reference's rounding
  hstu_attention_forward_kernel<<<static_cast<unsigned>(rows), kRowBlock, shared_bytes, stream>>>(
      uvqk, valid, pos_bias, time_bias, time_buckets, out, seq, heads, head_dim, inv_seq);
  CUDA_LAUNCH_CHECK();
}

void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets, cudaStream_t stream) {
  NVTX_RANGE("hstu_attention_backward");
  const int64_t rows = batch * heads * seq;
  const int64_t num_offsets = 2 * seq - 1;
  const int64_t time_columns = dtime_bias ? num_time_buckets : 0;
  if (rows <= 0 || head_dim <= 0) {
    // No (b, h, i, j) term, or all of them zero (empty heads): the bias gradients are still written.
    if (num_offsets > 0) CUDA_CHECK(cudaMemsetAsync(dpos_bias, 0, num_offsets * sizeof(float), stream));
    if (time_columns > 0) CUDA_CHECK(cudaMemsetAsync(dtime_bias, 0, time_columns * sizeof(float), stream));
    return;
  }
  const size_t shared_bytes = static_cast<size_t>(2 * head_dim + seq) * sizeof(float);
  check_hstu_shape("hstu_attention_backward", batch, seq, heads, head_dim, shared_bytes);
  const float inv_seq = 1.0f / static_cast<float>(seq);
  const int64_t width = num_offsets + time_columns;
  const size_t pair_bytes = static_cast<size_t>(rows * seq) * sizeof(float);
  float *w_all = nullptr, *dz_all = nullptr;
  double* partial = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&w_all), pair_bytes, stream));
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&dz_all), pair_bytes, stream));
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), static_cast<size_t>(batch * width) * sizeof(double),
                             stream));
  hstu_attention_backward_query_kernel<<<static_cast<unsigned>(rows), kRowBlock, shared_bytes, stream>>>(
      uvqk, valid, pos_bias, time_bias, time_buckets, dout, duvqk, w_all, dz_all, seq, heads, head_dim, inv_seq);
  CUDA_LAUNCH_CHECK();
  hstu_attention_backward_key_kernel<<<static_cast<unsigned>(rows), kKeyBlock, 0, stream>>>(
      uvqk, valid, dout, w_all, dz_all, duvqk, seq, heads, head_dim);
  CUDA_LAUNCH_CHECK();
  hstu_bias_partial_kernel<<<static_cast<unsigned>(batch), kBiasBlock, 0, stream>>>(dz_all, time_buckets, partial,
                                                                                     seq, heads, time_columns);
  CUDA_LAUNCH_CHECK();
  hstu_bias_total_kernel<<<ceil_div(static_cast<size_t>(width), kBiasBlock), kBiasBlock, 0, stream>>>(
      partial, dpos_bias, dtime_bias, batch, num_offsets, width);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaFreeAsync(partial, stream));
  CUDA_CHECK(cudaFreeAsync(dz_all, stream));
  CUDA_CHECK(cudaFreeAsync(w_all, stream));
}

namespace {

__global__ void hstu_time_buckets_kernel(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= batch * seq * seq) return;
  const int64_t b = e / (seq * seq), i = e / seq % seq, j = e % seq;
  buckets[e] = kernels::hstu_time_bucket_at(timestamps + b * seq, seq, i, j);
}

}  // namespace

void hstu_time_buckets(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq, cudaStream_t stream) {
  NVTX_RANGE("hstu_time_buckets");
  const int64_t n = batch * seq * seq;
  if (n == 0) return;
  constexpr unsigned kBucketBlock = 256;
  hstu_time_buckets_kernel<<<ceil_div(n, kBucketBlock), kBucketBlock, 0, stream>>>(timestamps, buckets, batch, seq);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

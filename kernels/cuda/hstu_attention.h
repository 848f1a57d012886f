// CUDA launchers: HSTU pointwise attention (contracts of kernels/cpu/hstu_attention.h, on device
// pointers, queued on `stream`). uvqk is [B, T, 4*H*Dh] (u, v, q, k blocks), valid [B, T],
// pos_bias [2T-1], time_bias [num_time_buckets] and time_buckets [B, T, T] (both null without
// timestamps), out [B, T, H*Dh].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// w_ij = SiLU(q_i.k_j + pos_bias[j-i+T-1] + time_bias[bucket_bij]) / T where j <= i and valid[j],
// out_i = sum_j w_ij v_j. time_buckets values are trusted to lie in range (built on the host).
void hstu_time_buckets(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq, cudaStream_t stream);

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim, cudaStream_t stream);
// Writes all of duvqk (u block zero), dpos_bias and, when non-null, dtime_bias. The kernels are tiled
// (flash style, no [T, T] matrix in memory); stream-ordered scratch holds only per-block partial sums
// of the bias gradients, [B * H * ceil(T / tile)] x [T + num_time_buckets] doubles. Every sum has one
// owner thread and a fixed order (no atomics), so the result is deterministic. Head dims up to 256.
void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda

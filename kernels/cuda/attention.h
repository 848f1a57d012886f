// CUDA launchers: multi-head softmax attention with the padding mask, causal or not (contracts of
// kernels/cpu/attention.h). qkv is [B, T, 3*H*Dh], valid [B, T], out [B, T, H*Dh], lse [B, H, T].
// Flash style: tiled, online softmax, no T x T matrix in global memory; fp32 throughout. Head dims
// up to 128.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// Query i attends key j when (j <= i or !causal) and valid[j], or when j == i. Writes out and the
// row log-sum-exp lse (natural log, of the scaled scores).
void attention_forward(const float* qkv, const float* valid, float* out, float* lse, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal, cudaStream_t stream);
// Writes all of dqkv [B, T, 3*H*Dh] from dout [B, T, H*Dh] and the forward's out and lse. Uses a
// stream-ordered [B, H, T] scratch buffer; no atomics, so the result is deterministic.
void attention_backward(const float* qkv, const float* valid, const float* out, const float* lse, const float* dout,
                        float* dqkv, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, bool causal,
                        cudaStream_t stream);

}  // namespace muonrec::kernels::cuda

// CUDA launchers: multi-head softmax attention with the padding mask, causal or not (contracts of
// kernels/cpu/attention.h). qkv is [B, T, 3*H*Dh], valid [B, T], out [B, T, H*Dh], probs [B, H, T, T].
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// Query i attends key j when (j <= i or !causal) and valid[j], or when j == i. Saves probs (0 where
// masked).
void attention_forward(const float* qkv, const float* valid, float* out, float* probs, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal, cudaStream_t stream);
// Writes all of dqkv [B, T, 3*H*Dh] from dout [B, T, H*Dh]. Uses a stream-ordered [B, H, T, T]
// scratch buffer for dS; no atomics, so the result is deterministic.
void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv, int64_t batch,
                        int64_t seq, int64_t heads, int64_t head_dim, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda

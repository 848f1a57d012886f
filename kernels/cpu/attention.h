// CPU reference: multi-head softmax attention with the causal and padding masks of MODELS.md.
// qkv is [B, T, 3*H*Dh] (q, k, v blocks along the last axis; head h uses columns h*Dh..h*Dh+Dh of
// each block), valid is [B, T] (1 real, 0 padding), out is [B, T, H*Dh].
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Query i attends key j when (j <= i and valid[j]) or j == i. Saves probs [B, H, T, T] (0 where
// masked) for the backward.
void attention_forward(const float* qkv, const float* valid, float* out, float* probs, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim);
// Writes dqkv [B, T, 3*H*Dh] from dout [B, T, H*Dh].
void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv, int64_t batch,
                        int64_t seq, int64_t heads, int64_t head_dim);

}  // namespace muonrec::kernels::cpu

// CPU reference: multi-head softmax attention with the padding mask of MODELS.md, causal (SASRec)
// or bidirectional (BERT4Rec).
// qkv is [B, T, 3*H*Dh] (q, k, v blocks along the last axis; head h uses columns h*Dh..h*Dh+Dh of
// each block), valid is [B, T] (1 real, 0 padding), out is [B, T, H*Dh].
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Query i attends key j when (j <= i or !causal) and valid[j], or when j == i (so no row is empty).
// Saves probs [B, H, T, T] (0 where masked) for the backward, which therefore needs no mask.
void attention_forward(const float* qkv, const float* valid, float* out, float* probs, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal);
// Writes dqkv [B, T, 3*H*Dh] from dout [B, T, H*Dh].
void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv, int64_t batch,
                        int64_t seq, int64_t heads, int64_t head_dim);

}  // namespace muonrec::kernels::cpu

// CPU reference: multi-head softmax attention with the padding mask of MODELS.md, causal (SASRec)
// or bidirectional (BERT4Rec).
// qkv is [B, T, 3*H*Dh] (q, k, v blocks along the last axis; head h uses columns h*Dh..h*Dh+Dh of
// each block), valid is [B, T] (1 real, 0 padding), out is [B, T, H*Dh], lse is [B, H, T].
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Query i attends key j when (j <= i or !causal) and valid[j], or when j == i (so no row is empty).
// Saves lse, the natural log of each row's softmax denominator over the scaled scores
// q_i.k_j / sqrt(Dh), from which the backward recomputes the probabilities: O(B*H*T), not T x T.
void attention_forward(const float* qkv, const float* valid, float* out, float* lse, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal);
// Evaluation-only attention of S new positions appended to cached causal contexts (a decoder's
// KV cache): qkv_new is [N, S, 3*H*Dh], context_qkv [R, T, 3*H*Dh] with its key mask context_valid
// [R, T], and row n continues context context_rows[n]. Query s of row n attends the valid keys of
// its context and new keys 0..s, which is what attention_forward (causal) gives at positions
// T..T+S-1 of the concatenated rows. out is [N, S, H*Dh]. Costs O(N*S*(T+S)*Dh) where the
// concatenated rows would cost O(N*(T+S)^2*Dh) and a copy of every context per row.
void attention_continued_forward(const float* qkv_new, const float* context_qkv, const float* context_valid,
                                 const int64_t* context_rows, float* out, int64_t rows, int64_t new_len,
                                 int64_t context_len, int64_t heads, int64_t head_dim);
// Writes dqkv [B, T, 3*H*Dh] from dout [B, T, H*Dh], given the forward's out and lse and the same
// mask. Uses sum_j P_ij dP_ij = dout_i . out_i, so no row of probabilities is kept.
void attention_backward(const float* qkv, const float* valid, const float* out, const float* lse, const float* dout,
                        float* dqkv, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, bool causal);

}  // namespace muonrec::kernels::cpu

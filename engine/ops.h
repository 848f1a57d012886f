// The op API. Each op validates dtype, shape and device, dispatches to the CPU reference
// (kernels/cpu) or the CUDA kernel (kernels/cuda), and records an autograd node when an input
// requires a gradient. All floating-point ops take and return f32 tensors; ids are i64.
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/engine/rng.h"
#include "muonrec/engine/tensor.h"

namespace muonrec::ops {

// ---- conversions (not differentiable) ----
// f32 <-> bf16 (round to nearest even) and i32 <-> i64.
Tensor cast(const Tensor& x, DType dtype);

// ---- elementwise ----
// a + b. b has a's shape or a suffix of it (broadcast over the leading axes, e.g. positions).
Tensor add(const Tensor& a, const Tensor& b);
// accumulator += x in place (same shape; not differentiable): gradient buffers.
void add_into(const Tensor& accumulator, const Tensor& x);
// a * b, same shapes.
Tensor mul(const Tensor& a, const Tensor& b);
// x * factor.
Tensor scale(const Tensor& x, float factor);
// x[..., c] * row_factor[...]: one factor per row of the last axis (e.g. a 0/1 padding mask).
// row_factor is a constant: no gradient flows to it.
Tensor scale_rows(const Tensor& x, const Tensor& row_factor);

// ---- activations ----
Tensor gelu(const Tensor& x);  // exact (erf) form, as torch's default
Tensor silu(const Tensor& x);
Tensor relu(const Tensor& x);
// Inverted dropout: keeps each element with probability 1-p and scales it by 1/(1-p). The mask is
// a pure function of (generator seed, offset, element index): the CPU and CUDA paths draw the same
// mask, and backward regenerates it instead of storing it. Identity when !training or p == 0.
Tensor dropout(const Tensor& x, float p, PhiloxGenerator& generator, bool training);

// ---- matrix products ----
// x[..., in] @ weight[out, in]^T + bias[out] (bias may be undefined). Layout of torch.nn.Linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// a[m, k] @ b[k, n].
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- normalization ----
// Over the last axis; weight and bias ([cols]) may both be undefined (no affine parameters).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
// x / max(||x||_2, eps) over the last axis (torch.nn.functional.normalize).
Tensor l2_normalize(const Tensor& x, float eps);

// ---- embedding ----
// weight[ids]: shape ids.shape + [d]. ids are i64 in [0, rows). Backward sums rows in a fixed
// order (deterministic, no float atomics).
Tensor embedding(const Tensor& weight, const Tensor& ids);

// ---- attention ----
// Multi-head softmax attention over packed qkv[B, T, 3d] (q, k, v along the last axis, heads of
// d/H inside each). valid[B, T] is 1 for real items and 0 for padding. Query i attends key j when
// (j <= i or !causal) and valid[j], or when j == i (a padded query still sees itself, so no row is
// empty). causal: SASRec; bidirectional: BERT4Rec. Scale 1/sqrt(d/H). Returns [B, T, d] with
// heads concatenated.
Tensor attention(const Tensor& qkv, const Tensor& valid, int heads, bool causal);
inline Tensor causal_attention(const Tensor& qkv, const Tensor& valid, int heads) {
  return attention(qkv, valid, heads, /*causal=*/true);
}
// Evaluation-only attention of S new positions appended to cached causal contexts (a decoder's KV
// cache, no gradient): qkv_new [N, S, 3d] packs the new positions' q, k, v as attention() does;
// context_qkv [R, T, 3d] and context_valid [R, T] are R contexts of T positions; new row n continues
// context context_rows[n]. Query s of row n attends the valid keys of its context and new keys
// 0..s. Returns [N, S, d]: what causal attention over the concatenated [context, new] rows gives
// at the new positions, without computing the context's queries or copying its keys per row.
Tensor attention_continued(const Tensor& qkv_new, const Tensor& context_qkv, const Tensor& context_valid,
                           const std::vector<int64_t>& context_rows, int heads);
// The same result through the gather and attention ops: each row's concatenation is built and every
// query of it computed. It is what attention_continued runs on CUDA until that has a kernel of its
// own; tests hold it to the CPU kernel.
Tensor attention_continued_by_gather(const Tensor& qkv_new, const Tensor& context_qkv, const Tensor& context_valid,
                                     const std::vector<int64_t>& context_rows, int heads);

// ---- losses and reductions ----
// Mean over rows with target >= 0 of -log softmax(logits[row])[target]. targets: i64 [N], a
// negative target is ignored. Returns a one-element tensor (0 when every target is ignored).
// A target >= V is refused for CPU targets; GPU targets are not read back to be checked (a sync per
// step), so the caller keeps them below V there (the batchers do); both losses alike.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);
// cross_entropy(scale * h[N, d] @ weight[V, d]^T, targets) without materialising the N x V
// logits: tiles of up to `chunk` items by as many rows as fit a fixed budget (8 Mi logits on the
// GPU, 1 Mi on the CPU) are folded into an online log-sum-exp, and the backward recomputes each
// tile. Memory O(N * d + V * d + one tile); equal to the two-op form up to float rounding. On the
// GPU the products follow set_matmul_precision (engine/precision.h).
Tensor linear_cross_entropy(const Tensor& h, const Tensor& weight, const Tensor& targets, float scale = 1.0f,
                            int64_t chunk = 4096);
Tensor sum(const Tensor& x);   // one-element tensor
Tensor mean(const Tensor& x);  // one-element tensor
// out[r, m] = <h[r], c[r, m]> for h [R, d] and c [R, M, d]: each row scored against candidates of
// its own (the logits of a sampled softmax). Gradients to both inputs, deterministically.
Tensor row_dot(const Tensor& h, const Tensor& c);

// ---- HSTU (reference/MODELS.md, HSTU) ----
// Columns [start, start + width) of the last axis, as a new tensor (e.g. the u block of HSTU's
// packed projection). Backward scatters the gradient into those columns, zeros elsewhere.
Tensor split_last(const Tensor& x, int64_t start, int64_t width);
// [a; b] along the leading axis: a [Ra, ...] and b [Rb, ...] with the same trailing axes give
// [Ra + Rb, ...]. A copy on any device (no kernel of its own); the backward hands each input its
// rows of the gradient. For sequences built of two parts, e.g. a decoder's keys after its encoder's.
Tensor concat_rows(const Tensor& a, const Tensor& b);
// HSTU pointwise attention over the SiLU-activated projection uvqk[B, T, 4d] (u, v, q, k along the
// last axis, as torch's split; heads of d/H inside each). Per head:
//   w_ij = SiLU(q_i.k_j + pos_bias[j - i + T - 1] + time_bias[time_buckets[b, i, j]]) / T
// where j <= i and valid[j] (0 elsewhere; no softmax and no 1/sqrt(d/H) scale), y_i = sum_j w_ij v_j.
// valid: f32 [B, T]; pos_bias: [2T-1]; time_bias: [num buckets] and time_buckets: i32 or i64
// [B, T, T] (values in [0, num buckets)), both undefined when there are no timestamps. Returns
// [B, T, d] (heads concatenated), before HSTU's layer norm and u gate. Gradients flow to the v, q,
// k blocks of uvqk (the u block gets 0 here), pos_bias and time_bias, deterministically.
// HSTU's time-bias buckets from timestamps i64 [B, T]: i32 [B, T, T] with
// [b, i, j] = bucket(ts[b, i+1] - ts[b, j]) (the last query uses its own timestamp); computed on
// the timestamps' device, so a training step reads nothing back to the host.
Tensor hstu_time_buckets(const Tensor& timestamps);
Tensor hstu_attention(const Tensor& uvqk, const Tensor& valid, const Tensor& pos_bias, const Tensor& time_bias,
                      const Tensor& time_buckets, int heads);

namespace detail {
// Autograd for views made by Tensor::reshape and Tensor::narrow_rows: the base gets the view's
// gradient placed at `offset_elements` (zeros elsewhere).
void record_view_backward(const Tensor& base, Tensor& view, int64_t offset_elements);
}  // namespace detail

}  // namespace muonrec::ops

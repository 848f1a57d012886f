#include "muonrec/models/sampled_softmax.h"

#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {
namespace {

// A negative equal to the positive is not a negative: its logit gets this added. exp() of it (after
// the max subtraction in cross_entropy) underflows to exactly 0, so the entry has zero probability
// and therefore zero gradient (to the logit, the row's h and that candidate's vector), exactly as
// if the column were absent. A finite constant rather than -inf: its sum with any realistic logit
// (|logit| << 1e29) stays finite and far below every unmasked logit, whereas -inf turns into NaN
// the moment a kernel computes inf - inf or 0 * inf (a fused backward, a bf16 path, a fully masked
// row). Column 0 is never masked, so every row keeps a finite maximum.
constexpr float kMaskedLogit = -1e30f;
// As HSTU's (torch.nn.functional.normalize with a small eps).
constexpr float kNormEps = 1e-6f;

}  // namespace

std::vector<int64_t> draw_sampled_candidates(const std::vector<int64_t>& positives, int64_t negatives,
                                             int64_t n_items, PhiloxGenerator& generator) {
  MUONREC_CHECK(negatives >= 1, "sampled softmax: negatives must be >= 1, got {}", negatives);
  MUONREC_CHECK(n_items >= 1 && n_items <= UINT32_MAX, "sampled softmax: cannot draw from {} items", n_items);
  const int64_t rows = static_cast<int64_t>(positives.size()), per_row = 1 + negatives;
  std::vector<int64_t> out(static_cast<size_t>(rows * per_row));
  // One stream for the whole batch; draw i is word i % 4 of the Philox block at counter i / 4.
  const uint64_t seed = generator.seed(), offset = generator.next_offset();
  Philox4x32 block{};
  for (int64_t r = 0; r < rows; ++r) {
    MUONREC_CHECK(positives[r] >= 1 && positives[r] <= n_items, "sampled softmax: target {} at row {} is outside 1..{}",
                  positives[r], r, n_items);
    out[r * per_row] = positives[r];
    for (int64_t k = 0; k < negatives; ++k) {
      const uint64_t i = static_cast<uint64_t>(r * negatives + k);
      if (i % 4 == 0) block = philox4x32(i / 4, offset, seed);
      // Multiply-shift maps 32 random bits onto [0, n); the bias (< n / 2^32) is far below noise.
      const uint64_t pick = (static_cast<uint64_t>(block.v[i % 4]) * static_cast<uint64_t>(n_items)) >> 32;
      out[r * per_row + 1 + k] = 1 + static_cast<int64_t>(pick);
    }
  }
  return out;
}

Tensor sampled_softmax_loss(const Tensor& h, const Tensor& item_table, const std::vector<int64_t>& candidates,
                            int64_t per_row, float temperature, bool l2_normalize) {
  NVTX_RANGE("sampled_softmax_loss");
  check_dtype(h, DType::F32, "sampled_softmax_loss", "h");
  check_dtype(item_table, DType::F32, "sampled_softmax_loss", "item_table");
  check_same_device(h, item_table, "sampled_softmax_loss");
  MUONREC_CHECK(h.rank() == 2 && item_table.rank() == 2 && h.dim(1) == item_table.dim(1),
                "sampled_softmax_loss: h must be [R, d] and item_table [rows, d], got {} and {}",
                shape_str(h.shape()), shape_str(item_table.shape()));
  const int64_t rows = h.dim(0);
  MUONREC_CHECK(per_row >= 1 && static_cast<int64_t>(candidates.size()) == rows * per_row,
                "sampled_softmax_loss: {} candidates for {} rows of {}", candidates.size(), rows, per_row);
  MUONREC_CHECK(temperature > 0.0f, "sampled_softmax_loss: temperature must be positive, got {}", temperature);
  // The mask is built on the host, where the candidates were drawn: no device read in the step.
  std::vector<float> bias(candidates.size(), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t m = 1; m < per_row; ++m)
      if (candidates[r * per_row + m] == candidates[r * per_row]) bias[r * per_row + m] = kMaskedLogit;
  const Device device = h.device();
  Tensor vectors = ops::embedding(item_table, Tensor::from_i64(candidates, {rows, per_row}, device));  // [R, M, d]
  Tensor query = h;
  if (l2_normalize) {
    // Only the gathered rows are normalised: R * M vectors per step rather than the whole table.
    query = ops::l2_normalize(h, kNormEps);
    vectors = ops::l2_normalize(vectors, kNormEps);
  }
  Tensor logits = ops::row_dot(query, vectors);
  if (temperature != 1.0f) logits = ops::scale(logits, 1.0f / temperature);
  logits = ops::add(logits, Tensor::from_f32(bias, {rows, per_row}, device));
  return ops::cross_entropy(logits, Tensor::zeros({rows}, DType::I64, device));  // class 0: the positive
}

Tensor sampled_softmax_scores(const Tensor& h, const Tensor& item_table, int64_t n_items, float temperature,
                              bool l2_normalize) {
  NVTX_RANGE("sampled_softmax_scores");
  check_same_device(h, item_table, "sampled_softmax_scores");
  MUONREC_CHECK(h.rank() == 2 && item_table.rank() == 2 && h.dim(1) == item_table.dim(1) &&
                    item_table.dim(0) > n_items,
                "sampled_softmax_scores: h must be [N, d] and item_table [> {}, d], got {} and {}", n_items,
                shape_str(h.shape()), shape_str(item_table.shape()));
  MUONREC_CHECK(temperature > 0.0f, "sampled_softmax_scores: temperature must be positive, got {}", temperature);
  Tensor query = h, items = item_table.narrow_rows(1, n_items);
  if (l2_normalize) {
    query = ops::l2_normalize(h, kNormEps);
    items = ops::l2_normalize(items, kNormEps);
  }
  // The temperature scales the [n_items, d] item side, not the [N, n_items] logits (as HSTU's
  // scoring matrix does): the same product up to rounding, at a fraction of the traffic.
  if (temperature != 1.0f) items = ops::scale(items, 1.0f / temperature);
  return ops::linear(query, items);
}

}  // namespace muonrec

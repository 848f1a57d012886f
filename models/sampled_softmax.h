// Sampled softmax (the HSTU paper's training loss): each target row is scored against its positive
// and K negatives drawn uniformly from the catalogue instead of every item, so a step costs
// O(R * K * d) instead of O(R * n * d). Composed from ops: embedding (candidate vectors), optional
// l2_normalize, row_dot (logits), scale (temperature), add (masking), cross_entropy (class 0).
#pragma once

#include <cstdint>
#include <vector>

#include "muonrec/engine/rng.h"
#include "muonrec/engine/tensor.h"

namespace muonrec {

// Candidates [R, 1 + negatives] (row-major) for the target items `positives` (1..n_items):
// column 0 is the positive, columns 1.. are uniform draws from 1..n_items. The draws are a pure
// function of (generator seed, one stream taken from `generator`, element index): reproducible
// from the seed, and a resumed run draws what an uninterrupted one would. A draw may equal the
// positive; sampled_softmax_loss masks it.
std::vector<int64_t> draw_sampled_candidates(const std::vector<int64_t>& positives, int64_t negatives,
                                             int64_t n_items, PhiloxGenerator& generator);

// Mean over rows of -log softmax(logits[r])[0], with logits[r, m] = <h_r, e_{c[r, m]}> / temperature
// (h and e L2-normalised first when l2_normalize), e the rows of item_table [rows, d] and c the
// host candidates [R, per_row] (column 0 the positive). Columns m >= 1 equal to column 0 are masked
// out: they contribute neither to the loss nor to any gradient. h: f32 [R, d] on the table's device.
Tensor sampled_softmax_loss(const Tensor& h, const Tensor& item_table, const std::vector<int64_t>& candidates,
                            int64_t per_row, float temperature, bool l2_normalize);

// The logits that loss trains, against every item: [N, n_items], column c for row c + 1 of
// item_table (rows 1..n_items). What a model trained with it is evaluated and serves by: with
// l2_normalize the items' norms must not rank them, as they never entered the loss.
Tensor sampled_softmax_scores(const Tensor& h, const Tensor& item_table, int64_t n_items, float temperature,
                              bool l2_normalize);

}  // namespace muonrec

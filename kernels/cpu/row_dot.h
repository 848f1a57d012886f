// CPU reference: one dot product per (row, candidate), the logits of a sampled softmax. h is
// [rows, dim] (one query per row), c is [rows, per_row, dim] (that row's candidates), out is
// [rows, per_row].
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[r, m] = <h[r], c[r, m]>
void row_dot_forward(const float* h, const float* c, float* out, int64_t rows, int64_t per_row, int64_t dim);
// dh[r] = sum over m (increasing) of dout[r, m] c[r, m]; dc[r, m] = dout[r, m] h[r]. Either output
// may be null when that input needs no gradient; those given are written in full.
void row_dot_backward(const float* h, const float* c, const float* dout, float* dh, float* dc, int64_t rows,
                      int64_t per_row, int64_t dim);

}  // namespace muonrec::kernels::cpu

// CPU reference: layer norm and L2 normalization over the last axis (rows x cols).
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// y = (x - mean) * rstd * weight + bias; weight and bias may be null (no affine). Saves mean and
// rstd per row for the backward.
void layer_norm_forward(const float* x, const float* weight, const float* bias, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t cols, float eps);
// Writes dx, and (when non-null) dweight and dbias summed over rows.
void layer_norm_backward(const float* x, const float* weight, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dweight, float* dbias, int64_t rows, int64_t cols);

// y = x / max(||x||, eps); saves the row norms.
void l2_normalize_forward(const float* x, float* y, float* norm, int64_t rows, int64_t cols, float eps);
void l2_normalize_backward(const float* x, const float* norm, const float* dy, float* dx, int64_t rows, int64_t cols,
                           float eps);

}  // namespace muonrec::kernels::cpu

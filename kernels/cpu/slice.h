// CPU reference: a block of columns of the last axis. x is viewed as [rows, cols]; the block is
// columns [start, start + width), out is [rows, width].
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[r, c] = x[r, start + c]
void split_last_forward(const float* x, float* out, int64_t rows, int64_t cols, int64_t start, int64_t width);
// Writes all of dx [rows, cols]: dout in the block's columns, 0 elsewhere.
void split_last_backward(const float* dout, float* dx, int64_t rows, int64_t cols, int64_t start, int64_t width);

}  // namespace muonrec::kernels::cpu

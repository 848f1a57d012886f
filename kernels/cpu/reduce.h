// CPU reference: reductions and broadcasts.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// out[0] = sum of x (accumulated in double: a reference, and order-fixed).
void sum_all(const float* x, float* out, int64_t n);
// out[j] = sum over i < outer of x[i * inner + j]  (the gradient of a broadcast over leading axes).
void sum_leading(const float* x, float* out, int64_t outer, int64_t inner);
// out[i] = scalar[0] * factor  (scalar is a one-element array, e.g. an upstream gradient).
void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n);

}  // namespace muonrec::kernels::cpu

// CPU reference: pointwise activations and their derivatives.
#pragma once

#include <cstdint>

namespace muonrec::kernels {
enum class Activation { GELU, SILU, RELU };
}

namespace muonrec::kernels::cpu {

void activation_forward(Activation kind, const float* x, float* y, int64_t n);
// dx = dy * f'(x)
void activation_backward(Activation kind, const float* x, const float* dy, float* dx, int64_t n);

}  // namespace muonrec::kernels::cpu

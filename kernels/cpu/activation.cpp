#include "muonrec/kernels/cpu/activation.h"

#include <algorithm>

#include "muonrec/kernels/cpu/parallel_blocks.h"
#include "muonrec/kernels/cpu/vector_functions.h"

namespace muonrec::kernels::cpu {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
// Each block's exp or erf runs as one vectorised call on a buffer on the stack.
constexpr int64_t kBlock = kElementBlock;

}  // namespace

void activation_forward(Activation kind, const float* x, float* y, int64_t n) {
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    const float* xb = x + first;
    float* yb = y + first;
    float buf[kBlock] = {};  // zeroed, so no lane is ever read uninitialised; cheap beside the exp or erf
    switch (kind) {
      case Activation::GELU:  // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, torch's exact form
        for (int64_t i = 0; i < count; ++i) buf[i] = xb[i] * kInvSqrt2;
        erf_array(buf, buf, count);
        for (int64_t i = 0; i < count; ++i) yb[i] = 0.5f * xb[i] * (1.0f + buf[i]);
        break;
      case Activation::SILU:  // x sigmoid(x)
        for (int64_t i = 0; i < count; ++i) buf[i] = -xb[i];
        exp_array(buf, buf, count);
        for (int64_t i = 0; i < count; ++i) yb[i] = xb[i] / (1.0f + buf[i]);
        break;
      case Activation::RELU:
        for (int64_t i = 0; i < count; ++i) yb[i] = xb[i] > 0.0f ? xb[i] : 0.0f;
        break;
    }
  });
}

void activation_backward(Activation kind, const float* x, const float* dy, float* dx, int64_t n) {
  for_each_element_block(n, [&](int64_t first, int64_t count) {
    const float* xb = x + first;
    const float* dyb = dy + first;
    float* dxb = dx + first;
    float buf[kBlock] = {}, gauss[kBlock] = {};
    switch (kind) {
      case Activation::GELU:  // Phi(x) + x phi(x)
        for (int64_t i = 0; i < count; ++i) {
          buf[i] = xb[i] * kInvSqrt2;
          gauss[i] = -0.5f * xb[i] * xb[i];
        }
        erf_array(buf, buf, count);
        exp_array(gauss, gauss, count);
        for (int64_t i = 0; i < count; ++i)
          dxb[i] = dyb[i] * (0.5f * (1.0f + buf[i]) + xb[i] * kInvSqrt2Pi * gauss[i]);
        break;
      case Activation::SILU:  // s (1 + x (1 - s)), s = sigmoid(x)
        for (int64_t i = 0; i < count; ++i) buf[i] = -xb[i];
        exp_array(buf, buf, count);
        for (int64_t i = 0; i < count; ++i) {
          const float s = 1.0f / (1.0f + buf[i]);
          dxb[i] = dyb[i] * (s * (1.0f + xb[i] * (1.0f - s)));
        }
        break;
      case Activation::RELU:
        for (int64_t i = 0; i < count; ++i) dxb[i] = dyb[i] * (xb[i] > 0.0f ? 1.0f : 0.0f);
        break;
    }
  });
}

}  // namespace muonrec::kernels::cpu

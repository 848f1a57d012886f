#include "kernels/cpu/activation.h"

#include <cmath>

namespace muonrec::kernels::cpu {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

float forward_one(Activation kind, float x) {
  switch (kind) {
    case Activation::GELU: return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
    case Activation::SILU: return x / (1.0f + std::exp(-x));
    case Activation::RELU: return x > 0.0f ? x : 0.0f;
  }
  return 0.0f;
}

float derivative(Activation kind, float x) {
  switch (kind) {
    case Activation::GELU:  // Phi(x) + x * phi(x)
      return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
    case Activation::SILU: {
      float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f + x * (1.0f - s));
    }
    case Activation::RELU: return x > 0.0f ? 1.0f : 0.0f;
  }
  return 0.0f;
}

}  // namespace

void activation_forward(Activation kind, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = forward_one(kind, x[i]);
}

void activation_backward(Activation kind, const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * derivative(kind, x[i]);
}

}  // namespace muonrec::kernels::cpu

#include "muonrec/kernels/cuda/activation.h"

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// The same float formulas as the CPU reference; erff/expf differ from glibc by at most a couple of
// ulps, well inside the 1e-5 parity tolerance.
template <Activation kind>
__device__ __forceinline__ float forward_one(float x) {
  if constexpr (kind == Activation::GELU) return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
  if constexpr (kind == Activation::SILU) return x / (1.0f + expf(-x));
  if constexpr (kind == Activation::RELU) return x > 0.0f ? x : 0.0f;
  return 0.0f;
}

template <Activation kind>
__device__ __forceinline__ float derivative(float x) {
  if constexpr (kind == Activation::GELU)  // Phi(x) + x * phi(x)
    return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
  if constexpr (kind == Activation::SILU) {
    float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
  }
  if constexpr (kind == Activation::RELU) return x > 0.0f ? 1.0f : 0.0f;
  return 0.0f;
}

template <Activation kind>
__global__ void activation_forward_kernel(const float* x, float* y, int64_t n) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = forward_one<kind>(x[i]);
}

template <Activation kind>
__global__ void activation_backward_kernel(const float* x, const float* dy, float* dx, int64_t n) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = dy[i] * derivative<kind>(x[i]);
}

template <Activation kind>
void launch_forward(const float* x, float* y, int64_t n, cudaStream_t stream) {
  activation_forward_kernel<kind><<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, y, n);
  CUDA_LAUNCH_CHECK();
}

template <Activation kind>
void launch_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream) {
  activation_backward_kernel<kind><<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(x, dy, dx, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void activation_forward(Activation kind, const float* x, float* y, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("activation_forward");
  if (n <= 0) return;
  switch (kind) {
    case Activation::GELU: return launch_forward<Activation::GELU>(x, y, n, stream);
    case Activation::SILU: return launch_forward<Activation::SILU>(x, y, n, stream);
    case Activation::RELU: return launch_forward<Activation::RELU>(x, y, n, stream);
  }
  MUONREC_FAIL("activation_forward: unknown activation {}", static_cast<int>(kind));
}

void activation_backward(Activation kind, const float* x, const float* dy, float* dx, int64_t n,
                         cudaStream_t stream) {
  NVTX_RANGE("activation_backward");
  if (n <= 0) return;
  switch (kind) {
    case Activation::GELU: return launch_backward<Activation::GELU>(x, dy, dx, n, stream);
    case Activation::SILU: return launch_backward<Activation::SILU>(x, dy, dx, n, stream);
    case Activation::RELU: return launch_backward<Activation::RELU>(x, dy, dx, n, stream);
  }
  MUONREC_FAIL("activation_backward: unknown activation {}", static_cast<int>(kind));
}

}  // namespace muonrec::kernels::cuda

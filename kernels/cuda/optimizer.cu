#include "kernels/cuda/optimizer.h"

#include <cmath>

#include "engine/cuda_check.h"
#include "engine/nvtx.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;

// Every product and sum is rounded separately (__fmul_rn/__fadd_rn forbid fused multiply-adds) and
// the scalar factors come from the host, so the update is the reference's float arithmetic exactly.
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, int64_t n, float decay,
                             float one_minus_beta1, float beta2, float one_minus_beta2, float eps, float step_size,
                             float bc2_sqrt) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = grad[i];
  float p = __fmul_rn(param[i], decay);
  // torch's lerp form m += (1 - b1) (g - m), for bitwise-close moments.
  const float mi = __fadd_rn(m[i], __fmul_rn(one_minus_beta1, __fsub_rn(g, m[i])));
  const float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(one_minus_beta2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
  p = __fsub_rn(p, __fdiv_rn(__fmul_rn(step_size, mi), denom));
  m[i] = mi;
  v[i] = vi;
  param[i] = p;
}

}  // namespace

void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step, cudaStream_t stream) {
  NVTX_RANGE("adamw_step");
  if (n <= 0) return;
  // Bias corrections in double on the host, as torch (and the reference) compute them.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = 1.0f - lr * weight_decay;
  adamw_kernel<<<ceil_div(static_cast<size_t>(n), kBlock), kBlock, 0, stream>>>(
      param, grad, m, v, n, decay, 1.0f - beta1, beta2, 1.0f - beta2, eps, step_size, bc2_sqrt);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

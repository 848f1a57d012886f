// AdamW's per-element update, shared by the CPU reference and the CUDA kernel so both compute the
// same float operations in the same order. Every product and sum is rounded on its own (no fused
// multiply-add), which makes the GPU result bitwise equal to the CPU one.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "muonrec/engine/rng.h"
#include "muonrec/kernels/tensor_chunk.h"

namespace muonrec::kernels {

// One parameter tensor of a multi-tensor AdamW step. param_bf16 (optional) receives a bf16 copy
// of the updated parameter, rounded stochastically.
struct AdamWTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  uint16_t* param_bf16;
  int64_t numel;
};

// Hyperparameters and the step counter. On the GPU this lives in device memory, written by the
// host before each step, so a captured graph reads the current values.
struct AdamWHyper {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  float grad_scale;  // gradients are multiplied by this (AdamW::set_grad_scale); 1 when unset
  int64_t step;      // t, counted from 1
  uint64_t seed;     // stochastic rounding of the bf16 copy
};

// Step-dependent factors, computed once per step (once per block on the GPU) in double, as torch does.
struct AdamWStepFactors {
  float decay;      // 1 - lr * weight_decay
  float step_size;  // lr / (1 - beta1^t)
  float bc2_sqrt;   // sqrt(1 - beta2^t)
};

// The device pass uses the round-to-nearest intrinsics; the host pass plain (unfused) arithmetic.
#if defined(__CUDA_ARCH__)
#define MUONREC_RN_MUL(a, b) __fmul_rn(a, b)
#define MUONREC_RN_ADD(a, b) __fadd_rn(a, b)
#define MUONREC_RN_SUB(a, b) __fsub_rn(a, b)
#define MUONREC_RN_DIV(a, b) __fdiv_rn(a, b)
#define MUONREC_RN_SQRT(a) __fsqrt_rn(a)
#else
#define MUONREC_RN_MUL(a, b) ((a) * (b))
#define MUONREC_RN_ADD(a, b) ((a) + (b))
#define MUONREC_RN_SUB(a, b) ((a) - (b))
#define MUONREC_RN_DIV(a, b) ((a) / (b))
#define MUONREC_RN_SQRT(a) sqrtf(a)
#endif

MUONREC_HOST_DEVICE AdamWStepFactors adamw_step_factors(const AdamWHyper& h) {
  const double bc1 = 1.0 - pow(static_cast<double>(h.beta1), static_cast<double>(h.step));
  const double bc2 = 1.0 - pow(static_cast<double>(h.beta2), static_cast<double>(h.step));
  return AdamWStepFactors{MUONREC_RN_SUB(1.0f, MUONREC_RN_MUL(h.lr, h.weight_decay)), static_cast<float>(h.lr / bc1),
                          static_cast<float>(sqrt(bc2))};
}

// One element's new parameter and moments.
struct AdamWElement {
  float param;
  float exp_avg;
  float exp_avg_sq;
};

// torch.optim.AdamW: p *= 1 - lr wd; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps). On values, so that the scalar and the vectorised
// GPU loops and the CPU reference all run this one sequence of roundings.
MUONREC_HOST_DEVICE AdamWElement adamw_update_values(float param, float grad, float exp_avg, float exp_avg_sq,
                                                     const AdamWHyper& h, const AdamWStepFactors& f) {
  const float g = MUONREC_RN_MUL(grad, h.grad_scale);
  const float m = MUONREC_RN_ADD(exp_avg, MUONREC_RN_MUL(1.0f - h.beta1, MUONREC_RN_SUB(g, exp_avg)));
  const float v =
      MUONREC_RN_ADD(MUONREC_RN_MUL(h.beta2, exp_avg_sq), MUONREC_RN_MUL(MUONREC_RN_MUL(1.0f - h.beta2, g), g));
  const float denom = MUONREC_RN_ADD(MUONREC_RN_DIV(MUONREC_RN_SQRT(v), f.bc2_sqrt), h.eps);
  const float p = MUONREC_RN_SUB(MUONREC_RN_MUL(param, f.decay), MUONREC_RN_DIV(MUONREC_RN_MUL(f.step_size, m), denom));
  return AdamWElement{p, m, v};
}

// The bf16 copy of element i's updated parameter, rounded stochastically: add 16 random bits below
// the bf16 mantissa, then truncate. Unbiased in expectation, so small updates are not lost in the
// low-precision copy. The noise depends on (i, step, seed) only, never on which thread ran it.
MUONREC_HOST_DEVICE uint16_t adamw_bf16_copy(float param, int64_t i, const AdamWHyper& h) {
  uint32_t bits;
  memcpy(&bits, &param, sizeof bits);
  const uint32_t noise = philox4x32(static_cast<uint64_t>(i), static_cast<uint64_t>(h.step), h.seed).v[0] & 0xFFFFu;
  const bool finite = (bits & 0x7f800000u) != 0x7f800000u;
  return static_cast<uint16_t>((finite ? bits + noise : bits) >> 16);
}

MUONREC_HOST_DEVICE void adamw_update_element(const AdamWTensor& t, int64_t i, const AdamWHyper& h,
                                              const AdamWStepFactors& f) {
  const AdamWElement e = adamw_update_values(t.param[i], t.grad[i], t.exp_avg[i], t.exp_avg_sq[i], h, f);
  t.exp_avg[i] = e.exp_avg;
  t.exp_avg_sq[i] = e.exp_avg_sq;
  t.param[i] = e.param;
  if (t.param_bf16) t.param_bf16[i] = adamw_bf16_copy(e.param, i, h);
}

}  // namespace muonrec::kernels

// AdamW's per-element update, shared by the CPU reference and the CUDA kernel so both compute the
// same float operations in the same order. Every product and sum is rounded on its own (no fused
// multiply-add), which makes the GPU result bitwise equal to the CPU one.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/rng.h"

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

// A contiguous range of one tensor: the unit of work of one CUDA block.
struct TensorChunk {
  int32_t tensor;
  int64_t begin;
  int64_t end;
};

// Hyperparameters and the step counter. On the GPU this lives in device memory, written by the
// host before each step, so a captured graph reads the current values.
struct AdamWHyper {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  float grad_scale;  // gradients are multiplied by this (global-norm clipping); 1 when off
  int64_t step;      // t, counted from 1
  uint64_t seed;     // stochastic rounding of the bf16 copy
};

// Step-dependent factors, computed once per step (per block on the GPU) in double, as torch does.
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
  return AdamWStepFactors{1.0f - h.lr * h.weight_decay, static_cast<float>(h.lr / bc1),
                          static_cast<float>(sqrt(bc2))};
}

// torch.optim.AdamW: p *= 1 - lr wd; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
MUONREC_HOST_DEVICE void adamw_update_element(const AdamWTensor& t, int64_t i, const AdamWHyper& h,
                                              const AdamWStepFactors& f) {
  const float g = MUONREC_RN_MUL(t.grad[i], h.grad_scale);
  const float m = MUONREC_RN_ADD(t.exp_avg[i], MUONREC_RN_MUL(1.0f - h.beta1, MUONREC_RN_SUB(g, t.exp_avg[i])));
  const float v = MUONREC_RN_ADD(MUONREC_RN_MUL(h.beta2, t.exp_avg_sq[i]), MUONREC_RN_MUL(MUONREC_RN_MUL(1.0f - h.beta2, g), g));
  const float denom = MUONREC_RN_ADD(MUONREC_RN_DIV(MUONREC_RN_SQRT(v), f.bc2_sqrt), h.eps);
  const float p = MUONREC_RN_SUB(MUONREC_RN_MUL(t.param[i], f.decay), MUONREC_RN_DIV(MUONREC_RN_MUL(f.step_size, m), denom));
  t.exp_avg[i] = m;
  t.exp_avg_sq[i] = v;
  t.param[i] = p;
  if (t.param_bf16) {
    // Stochastic rounding: add 16 random bits below the bf16 mantissa, then truncate. Unbiased in
    // expectation, so small updates are not lost in the low-precision copy.
    uint32_t bits;
    memcpy(&bits, &p, sizeof bits);
    const uint32_t noise = philox4x32(static_cast<uint64_t>(i), static_cast<uint64_t>(h.step), h.seed).v[0] & 0xFFFFu;
    const bool finite = (bits & 0x7f800000u) != 0x7f800000u;
    t.param_bf16[i] = static_cast<uint16_t>((finite ? bits + noise : bits) >> 16);
  }
}

}  // namespace muonrec::kernels

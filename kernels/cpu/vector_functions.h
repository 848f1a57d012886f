// exp and erf over arrays for the CPU kernels, written so that the compiler vectorises them: libm's
// expf and erff are scalar calls (erff itself calls expf beyond |x| 0.84), and they took half of a
// TIGER decoding step in GELU and a tenth of a SASRec training step in the attention softmax.
// Eight lanes with FMA where the CPU has AVX2 (checked at run time, so the library stays portable);
// the same operations one at a time elsewhere. Every multiply-add is an explicit fma and the file is
// built without contraction, so both paths give the same bits on every machine.
//
// Accuracy, against the double-precision functions (tested on dense grids): exp within 1 ulp (0.92
// measured), with subnormal results down to exp(-103) and exact 0 below; erf within 1.5 ulp (1.10
// measured), +-1 beyond |x| 3.92 where erf rounds to 1. NaN propagates; exp(+-inf) = inf, 0; erf(+-inf) = +-1.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// y[i] = exp(x[i]); y is x or does not overlap it.
void exp_array(const float* x, float* y, int64_t n);
// y[i] = erf(x[i]); y is x or does not overlap it.
void erf_array(const float* x, float* y, int64_t n);

}  // namespace muonrec::kernels::cpu

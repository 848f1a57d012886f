// Newton-Schulz orthogonalization (Muon's "zeroth power"): X <- a X + (b A + c A^2) X with
// A = X X^T, after scaling X to unit Frobenius norm; each iteration may use its own (a, b, c).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "muonrec/engine/tensor.h"

namespace muonrec {

enum class NsPrecision {
  BF16,  // products on bf16 values with fp32 accumulation, as torch.optim.Muon on the GPU
  FP32,  // fp32 throughout: for exactness studies against a float64 replica
};

struct NewtonSchulzOptions {
  std::vector<std::array<float, 3>> coefficients;  // one (a, b, c) per iteration
  float eps = 1e-7f;                               // X /= max(norm_factor * ||X||_F, eps)
  float norm_factor = 1.0f;
  NsPrecision precision = NsPrecision::BF16;
};

// torch.optim.Muon's default: the quintic (3.4445, -4.7750, 2.0315) `steps` times.
NewtonSchulzOptions quintic_newton_schulz(int steps = 5);
// Polar Express (Amsel et al. 2025), the 5-iteration table computed with safety factor 2e-2 and
// cushion 2; its published use scales by 1.02 ||X||_F, which norm_factor reproduces.
NewtonSchulzOptions polar_express_newton_schulz();
// "quintic" or "polar-express"; throws listing both.
NewtonSchulzOptions newton_schulz_by_name(const std::string& name);

// Replaces the f32 matrix u [rows, cols] (any device) by its orthogonalization. Wide and square
// matrices iterate on X = u; tall ones on X = u^T without copying it, using A = u^T u and
// u <- a u + u B (B is symmetric).
void newton_schulz(Tensor& u, const NewtonSchulzOptions& options);

}  // namespace muonrec

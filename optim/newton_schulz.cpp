#include "muonrec/optim/newton_schulz.h"

#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/precision.h"
#include "muonrec/kernels/cpu/muon.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/kernels/cuda/muon.h"
#endif

namespace muonrec {

NewtonSchulzOptions quintic_newton_schulz(int steps) {
  NewtonSchulzOptions o;
  o.coefficients.assign(static_cast<size_t>(steps), {3.4445f, -4.7750f, 2.0315f});
  return o;
}

NewtonSchulzOptions polar_express_newton_schulz() {
  NewtonSchulzOptions o;
  o.coefficients = {{8.156554524902461f, -22.48329292557795f, 15.878769915207462f},
                    {4.042929935166739f, -2.808917465908714f, 0.5000178451051316f},
                    {3.8916678022926607f, -2.772484153217685f, 0.5060648178503393f},
                    {3.285753657755655f, -2.3681294933425376f, 0.46449024233003106f},
                    {2.3465413258596377f, -1.7097828382687081f, 0.42323551169305323f}};
  o.norm_factor = 1.02f;
  return o;
}

NewtonSchulzOptions newton_schulz_by_name(const std::string& name) {
  if (name == "quintic") return quintic_newton_schulz();
  if (name == "polar-express") return polar_express_newton_schulz();
  MUONREC_FAIL("unknown Newton-Schulz table '{}' (available: quintic, polar-express)", name);
}

void newton_schulz(Tensor& u, const NewtonSchulzOptions& options) {
  NVTX_RANGE("muon_newton_schulz");
  // options.precision says how the products round: the process-wide --matmul-precision (TF32 or
  // BF16 tensor cores on the GPU) must not round them further.
  const MatmulPrecisionGuard exact_products(MatmulPrecision::FP32);
  check_dtype(u, DType::F32, "newton_schulz", "u");
  MUONREC_CHECK(u.rank() == 2, "newton_schulz: expected a matrix, got {}", shape_str(u.shape()));
  const int64_t rows = u.dim(0), cols = u.dim(1), n = u.numel();
  const bool tall = rows > cols;
  const int64_t side = tall ? cols : rows;  // the Gram matrix is side x side
  const Device device = u.device();
  const bool bf16 = options.precision == NsPrecision::BF16;
  auto round = [&](Tensor& t) {
    if (bf16) MUONREC_DISPATCH(device, round_to_bf16, t.data<float>(), t.numel());
  };

  float* x = u.data<float>();
  round(u);
  Tensor sum_sq = Tensor::empty({1}, DType::F32, device);
  MUONREC_DISPATCH(device, sum_squares, x, sum_sq.data<float>(), n);
  MUONREC_DISPATCH(device, scale_by_inverse_norm, x, sum_sq.data<float>(), options.norm_factor, options.eps, bf16, n);
  round(u);

  Tensor gram = Tensor::empty({side, side}, DType::F32, device);
  Tensor poly = Tensor::empty({side, side}, DType::F32, device);
  Tensor next = Tensor::empty(u.shape(), DType::F32, device);
  for (const auto& [a, b, c] : options.coefficients) {
    // A = X X^T (wide: u u^T; tall: u^T u).
    MUONREC_DISPATCH(device, gemm, tall, !tall, side, side, tall ? rows : cols, 1.0f, x, x, 0.0f,
                     gram.data<float>());
    round(gram);
    // B = b A + c A A
    poly.copy_from(gram);
    MUONREC_DISPATCH(device, gemm, false, false, side, side, side, c, gram.data<float>(), gram.data<float>(), b,
                     poly.data<float>());
    round(poly);
    // X = a X + B X (wide), u = a u + u B (tall).
    next.copy_from(u);
    if (tall) {
      MUONREC_DISPATCH(device, gemm, false, false, rows, cols, cols, 1.0f, x, poly.data<float>(), a,
                       next.data<float>());
    } else {
      MUONREC_DISPATCH(device, gemm, false, false, rows, cols, rows, 1.0f, poly.data<float>(), x, a,
                       next.data<float>());
    }
    round(next);
    u.copy_from(next);
  }
}

}  // namespace muonrec

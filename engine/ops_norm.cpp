// Layer norm and L2 normalization over the last axis.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct LayerNormNode : Node {
  Tensor x, weight, bias, mean, rstd;
  const char* name() const override { return "layer_norm"; }
  void backward(const Tensor& g) override {
    const int64_t cols = x.dim(-1);
    Tensor dx = empty_like(x);
    Tensor dw = weight.defined() && weight.requires_grad() ? empty_like(weight) : Tensor();
    Tensor db = bias.defined() && bias.requires_grad() ? empty_like(bias) : Tensor();
    MUONREC_DISPATCH(x.device(), layer_norm_backward, f32(x), weight.defined() ? f32(weight) : nullptr, f32(mean),
                     f32(rstd), f32(g), f32_mut(dx), dw.defined() ? f32_mut(dw) : nullptr,
                     db.defined() ? f32_mut(db) : nullptr, rows_of(x), cols);
    accumulate_grad(x, dx);
    if (dw.defined()) accumulate_grad(weight, dw);
    if (db.defined()) accumulate_grad(bias, db);
  }
};

struct L2NormalizeNode : Node {
  Tensor x, norm;
  float eps;
  const char* name() const override { return "l2_normalize"; }
  void backward(const Tensor& g) override {
    Tensor dx = empty_like(x);
    MUONREC_DISPATCH(x.device(), l2_normalize_backward, f32(x), f32(norm), f32(g), f32_mut(dx), rows_of(x), x.dim(-1),
                     eps);
    accumulate_grad(x, dx);
  }
};

void check_affine(const Tensor& x, const Tensor& p, const char* arg) {
  if (!p.defined()) return;
  check_dtype(p, DType::F32, "layer_norm", arg);
  check_same_device(x, p, "layer_norm");
  MUONREC_CHECK(p.shape() == Shape{x.dim(-1)}, "layer_norm: {} has shape {}, expected [{}]", arg,
                shape_str(p.shape()), x.dim(-1));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  NVTX_RANGE("layer_norm");
  check_dtype(x, DType::F32, "layer_norm", "x");
  MUONREC_CHECK(x.rank() >= 1 && x.dim(-1) > 0, "layer_norm: input shape {} has no last axis", shape_str(x.shape()));
  check_affine(x, weight, "weight");
  check_affine(x, bias, "bias");
  const int64_t rows = rows_of(x), cols = x.dim(-1);
  Tensor y = empty_like(x);
  Tensor mean = Tensor::empty({rows}, DType::F32, x.device());
  Tensor rstd = Tensor::empty({rows}, DType::F32, x.device());
  MUONREC_DISPATCH(x.device(), layer_norm_forward, f32(x), weight.defined() ? f32(weight) : nullptr,
                   bias.defined() ? f32(bias) : nullptr, f32_mut(y), f32_mut(mean), f32_mut(rstd), rows, cols, eps);
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<LayerNormNode>();
    node->x = x;
    node->weight = weight;
    node->bias = bias;
    node->mean = mean;
    node->rstd = rstd;
    record_node(y, node);
  }
  return y;
}

Tensor l2_normalize(const Tensor& x, float eps) {
  NVTX_RANGE("l2_normalize");
  check_dtype(x, DType::F32, "l2_normalize", "x");
  MUONREC_CHECK(x.rank() >= 1 && x.dim(-1) > 0, "l2_normalize: input shape {} has no last axis", shape_str(x.shape()));
  Tensor y = empty_like(x);
  Tensor norm = Tensor::empty({rows_of(x)}, DType::F32, x.device());
  MUONREC_DISPATCH(x.device(), l2_normalize_forward, f32(x), f32_mut(y), f32_mut(norm), rows_of(x), x.dim(-1), eps);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<L2NormalizeNode>();
    node->x = x;
    node->norm = norm;
    node->eps = eps;
    record_node(y, node);
  }
  return y;
}

}  // namespace muonrec::ops

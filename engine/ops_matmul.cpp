// Matrix products: linear (torch.nn.Linear layout) and plain matmul, both on one row-major GEMM.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct LinearNode : Node {
  Tensor x, weight, bias;
  const char* name() const override { return "linear"; }
  void backward(const Tensor& g) override {
    const int64_t out_features = weight.dim(0), in_features = weight.dim(1), m = rows_of(x);
    const Device device = g.device();
    if (x.requires_grad()) {  // dx[m, in] = g[m, out] @ W[out, in]
      Tensor dx = empty_like(x);
      MUONREC_DISPATCH(device, gemm, false, false, m, in_features, out_features, 1.0f, f32(g), f32(weight), 0.0f,
                       f32_mut(dx));
      accumulate_grad(x, dx);
    }
    if (weight.requires_grad()) {  // dW[out, in] = g^T @ x
      Tensor dw = empty_like(weight);
      MUONREC_DISPATCH(device, gemm, true, false, out_features, in_features, m, 1.0f, f32(g), f32(x), 0.0f,
                       f32_mut(dw));
      accumulate_grad(weight, dw);
    }
    if (bias.defined() && bias.requires_grad()) {
      Tensor db = empty_like(bias);
      MUONREC_DISPATCH(device, sum_leading, f32(g), f32_mut(db), m, out_features);
      accumulate_grad(bias, db);
    }
  }
};

struct MatmulNode : Node {
  Tensor a, b;
  const char* name() const override { return "matmul"; }
  void backward(const Tensor& g) override {
    const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
    if (a.requires_grad()) {  // da[m, k] = g[m, n] @ b[k, n]^T
      Tensor da = empty_like(a);
      MUONREC_DISPATCH(g.device(), gemm, false, true, m, k, n, 1.0f, f32(g), f32(b), 0.0f, f32_mut(da));
      accumulate_grad(a, da);
    }
    if (b.requires_grad()) {  // db[k, n] = a[m, k]^T @ g[m, n]
      Tensor db = empty_like(b);
      MUONREC_DISPATCH(g.device(), gemm, true, false, k, n, m, 1.0f, f32(a), f32(g), 0.0f, f32_mut(db));
      accumulate_grad(b, db);
    }
  }
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  NVTX_RANGE("linear");
  check_dtype(x, DType::F32, "linear", "x");
  check_dtype(weight, DType::F32, "linear", "weight");
  check_same_device(x, weight, "linear");
  MUONREC_CHECK(weight.rank() == 2 && x.rank() >= 1 && x.dim(-1) == weight.dim(1),
                "linear: input {} does not match weight {} (weight is [out, in])", shape_str(x.shape()),
                shape_str(weight.shape()));
  const int64_t out_features = weight.dim(0), in_features = weight.dim(1), m = rows_of(x);
  if (bias.defined()) {
    check_dtype(bias, DType::F32, "linear", "bias");
    check_same_device(x, bias, "linear");
    MUONREC_CHECK(bias.shape() == Shape{out_features}, "linear: bias {} for {} outputs", shape_str(bias.shape()),
                  out_features);
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor y = Tensor::empty(out_shape, DType::F32, x.device());
  MUONREC_DISPATCH(x.device(), gemm, false, true, m, out_features, in_features, 1.0f, f32(x), f32(weight), 0.0f,
                   f32_mut(y));
  if (bias.defined()) MUONREC_DISPATCH(x.device(), add_forward, f32(y), f32(bias), f32_mut(y), y.numel(), out_features);
  if (any_requires_grad({&x, &weight, &bias})) {
    auto node = std::make_shared<LinearNode>();
    node->x = x;
    node->weight = weight;
    node->bias = bias;
    record_node(y, node);
  }
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  NVTX_RANGE("matmul");
  check_dtype(a, DType::F32, "matmul", "a");
  check_dtype(b, DType::F32, "matmul", "b");
  check_same_device(a, b, "matmul");
  MUONREC_CHECK(a.rank() == 2 && b.rank() == 2 && a.dim(1) == b.dim(0), "matmul: shapes {} and {} do not chain",
                shape_str(a.shape()), shape_str(b.shape()));
  Tensor y = Tensor::empty({a.dim(0), b.dim(1)}, DType::F32, a.device());
  MUONREC_DISPATCH(a.device(), gemm, false, false, a.dim(0), b.dim(1), a.dim(1), 1.0f, f32(a), f32(b), 0.0f,
                   f32_mut(y));
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MatmulNode>();
    node->a = a;
    node->b = b;
    record_node(y, node);
  }
  return y;
}

}  // namespace muonrec::ops

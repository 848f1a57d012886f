// Elementwise ops, activations, dropout, casts and whole-tensor reductions.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

bool is_suffix(const Shape& small, const Shape& big) {
  if (small.size() > big.size()) return false;
  return std::equal(small.rbegin(), small.rend(), big.rbegin());
}

// Nodes hold a GradTarget for an input whose backward needs only its shape (see engine/autograd.h).
struct AddNode : Node {
  GradTarget a, b;
  const char* name() const override { return "add"; }
  void backward(const Tensor& g) override {
    accumulate_grad(a, g);
    if (!b.requires_grad()) return;
    if (b.shape() == g.shape()) {
      // Hand b its own buffer when a holds g too: no two tensors share a gradient buffer.
      accumulate_grad(b, a.requires_grad() ? g.clone() : g);
      return;
    }
    Tensor gb = Tensor::empty(b.shape(), DType::F32, g.device());
    if (b.numel() > 0)  // else a, g and b are all empty
      MUONREC_DISPATCH(g.device(), sum_leading, f32(g), f32_mut(gb), g.numel() / b.numel(), b.numel());
    accumulate_grad(b, gb);
  }
};

struct MulNode : Node {
  Tensor a, b;
  const char* name() const override { return "mul"; }
  void backward(const Tensor& g) override {
    if (a.requires_grad()) accumulate_grad(a, mul(g, b));
    if (b.requires_grad()) accumulate_grad(b, mul(g, a));
  }
};

struct ScaleNode : Node {
  GradTarget x;
  float factor;
  const char* name() const override { return "scale"; }
  void backward(const Tensor& g) override { accumulate_grad(x, scale(g, factor)); }
};

struct ScaleRowsNode : Node {
  GradTarget x;
  Tensor row_factor;
  const char* name() const override { return "scale_rows"; }
  void backward(const Tensor& g) override { accumulate_grad(x, scale_rows(g, row_factor)); }
};

struct ActivationNode : Node {
  Tensor x;
  kernels::Activation kind;
  const char* label;
  const char* name() const override { return label; }
  void backward(const Tensor& g) override {
    Tensor dx = empty_like(x);
    MUONREC_DISPATCH(x.device(), activation_backward, kind, f32(x), f32(g), f32_mut(dx), x.numel());
    accumulate_grad(x, dx);
  }
};

struct DropoutNode : Node {
  GradTarget x;
  float p;
  uint64_t seed, offset;
  const char* name() const override { return "dropout"; }
  void backward(const Tensor& g) override {
    // The mask is regenerated from (seed, offset): the same kernel applied to g is the backward.
    Tensor dx = empty_like(g);
    MUONREC_DISPATCH(g.device(), dropout_forward, f32(g), f32_mut(dx), g.numel(), p, seed, offset);
    accumulate_grad(x, dx);
  }
};

struct SumNode : Node {
  GradTarget x;
  float factor;  // 1 for sum, 1/n for mean
  const char* name() const override { return "sum"; }
  void backward(const Tensor& g) override {
    Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
    MUONREC_DISPATCH(x.device(), broadcast_scalar, f32(g), factor, f32_mut(dx), x.numel());
    accumulate_grad(x, dx);
  }
};

Tensor activation(const Tensor& x, kernels::Activation kind, const char* label) {
  NVTX_RANGE(label);
  check_dtype(x, DType::F32, label, "x");
  Tensor y = empty_like(x);
  MUONREC_DISPATCH(x.device(), activation_forward, kind, f32(x), f32_mut(y), x.numel());
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ActivationNode>();
    node->x = x;
    node->kind = kind;
    node->label = label;
    record_node(y, node);
  }
  return y;
}

Tensor reduce_all(const Tensor& x, float factor, const char* label) {
  NVTX_RANGE(label);
  check_dtype(x, DType::F32, label, "x");
  Tensor total = Tensor::empty({}, DType::F32, x.device());
  MUONREC_DISPATCH(x.device(), sum_all, f32(x), f32_mut(total), x.numel());
  Tensor out = factor == 1.0f ? total : scale(total, factor);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SumNode>();
    node->x = GradTarget(x);
    node->factor = factor;
    record_node(out, node);
  }
  return out;
}

}  // namespace

Tensor cast(const Tensor& x, DType dtype) {
  check_defined(x, "cast", "x");
  if (x.dtype() == dtype) return x;
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  const DType from = x.dtype();
  if (from == DType::F32 && dtype == DType::BF16) {
    MUONREC_DISPATCH(x.device(), cast_f32_to_bf16, x.data<float>(), y.data<uint16_t>(), x.numel());
  } else if (from == DType::BF16 && dtype == DType::F32) {
    MUONREC_DISPATCH(x.device(), cast_bf16_to_f32, x.data<uint16_t>(), y.data<float>(), x.numel());
  } else if (from == DType::I32 && dtype == DType::I64) {
    MUONREC_DISPATCH(x.device(), cast_i32_to_i64, x.data<int32_t>(), y.data<int64_t>(), x.numel());
  } else if (from == DType::I64 && dtype == DType::I32) {
    MUONREC_DISPATCH(x.device(), cast_i64_to_i32, x.data<int64_t>(), y.data<int32_t>(), x.numel());
  } else {
    MUONREC_FAIL("cast: no conversion from {} to {} (supported: F32<->BF16, I32<->I64)", dtype_name(from),
                 dtype_name(dtype));
  }
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) {
  NVTX_RANGE("add");
  check_dtype(a, DType::F32, "add", "a");
  check_dtype(b, DType::F32, "add", "b");
  check_same_device(a, b, "add");
  MUONREC_CHECK(is_suffix(b.shape(), a.shape()) && (b.numel() > 0 || a.numel() == 0),
                "add: shape {} does not broadcast onto {} (b must equal a trailing part of a's shape)",
                shape_str(b.shape()), shape_str(a.shape()));
  Tensor out = empty_like(a);
  if (a.numel() > 0) MUONREC_DISPATCH(a.device(), add_forward, f32(a), f32(b), f32_mut(out), a.numel(), b.numel());
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<AddNode>();
    node->a = GradTarget(a);
    node->b = GradTarget(b);
    record_node(out, node);
  }
  return out;
}

void add_into(const Tensor& accumulator, const Tensor& x) {
  check_dtype(accumulator, DType::F32, "add_into", "accumulator");
  check_dtype(x, DType::F32, "add_into", "x");
  check_same_device(accumulator, x, "add_into");
  MUONREC_CHECK(accumulator.shape() == x.shape(), "add_into: shapes {} and {} differ", shape_str(accumulator.shape()),
                shape_str(x.shape()));
  MUONREC_DISPATCH(x.device(), add_forward, f32(accumulator), f32(x), f32_mut(accumulator), x.numel(), x.numel());
}

Tensor mul(const Tensor& a, const Tensor& b) {
  NVTX_RANGE("mul");
  check_dtype(a, DType::F32, "mul", "a");
  check_dtype(b, DType::F32, "mul", "b");
  check_same_device(a, b, "mul");
  MUONREC_CHECK(a.shape() == b.shape(), "mul: shapes {} and {} differ", shape_str(a.shape()), shape_str(b.shape()));
  Tensor out = empty_like(a);
  MUONREC_DISPATCH(a.device(), mul_forward, f32(a), f32(b), f32_mut(out), a.numel());
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MulNode>();
    node->a = a;
    node->b = b;
    record_node(out, node);
  }
  return out;
}

Tensor scale(const Tensor& x, float factor) {
  check_dtype(x, DType::F32, "scale", "x");
  Tensor out = empty_like(x);
  MUONREC_DISPATCH(x.device(), scale_forward, f32(x), factor, f32_mut(out), x.numel());
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaleNode>();
    node->x = GradTarget(x);
    node->factor = factor;
    record_node(out, node);
  }
  return out;
}

Tensor scale_rows(const Tensor& x, const Tensor& row_factor) {
  check_dtype(x, DType::F32, "scale_rows", "x");
  check_dtype(row_factor, DType::F32, "scale_rows", "row_factor");
  check_same_device(x, row_factor, "scale_rows");
  MUONREC_CHECK(x.rank() >= 1, "scale_rows: x must have at least one axis, got shape {}", shape_str(x.shape()));
  MUONREC_CHECK(row_factor.numel() == rows_of(x), "scale_rows: {} factors for {} rows of shape {}",
                row_factor.numel(), rows_of(x), shape_str(x.shape()));
  Tensor out = empty_like(x);
  MUONREC_DISPATCH(x.device(), scale_rows_forward, f32(x), f32(row_factor), f32_mut(out), rows_of(x), x.dim(-1));
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaleRowsNode>();
    node->x = GradTarget(x);
    node->row_factor = row_factor;
    record_node(out, node);
  }
  return out;
}

Tensor gelu(const Tensor& x) { return activation(x, kernels::Activation::GELU, "gelu"); }
Tensor silu(const Tensor& x) { return activation(x, kernels::Activation::SILU, "silu"); }
Tensor relu(const Tensor& x) { return activation(x, kernels::Activation::RELU, "relu"); }

Tensor dropout(const Tensor& x, float p, PhiloxGenerator& generator, bool training) {
  check_dtype(x, DType::F32, "dropout", "x");
  MUONREC_CHECK(p >= 0.0f && p < 1.0f, "dropout: probability {} outside [0, 1)", p);
  if (!training || p == 0.0f) return x;
  NVTX_RANGE("dropout");
  const uint64_t offset = generator.next_offset();
  Tensor out = empty_like(x);
  MUONREC_DISPATCH(x.device(), dropout_forward, f32(x), f32_mut(out), x.numel(), p, generator.seed(), offset);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<DropoutNode>();
    node->x = GradTarget(x);
    node->p = p;
    node->seed = generator.seed();
    node->offset = offset;
    record_node(out, node);
  }
  return out;
}

Tensor sum(const Tensor& x) { return reduce_all(x, 1.0f, "sum"); }

Tensor mean(const Tensor& x) {
  check_dtype(x, DType::F32, "mean", "x");
  MUONREC_CHECK(x.numel() > 0, "mean: empty tensor");
  return reduce_all(x, 1.0f / static_cast<float>(x.numel()), "mean");
}

}  // namespace muonrec::ops

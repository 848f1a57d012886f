// Column blocks of the last axis (split_last): a copy, since views stay contiguous (DESIGN.md).
#include "engine/dispatch.h"
#include "engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct SplitLastNode : Node {
  GradTarget x;  // only where the gradient goes: the backward needs no values of x
  int64_t start, width;
  const char* name() const override { return "split_last"; }
  void backward(const Tensor& g) override {
    Tensor dx = Tensor::empty(x.shape(), DType::F32, x.device());
    MUONREC_DISPATCH(x.device(), split_last_backward, f32(g), f32_mut(dx), rows_of(dx), dx.dim(-1), start, width);
    accumulate_grad(x, dx);
  }
};

}  // namespace

Tensor split_last(const Tensor& x, int64_t start, int64_t width) {
  NVTX_RANGE("split_last");
  check_dtype(x, DType::F32, "split_last", "x");
  MUONREC_CHECK(x.rank() >= 1, "split_last: x must have at least one axis");
  const int64_t cols = x.dim(-1);
  MUONREC_CHECK(start >= 0 && width >= 0 && start + width <= cols,
                "split_last: columns [{}, {}) are outside the last axis of {}", start, start + width,
                shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape.back() = width;
  Tensor out = Tensor::empty(out_shape, DType::F32, x.device());
  MUONREC_DISPATCH(x.device(), split_last_forward, f32(x), f32_mut(out), rows_of(x), cols, start, width);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SplitLastNode>();
    node->x = GradTarget(x);
    node->start = start;
    node->width = width;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

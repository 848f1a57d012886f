// Column blocks of the last axis (split_last) and rows joined along the leading one (concat_rows):
// copies, since views stay contiguous (DESIGN.md).
#include <algorithm>

#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

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

struct ConcatRowsNode : Node {
  GradTarget a, b;  // the backward needs only where each part's rows go
  const char* name() const override { return "concat_rows"; }
  void backward(const Tensor& g) override {
    const int64_t rows_a = a.shape()[0];
    accumulate_grad(a, g.narrow_rows(0, rows_a));
    accumulate_grad(b, g.narrow_rows(rows_a, g.dim(0) - rows_a));
  }
};

}  // namespace

Tensor concat_rows(const Tensor& a, const Tensor& b) {
  NVTX_RANGE("concat_rows");
  check_dtype(a, DType::F32, "concat_rows", "a");
  check_dtype(b, DType::F32, "concat_rows", "b");
  check_same_device(a, b, "concat_rows");
  MUONREC_CHECK(a.rank() >= 1 && a.rank() == b.rank() && std::equal(a.shape().begin() + 1, a.shape().end(),
                                                                      b.shape().begin() + 1),
                "concat_rows: {} and {} differ beyond the leading axis", shape_str(a.shape()), shape_str(b.shape()));
  Shape out_shape = a.shape();
  out_shape[0] += b.dim(0);
  Tensor out = Tensor::empty(out_shape, DType::F32, a.device());
  if (a.numel() > 0) out.narrow_rows(0, a.dim(0)).copy_from(a);
  if (b.numel() > 0) out.narrow_rows(a.dim(0), b.dim(0)).copy_from(b);
  if (any_requires_grad({&a, &b})) {
    auto node = std::make_shared<ConcatRowsNode>();
    node->a = GradTarget(a);
    node->b = GradTarget(b);
    record_node(out, node);
  }
  return out;
}

Tensor split_last(const Tensor& x, int64_t start, int64_t width) {
  NVTX_RANGE("split_last");
  check_dtype(x, DType::F32, "split_last", "x");
  MUONREC_CHECK(x.rank() >= 1, "split_last: x must have at least one axis");
  const int64_t cols = x.dim(-1);
  // width <= cols - start: start + width could overflow.
  MUONREC_CHECK(start >= 0 && width >= 0 && start <= cols && width <= cols - start,
                "split_last: {} columns from column {} are outside the last axis of {}", width, start,
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

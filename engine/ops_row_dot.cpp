// Per-row dot products against a row's own candidates: the logits of a sampled softmax, where each
// row scores 1 + K items of its own instead of the whole catalogue.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct RowDotNode : Node {
  Tensor h, c;
  const char* name() const override { return "row_dot"; }
  void backward(const Tensor& g) override {
    // Only the gradients that are needed are computed (the candidates are often a lookup whose
    // table is frozen in a test, or h a constant).
    Tensor dh = h.requires_grad() ? empty_like(h) : Tensor();
    Tensor dc = c.requires_grad() ? empty_like(c) : Tensor();
    MUONREC_DISPATCH(h.device(), row_dot_backward, f32(h), f32(c), f32(g), dh.defined() ? f32_mut(dh) : nullptr,
                     dc.defined() ? f32_mut(dc) : nullptr, c.dim(0), c.dim(1), c.dim(2));
    if (dh.defined()) accumulate_grad(h, dh);
    if (dc.defined()) accumulate_grad(c, dc);
  }
};

}  // namespace

Tensor row_dot(const Tensor& h, const Tensor& c) {
  NVTX_RANGE("row_dot");
  check_dtype(h, DType::F32, "row_dot", "h");
  check_dtype(c, DType::F32, "row_dot", "c");
  check_same_device(h, c, "row_dot");
  MUONREC_CHECK(h.rank() == 2, "row_dot: h must be [R, d], got {}", shape_str(h.shape()));
  MUONREC_CHECK(c.rank() == 3 && c.dim(0) == h.dim(0) && c.dim(2) == h.dim(1),
                "row_dot: c must be [{}, M, {}] to match h {}, got {}", h.dim(0), h.dim(1), shape_str(h.shape()),
                shape_str(c.shape()));
  const int64_t rows = c.dim(0), per_row = c.dim(1), dim = c.dim(2);
  Tensor out = Tensor::empty({rows, per_row}, DType::F32, h.device());
  MUONREC_DISPATCH(h.device(), row_dot_forward, f32(h), f32(c), f32_mut(out), rows, per_row, dim);
  if (any_requires_grad({&h, &c})) {
    auto node = std::make_shared<RowDotNode>();
    node->h = h;
    node->c = c;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

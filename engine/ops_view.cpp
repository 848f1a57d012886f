// Autograd for views (reshape, narrow_rows): the view's gradient lands at the view's place in the base.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops::detail {
namespace {

struct ViewNode : Node {
  GradTarget base;  // not the tensor: a dropped view must not keep the base's storage alive
  int64_t offset_elements;
  const char* name() const override { return "view"; }
  void backward(const Tensor& g) override {
    if (g.numel() == base.numel()) {
      accumulate_grad(base, g.reshape(base.shape()));
      return;
    }
    Tensor full = Tensor::zeros(base.shape(), DType::F32, g.device());
    copy_bytes(static_cast<float*>(full.raw_data()) + offset_elements, g.device(), g.raw_data(), g.device(), g.nbytes());
    accumulate_grad(base, full);
  }
};

}  // namespace

void record_view_backward(const Tensor& base, Tensor& view, int64_t offset_elements) {
  if (!any_requires_grad({&base})) return;
  auto node = std::make_shared<ViewNode>();
  node->base = GradTarget(base);
  node->offset_elements = offset_elements;
  record_node(view, node);
}

}  // namespace muonrec::ops::detail

// Softmax cross-entropy over the item catalogue.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct CrossEntropyNode : Node {
  Tensor logits, targets, logsumexp, valid_count;
  const char* name() const override { return "cross_entropy"; }
  void backward(const Tensor& g) override {
    Tensor dlogits = empty_like(logits);
    MUONREC_DISPATCH(logits.device(), cross_entropy_backward, f32(logits), targets.data<int64_t>(), f32(logsumexp),
                     f32(valid_count), f32(g), f32_mut(dlogits), logits.dim(0), logits.dim(1));
    accumulate_grad(logits, dlogits);
  }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets) {
  NVTX_RANGE("cross_entropy");
  check_dtype(logits, DType::F32, "cross_entropy", "logits");
  check_dtype(targets, DType::I64, "cross_entropy", "targets");
  check_same_device(logits, targets, "cross_entropy");
  MUONREC_CHECK(logits.rank() == 2 && targets.shape() == Shape{logits.dim(0)},
                "cross_entropy: logits must be [N, V] and targets [N], got {} and {}", shape_str(logits.shape()),
                shape_str(targets.shape()));
  const int64_t rows = logits.dim(0), classes = logits.dim(1);
  MUONREC_CHECK(classes > 0, "cross_entropy: logits {} have no classes", shape_str(logits.shape()));
  if (targets.device() == Device::CPU) {
    const int64_t* t = targets.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      MUONREC_CHECK(t[r] < classes, "cross_entropy: target {} at row {} is not a class of [0, {})", t[r], r, classes);
  }
  Tensor loss = Tensor::empty({}, DType::F32, logits.device());
  Tensor logsumexp = Tensor::empty({rows}, DType::F32, logits.device());
  Tensor valid_count = Tensor::empty({1}, DType::F32, logits.device());
  MUONREC_DISPATCH(logits.device(), cross_entropy_forward, f32(logits), targets.data<int64_t>(), f32_mut(loss),
                   f32_mut(logsumexp), f32_mut(valid_count), rows, classes);
  if (any_requires_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyNode>();
    node->logits = logits;
    node->targets = targets;
    node->logsumexp = logsumexp;
    node->valid_count = valid_count;
    record_node(loss, node);
  }
  return loss;
}

}  // namespace muonrec::ops

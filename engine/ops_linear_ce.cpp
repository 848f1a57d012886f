// Softmax cross-entropy over a catalogue scored by a matrix product, computed over tiles of rows x
// items: neither the logits nor the probabilities ever exist for all N x V entries. Forward folds
// each tile into an online log-sum-exp; backward recomputes each tile's logits, turns them into
// gradients in place, and applies them to both factors with two more products. On the GPU the
// products follow the matmul precision setting (engine/precision.h); the CPU computes in fp32.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"
#include "muonrec/kernels/cpu/chunked_ce.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/kernels/cuda/chunked_ce.h"
#endif

namespace muonrec::ops {
using namespace detail;
namespace {

struct LinearCrossEntropyNode : Node {
  Tensor h, weight, targets, logsumexp, valid_count;
  float scale;
  int64_t chunk;
  const char* name() const override { return "linear_cross_entropy"; }
  void backward(const Tensor& g) override {
    const Device device = h.device();
    Tensor dh = Tensor::empty(h.shape(), DType::F32, device);
    Tensor dw = Tensor::empty(weight.shape(), DType::F32, device);
    MUONREC_DISPATCH(device, linear_ce_backward, f32(h), f32(weight), targets.data<int64_t>(), f32(logsumexp),
                     f32(valid_count), f32(g), h.dim(0), h.dim(1), weight.dim(0), scale, chunk, f32_mut(dh),
                     f32_mut(dw));
    accumulate_grad(h, dh);
    accumulate_grad(weight, dw);
  }
};

}  // namespace

Tensor linear_cross_entropy(const Tensor& h, const Tensor& weight, const Tensor& targets, float scale, int64_t chunk) {
  NVTX_RANGE("linear_cross_entropy");
  check_dtype(h, DType::F32, "linear_cross_entropy", "h");
  check_dtype(weight, DType::F32, "linear_cross_entropy", "weight");
  check_dtype(targets, DType::I64, "linear_cross_entropy", "targets");
  check_same_device(h, weight, "linear_cross_entropy");
  check_same_device(h, targets, "linear_cross_entropy");
  MUONREC_CHECK(h.rank() == 2 && weight.rank() == 2 && h.dim(1) == weight.dim(1) && targets.shape() == Shape{h.dim(0)},
                "linear_cross_entropy: h must be [N, d], weight [V, d] and targets [N]; got {}, {} and {}",
                shape_str(h.shape()), shape_str(weight.shape()), shape_str(targets.shape()));
  MUONREC_CHECK(weight.dim(0) > 0 && weight.dim(1) > 0,
                "linear_cross_entropy: weight must have at least one class and one feature; got {}",
                shape_str(weight.shape()));
  MUONREC_CHECK(chunk > 0, "linear_cross_entropy: chunk must be positive, got {}", chunk);
  const int64_t rows = h.dim(0), classes = weight.dim(0);
  if (targets.device() == Device::CPU) {
    const int64_t* t = targets.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      MUONREC_CHECK(t[r] < classes, "linear_cross_entropy: target {} at row {} is not a class of [0, {})", t[r], r,
                    classes);
  }
  const Device device = h.device();
  Tensor loss = Tensor::empty({}, DType::F32, device);
  Tensor logsumexp = Tensor::empty({rows}, DType::F32, device);
  Tensor valid_count = Tensor::empty({1}, DType::F32, device);
  MUONREC_DISPATCH(device, linear_ce_forward, f32(h), f32(weight), targets.data<int64_t>(), rows, h.dim(1), classes,
                   scale, chunk, f32_mut(logsumexp), f32_mut(loss), f32_mut(valid_count));
  if (any_requires_grad({&h, &weight})) {
    auto node = std::make_shared<LinearCrossEntropyNode>();
    node->h = h;
    node->weight = weight;
    node->targets = targets;
    node->logsumexp = logsumexp;
    node->valid_count = valid_count;
    node->scale = scale;
    node->chunk = chunk;
    record_node(loss, node);
  }
  return loss;
}

}  // namespace muonrec::ops

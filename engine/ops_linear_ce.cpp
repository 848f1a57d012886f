// Softmax cross-entropy over a catalogue scored by a matrix product, computed over item chunks:
// neither the logits nor the probabilities ever exist for all N x V entries. Forward folds each
// chunk into an online log-sum-exp; backward recomputes each chunk's logits, turns them into
// gradients in place, and applies them to both factors with two more products.
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "kernels/cpu/chunked_ce.h"
#ifdef MUONREC_WITH_CUDA
#include "kernels/cuda/chunked_ce.h"
#endif

namespace muonrec::ops {
using namespace detail;
namespace {

// logits[:, 0:width] = scale * h @ weight[begin:begin+width]^T
void chunk_logits(const Tensor& h, const Tensor& weight, float scale, int64_t begin, int64_t width, Tensor& logits) {
  const int64_t rows = h.dim(0), d = h.dim(1);
  MUONREC_DISPATCH(h.device(), gemm, false, true, rows, width, d, scale, f32(h), f32(weight) + begin * d, 0.0f,
                   f32_mut(logits));
}

struct LinearCrossEntropyNode : Node {
  Tensor h, weight, targets, logsumexp, valid_count;
  float scale;
  int64_t chunk;
  const char* name() const override { return "linear_cross_entropy"; }
  void backward(const Tensor& g) override {
    const int64_t rows = h.dim(0), d = h.dim(1), classes = weight.dim(0);
    const Device device = h.device();
    Tensor dh = Tensor::zeros(h.shape(), DType::F32, device);
    Tensor dw = Tensor::empty(weight.shape(), DType::F32, device);
    Tensor logits = Tensor::empty({rows, std::min(chunk, classes)}, DType::F32, device);
    for (int64_t begin = 0; begin < classes; begin += chunk) {
      const int64_t width = std::min(chunk, classes - begin);
      chunk_logits(h, weight, scale, begin, width, logits);
      MUONREC_DISPATCH(device, ce_chunk_backward, f32_mut(logits), targets.data<int64_t>(), f32(logsumexp),
                       f32(valid_count), f32(g), rows, width, begin);
      // dh += scale * dlogits @ W_chunk ; dW_chunk = scale * dlogits^T @ h
      MUONREC_DISPATCH(device, gemm, false, false, rows, d, width, scale, f32(logits), f32(weight) + begin * d, 1.0f,
                       f32_mut(dh));
      MUONREC_DISPATCH(device, gemm, true, false, width, d, rows, scale, f32(logits), f32(h), 0.0f,
                       f32_mut(dw) + begin * d);
    }
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
  MUONREC_CHECK(chunk > 0, "linear_cross_entropy: chunk must be positive, got {}", chunk);
  const int64_t rows = h.dim(0), classes = weight.dim(0);
  if (targets.device() == Device::CPU) {
    const int64_t* t = targets.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      MUONREC_CHECK(t[r] < classes, "linear_cross_entropy: target {} at row {} is not a class of [0, {})", t[r], r,
                    classes);
  }
  const Device device = h.device();
  Tensor row_max = Tensor::full({rows}, -INFINITY, device);
  Tensor row_sum = Tensor::zeros({rows}, DType::F32, device);
  Tensor target_logit = Tensor::zeros({rows}, DType::F32, device);
  Tensor logits = Tensor::empty({rows, std::max<int64_t>(std::min(chunk, classes), 1)}, DType::F32, device);
  for (int64_t begin = 0; begin < classes; begin += chunk) {
    const int64_t width = std::min(chunk, classes - begin);
    chunk_logits(h, weight, scale, begin, width, logits);
    MUONREC_DISPATCH(device, ce_chunk_forward, f32(logits), targets.data<int64_t>(), rows, width, begin,
                     f32_mut(row_max), f32_mut(row_sum), f32_mut(target_logit));
  }
  Tensor loss = Tensor::empty({}, DType::F32, device);
  Tensor logsumexp = Tensor::empty({rows}, DType::F32, device);
  Tensor valid_count = Tensor::empty({1}, DType::F32, device);
  MUONREC_DISPATCH(device, ce_finish, f32(row_max), f32(row_sum), f32(target_logit), targets.data<int64_t>(), rows,
                   f32_mut(logsumexp), f32_mut(loss), f32_mut(valid_count));
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

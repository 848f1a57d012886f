// Masked multi-head softmax attention: causal (SASRec) or bidirectional (BERT4Rec).
#include "engine/dispatch.h"
#include "engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

struct AttentionNode : Node {
  Tensor qkv, probs;
  int64_t heads;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& g) override {
    const int64_t batch = qkv.dim(0), seq = qkv.dim(1), d = qkv.dim(2) / 3;
    Tensor dqkv = empty_like(qkv);
    MUONREC_DISPATCH(qkv.device(), attention_backward, f32(qkv), f32(probs), f32(g), f32_mut(dqkv), batch, seq, heads,
                     d / heads);
    accumulate_grad(qkv, dqkv);
  }
};

}  // namespace

Tensor attention(const Tensor& qkv, const Tensor& valid, int heads, bool causal) {
  NVTX_RANGE("attention");
  check_dtype(qkv, DType::F32, "attention", "qkv");
  check_dtype(valid, DType::F32, "attention", "valid");
  check_same_device(qkv, valid, "attention");
  MUONREC_CHECK(qkv.rank() == 3 && qkv.dim(2) % 3 == 0, "attention: qkv must be [B, T, 3d], got {}",
                shape_str(qkv.shape()));
  const int64_t batch = qkv.dim(0), seq = qkv.dim(1), d = qkv.dim(2) / 3;
  MUONREC_CHECK(heads > 0 && d % heads == 0, "attention: width {} is not divisible by {} heads", d, heads);
  MUONREC_CHECK(valid.shape() == (Shape{batch, seq}), "attention: valid must be [{}, {}], got {}", batch, seq,
                shape_str(valid.shape()));
  Tensor out = Tensor::empty({batch, seq, d}, DType::F32, qkv.device());
  Tensor probs = Tensor::empty({batch, heads, seq, seq}, DType::F32, qkv.device());
  MUONREC_DISPATCH(qkv.device(), attention_forward, f32(qkv), f32(valid), f32_mut(out), f32_mut(probs), batch, seq,
                   static_cast<int64_t>(heads), d / heads, causal);
  // The backward reads the mask from probs (0 where masked), so the node needs no causal flag.
  if (any_requires_grad({&qkv})) {
    auto node = std::make_shared<AttentionNode>();
    node->qkv = qkv;
    node->probs = probs;
    node->heads = heads;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

// Masked multi-head softmax attention: causal (SASRec) or bidirectional (BERT4Rec).
#include "engine/dispatch.h"
#include "engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

// The backward recomputes the probabilities from the saved row log-sum-exp (O(B*H*T) memory, no
// T x T tensor), so it needs the mask again, and the output for sum_j P_ij dP_ij = dout_i . out_i.
struct AttentionNode : Node {
  Tensor qkv, valid, out, lse;
  int64_t heads;
  bool causal;
  const char* name() const override { return "attention"; }
  void backward(const Tensor& g) override {
    const int64_t batch = qkv.dim(0), seq = qkv.dim(1), d = qkv.dim(2) / 3;
    Tensor dqkv = empty_like(qkv);
    MUONREC_DISPATCH(qkv.device(), attention_backward, f32(qkv), f32(valid), f32(out), f32(lse), f32(g), f32_mut(dqkv),
                     batch, seq, heads, d / heads, causal);
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
  Tensor lse = Tensor::empty({batch, heads, seq}, DType::F32, qkv.device());
  MUONREC_DISPATCH(qkv.device(), attention_forward, f32(qkv), f32(valid), f32_mut(out), f32_mut(lse), batch, seq,
                   static_cast<int64_t>(heads), d / heads, causal);
  if (any_requires_grad({&qkv})) {
    auto node = std::make_shared<AttentionNode>();
    node->qkv = qkv;
    node->valid = valid;
    node->out = out;
    node->lse = lse;
    node->heads = heads;
    node->causal = causal;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

// Masked multi-head softmax attention: causal (SASRec) or bidirectional (BERT4Rec).
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

#include <vector>

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

namespace {

struct ContinuedShape {
  int64_t rows, new_len, context_rows, context_len, width;
};

ContinuedShape check_continued(const Tensor& qkv_new, const Tensor& context_qkv, const Tensor& context_valid,
                               const std::vector<int64_t>& context_rows, int heads) {
  const char* op = "attention_continued";
  check_dtype(qkv_new, DType::F32, op, "qkv_new");
  check_dtype(context_qkv, DType::F32, op, "context_qkv");
  check_dtype(context_valid, DType::F32, op, "context_valid");
  check_same_device(qkv_new, context_qkv, op);
  check_same_device(qkv_new, context_valid, op);
  MUONREC_CHECK(!any_requires_grad({&qkv_new, &context_qkv}), "{}: evaluation only, it records no gradient", op);
  MUONREC_CHECK(qkv_new.rank() == 3 && qkv_new.dim(2) % 3 == 0, "{}: qkv_new must be [N, S, 3d], got {}", op,
                shape_str(qkv_new.shape()));
  const ContinuedShape shape{qkv_new.dim(0), qkv_new.dim(1), context_qkv.rank() == 3 ? context_qkv.dim(0) : -1,
                             context_qkv.rank() == 3 ? context_qkv.dim(1) : -1, qkv_new.dim(2) / 3};
  MUONREC_CHECK(context_qkv.rank() == 3 && context_qkv.dim(2) == qkv_new.dim(2),
                "{}: context_qkv must be [R, T, {}], got {}", op, qkv_new.dim(2), shape_str(context_qkv.shape()));
  MUONREC_CHECK(context_valid.shape() == (Shape{shape.context_rows, shape.context_len}),
                "{}: context_valid must be [{}, {}], got {}", op, shape.context_rows, shape.context_len,
                shape_str(context_valid.shape()));
  MUONREC_CHECK(heads > 0 && shape.width % heads == 0, "{}: width {} is not divisible by {} heads", op, shape.width,
                heads);
  MUONREC_CHECK(static_cast<int64_t>(context_rows.size()) == shape.rows, "{}: {} context rows for {} new rows", op,
                context_rows.size(), shape.rows);
  for (size_t n = 0; n < context_rows.size(); ++n)
    MUONREC_CHECK(context_rows[n] >= 0 && context_rows[n] < shape.context_rows,
                  "{}: row {} continues context {}, outside 0..{}", op, n, context_rows[n], shape.context_rows - 1);
  return shape;
}

// attention_continued_by_gather on arguments check_continued has accepted.
Tensor continued_by_gather(const ContinuedShape& shape, const Tensor& qkv_new, const Tensor& context_qkv,
                           const Tensor& context_valid, const std::vector<int64_t>& context_rows, int heads) {
  NVTX_RANGE("attention_continued_by_gather");
  const int64_t N = shape.rows, S = shape.new_len, R = shape.context_rows, T = shape.context_len, L = T + S;
  const int64_t packed = 3 * shape.width;
  // Row n of the concatenated batch: its context's T positions, then its S new ones, gathered from
  // one table [every context position; every new position].
  const std::vector<float> context_valid_host = context_valid.to_f32_vector();
  std::vector<int64_t> gather(static_cast<size_t>(N * L)), pick(static_cast<size_t>(N * S));
  std::vector<float> valid(static_cast<size_t>(N * L), 1.0f);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t c = context_rows[n];
    for (int64_t t = 0; t < T; ++t) {
      gather[n * L + t] = c * T + t;
      valid[n * L + t] = context_valid_host[c * T + t];
    }
    for (int64_t j = 0; j < S; ++j) {
      gather[n * L + T + j] = R * T + n * S + j;
      pick[n * S + j] = n * L + T + j;
    }
  }
  const Device device = qkv_new.device();
  Tensor table = Tensor::empty({R * T + N * S, packed}, DType::F32, device);
  table.narrow_rows(0, R * T).copy_from(context_qkv.reshape({R * T, packed}));
  table.narrow_rows(R * T, N * S).copy_from(qkv_new.reshape({N * S, packed}));
  Tensor qkv_full = embedding(table, Tensor::from_i64(gather, {N * L}, device)).reshape({N, L, packed});
  Tensor a = attention(qkv_full, Tensor::from_f32(valid, {N, L}, device), heads, /*causal=*/true);
  return embedding(a.reshape({N * L, shape.width}), Tensor::from_i64(pick, {N * S}, device))
      .reshape({N, S, shape.width});
}

}  // namespace

Tensor attention_continued(const Tensor& qkv_new, const Tensor& context_qkv, const Tensor& context_valid,
                           const std::vector<int64_t>& context_rows, int heads) {
  NVTX_RANGE("attention_continued");
  const ContinuedShape shape = check_continued(qkv_new, context_qkv, context_valid, context_rows, heads);
  if (qkv_new.device() == Device::CUDA)
    return continued_by_gather(shape, qkv_new, context_qkv, context_valid, context_rows, heads);
  Tensor out = Tensor::empty({shape.rows, shape.new_len, shape.width}, DType::F32, qkv_new.device());
  kernels::cpu::attention_continued_forward(f32(qkv_new), f32(context_qkv), f32(context_valid), context_rows.data(),
                                            f32_mut(out), shape.rows, shape.new_len, shape.context_len,
                                            static_cast<int64_t>(heads), shape.width / heads);
  return out;
}

Tensor attention_continued_by_gather(const Tensor& qkv_new, const Tensor& context_qkv, const Tensor& context_valid,
                                     const std::vector<int64_t>& context_rows, int heads) {
  return continued_by_gather(check_continued(qkv_new, context_qkv, context_valid, context_rows, heads), qkv_new,
                             context_qkv, context_valid, context_rows, heads);
}

}  // namespace muonrec::ops

// Embedding lookup (rows of a table by id) and its deterministic backward.
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

// The CPU path checks every id; on the GPU the batcher guarantees the range (ids are built on the
// host from a validated dataset), so the hot path has no device-to-host sync.
void check_ids_in_table(const Tensor& ids, int64_t rows, const char* who) {
  if (ids.device() != Device::CPU) return;
  const int64_t* p = ids.data<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    MUONREC_CHECK(p[i] >= 0 && p[i] < rows, "{}: id {} at position {} is outside the table [0, {})", who, p[i], i,
                  rows);
}

struct EmbeddingNode : Node {
  Tensor weight, ids;
  const char* name() const override { return "embedding"; }
  void backward(const Tensor& g) override {
    if (!weight.requires_grad()) return;
    // The kernels accumulate into the rows in use. A persistent gradient buffer (the training
    // arena, zeroed once per step) takes them in place, so a step never writes the whole table;
    // otherwise a zero gradient is made first and accumulated as usual.
    const bool in_place = weight.has_grad_buffer();
    // The node holds the forward's ids, not a copy: ids written into since would index anywhere.
    check_ids_in_table(ids, weight.dim(0), "embedding backward (the ids were changed after the forward)");
    Tensor dw = in_place ? weight.grad() : Tensor::zeros(weight.shape(), DType::F32, weight.device());
    MUONREC_DISPATCH(g.device(), embedding_backward, f32(g), ids.data<int64_t>(), f32_mut(dw), ids.numel(),
                     weight.dim(0), weight.dim(1));
    if (!in_place) accumulate_grad(weight, dw);
  }
};

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  NVTX_RANGE("embedding");
  check_dtype(weight, DType::F32, "embedding", "weight");
  check_dtype(ids, DType::I64, "embedding", "ids");
  check_same_device(weight, ids, "embedding");
  MUONREC_CHECK(weight.rank() == 2, "embedding: weight must be [rows, dim], got {}", shape_str(weight.shape()));
  const int64_t rows = weight.dim(0), dim = weight.dim(1);
  check_ids_in_table(ids, rows, "embedding");
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor out = Tensor::empty(out_shape, DType::F32, weight.device());
  MUONREC_DISPATCH(weight.device(), embedding_forward, f32(weight), ids.data<int64_t>(), f32_mut(out), ids.numel(),
                   rows, dim);
  if (any_requires_grad({&weight})) {
    auto node = std::make_shared<EmbeddingNode>();
    node->weight = weight;
    node->ids = ids;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

// HSTU pointwise attention with relative position and time biases (reference/MODELS.md, HSTU).
#include "muonrec/engine/dispatch.h"
#include "muonrec/engine/ops.h"

namespace muonrec::ops {
using namespace detail;
namespace {

// The time bias and its buckets are absent (null for the kernels) when there are no timestamps.
const float* optional_f32(const Tensor& t) { return t.defined() ? f32(t) : nullptr; }
const int32_t* optional_buckets(const Tensor& t) { return t.defined() ? t.data<int32_t>() : nullptr; }

// As for embedding ids: the CPU path checks every bucket (before a cast to I32, which would wrap an
// I64 one into range); on the GPU they come from the host's bucketing (models/hstu.h), which clamps,
// so the hot path has no device-to-host sync.
void check_buckets_in_range(const Tensor& time_buckets, int64_t num_buckets, const char* who) {
  if (time_buckets.device() != Device::CPU) return;
  const int64_t count = time_buckets.numel();
  auto check = [&](const auto* p) {
    for (int64_t n = 0; n < count; ++n)
      MUONREC_CHECK(p[n] >= 0 && p[n] < num_buckets, "{}: time bucket {} at position {} is outside [0, {})", who,
                    static_cast<int64_t>(p[n]), n, num_buckets);
  };
  if (time_buckets.dtype() == DType::I64)
    check(time_buckets.data<int64_t>());
  else
    check(time_buckets.data<int32_t>());
}

struct HstuAttentionNode : Node {
  Tensor uvqk, valid, pos_bias, time_bias, time_buckets;  // time_buckets: i32
  int64_t heads;
  const char* name() const override { return "hstu_attention"; }
  void backward(const Tensor& g) override {
    const int64_t batch = uvqk.dim(0), seq = uvqk.dim(1), d = uvqk.dim(2) / 4;
    const Device device = uvqk.device();
    Tensor duvqk = empty_like(uvqk);
    Tensor dpos_bias = empty_like(pos_bias);
    // The time-bias gradient is a histogram over all (b, h, i, j): skipped when nobody wants it.
    const bool want_time_grad = time_bias.defined() && time_bias.requires_grad();
    Tensor dtime_bias = want_time_grad ? empty_like(time_bias) : Tensor();
    const int64_t num_time_buckets = time_bias.defined() ? time_bias.numel() : 0;
    // The node holds the forward's I32 buckets, not a copy: buckets written into since would index
    // anywhere.
    if (time_bias.defined())
      check_buckets_in_range(time_buckets, num_time_buckets,
                             "hstu_attention backward (the time buckets were changed after the forward)");
    MUONREC_DISPATCH(device, hstu_attention_backward, f32(uvqk), f32(valid), f32(pos_bias), optional_f32(time_bias),
                     optional_buckets(time_buckets), f32(g), f32_mut(duvqk), f32_mut(dpos_bias),
                     want_time_grad ? f32_mut(dtime_bias) : nullptr, batch, seq, heads, d / heads, num_time_buckets);
    accumulate_grad(uvqk, duvqk);
    accumulate_grad(pos_bias, dpos_bias);
    if (want_time_grad) accumulate_grad(time_bias, dtime_bias);
  }
};

// Checks the timestamp inputs and returns the buckets as i32 (what the kernels read).
Tensor checked_time_buckets(const Tensor& time_bias, const Tensor& time_buckets, const Tensor& uvqk) {
  const char* op = "hstu_attention";
  MUONREC_CHECK(time_bias.defined() == time_buckets.defined(),
                "{}: time_bias and time_buckets must be given together (both undefined without timestamps)", op);
  if (!time_bias.defined()) return Tensor();
  check_dtype(time_bias, DType::F32, op, "time_bias");
  check_same_device(uvqk, time_bias, op);
  check_same_device(uvqk, time_buckets, op);
  MUONREC_CHECK(time_bias.rank() == 1 && time_bias.numel() > 0, "{}: time_bias must be [buckets], got {}", op,
                shape_str(time_bias.shape()));
  MUONREC_CHECK(time_buckets.dtype() == DType::I32 || time_buckets.dtype() == DType::I64,
                "{}: 'time_buckets' must be I32 or I64, got {}", op, dtype_name(time_buckets.dtype()));
  const int64_t batch = uvqk.dim(0), seq = uvqk.dim(1);
  MUONREC_CHECK(time_buckets.shape() == (Shape{batch, seq, seq}), "{}: time_buckets must be [{}, {}, {}], got {}", op,
                batch, seq, seq, shape_str(time_buckets.shape()));
  check_buckets_in_range(time_buckets, time_bias.numel(), op);
  return cast(time_buckets, DType::I32);
}

}  // namespace

Tensor hstu_time_buckets(const Tensor& timestamps) {
  NVTX_RANGE("hstu_time_buckets");
  check_dtype(timestamps, DType::I64, "hstu_time_buckets", "timestamps");
  MUONREC_CHECK(timestamps.rank() == 2, "hstu_time_buckets: timestamps must be [B, T], got {}",
                shape_str(timestamps.shape()));
  const int64_t batch = timestamps.dim(0), seq = timestamps.dim(1);
  Tensor buckets = Tensor::empty({batch, seq, seq}, DType::I32, timestamps.device());
  MUONREC_DISPATCH(timestamps.device(), hstu_time_buckets, timestamps.data<int64_t>(), buckets.data<int32_t>(), batch,
                   seq);
  return buckets;
}

Tensor hstu_attention(const Tensor& uvqk, const Tensor& valid, const Tensor& pos_bias, const Tensor& time_bias,
                      const Tensor& time_buckets, int heads) {
  NVTX_RANGE("hstu_attention");
  const char* op = "hstu_attention";
  check_dtype(uvqk, DType::F32, op, "uvqk");
  check_dtype(valid, DType::F32, op, "valid");
  check_dtype(pos_bias, DType::F32, op, "pos_bias");
  check_same_device(uvqk, valid, op);
  check_same_device(uvqk, pos_bias, op);
  MUONREC_CHECK(uvqk.rank() == 3 && uvqk.dim(2) % 4 == 0 && uvqk.dim(1) > 0, "{}: uvqk must be [B, T, 4d], got {}",
                op, shape_str(uvqk.shape()));
  const int64_t batch = uvqk.dim(0), seq = uvqk.dim(1), d = uvqk.dim(2) / 4;
  MUONREC_CHECK(heads > 0 && d % heads == 0, "{}: width {} is not divisible by {} heads", op, d, heads);
  MUONREC_CHECK(valid.shape() == (Shape{batch, seq}), "{}: valid must be [{}, {}], got {}", op, batch, seq,
                shape_str(valid.shape()));
  MUONREC_CHECK(pos_bias.shape() == (Shape{2 * seq - 1}), "{}: pos_bias must be [2T-1] = [{}] for T={}, got {}", op,
                2 * seq - 1, seq, shape_str(pos_bias.shape()));
  Tensor buckets = checked_time_buckets(time_bias, time_buckets, uvqk);
  Tensor out = Tensor::empty({batch, seq, d}, DType::F32, uvqk.device());
  MUONREC_DISPATCH(uvqk.device(), hstu_attention_forward, f32(uvqk), f32(valid), f32(pos_bias),
                   optional_f32(time_bias), optional_buckets(buckets), f32_mut(out), batch, seq,
                   static_cast<int64_t>(heads), d / heads);
  if (any_requires_grad({&uvqk, &pos_bias, &time_bias})) {
    auto node = std::make_shared<HstuAttentionNode>();
    node->uvqk = uvqk;
    node->valid = valid;
    node->pos_bias = pos_bias;
    node->time_bias = time_bias;
    node->time_buckets = buckets;
    node->heads = heads;
    record_node(out, node);
  }
  return out;
}

}  // namespace muonrec::ops

// Building blocks, forward + backward through the op API, on the shapes of
// ../shared/bench/torch_ref.py --micro (same op names, so bench/compare.py pairs them): causal
// attention, embedding lookup, full-softmax cross-entropy over the catalogue. Backward is driven by
// a fixed random cotangent (loss = sum(out * g)), which adds one elementwise product and a sum to
// what the peer times. Also the decoding attention (no peer row).
//   bench_ops [--device cuda|cpu] [--small]   (--small: only the ML-1M-size shapes)
#include <functional>
#include <iostream>
#include <tuple>

#include "muonrec/bench/bench_util.h"
#include "muonrec/engine/autograd.h"
#include "muonrec/engine/ops.h"
#include "muonrec/engine/precision.h"
#include "muonrec/models/module.h"

using namespace muonrec;

namespace {

Tensor random_input(const Shape& shape, uint64_t seed, Device device, bool requires_grad) {
  PhiloxGenerator gen(seed);
  Tensor t = init_normal(shape, 1.0f, gen, device);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor random_ids(int64_t n, int64_t low, int64_t high, uint64_t seed, Device device) {
  PhiloxGenerator gen(seed);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = low + static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(high - low));
  return Tensor::from_i64(ids, {n}, device);
}

// Median time of forward + backward of out = f(), with loss = sum(out * cotangent) (a one-element
// out is the loss itself); the inputs' gradients are dropped before each repeat.
double time_fwd_bwd(const std::function<Tensor()>& f, std::vector<Tensor> inputs, Device device, int repeats) {
  Tensor cotangent;
  {
    NoGradGuard no_grad;
    cotangent = random_input(f().shape(), 99, device, false);
  }
  auto step = [&] {
    for (Tensor& t : inputs) t.zero_grad();
    Tensor out = f();
    backward(out.numel() == 1 ? out : ops::sum(ops::mul(out, cotangent)));
  };
  return bench::median_ms(step, device, 5, repeats);
}

void attention_case(int64_t B, int64_t H, int64_t T, int64_t D, Device device) {
  Tensor qkv = random_input({B, T, 3 * H * D}, 1, device, true);
  Tensor valid = Tensor::full({B, T}, 1.0f, device);
  const double ms = time_fwd_bwd([&] { return ops::causal_attention(qkv, valid, static_cast<int>(H)); }, {qkv},
                                 device, 20);
  const double flops = 3.5 * 2 * B * H * T * T * D;  // the peer's count: causal half of fwd, bwd 2.5x
  bench::report(fmt::format("sdpa_causal_fwdbwd_B{}H{}T{}D{}", B, H, T, D), ms,
                fmt::format(R"(, "TFLOPs": {:.1f})", flops / ms / 1e9));
}

// HSTU pointwise attention with both relative biases (timestamps a few minutes apart), as the HSTU
// model runs on ML-1M; the target is the sdpa row of the same shape. TFLOPs use the sdpa rows'
// count so the two compare directly.
void hstu_attention_case(int64_t B, int64_t H, int64_t T, int64_t D, Device device) {
  Tensor uvqk = random_input({B, T, 4 * H * D}, 7, device, true);
  Tensor valid = Tensor::full({B, T}, 1.0f, device);
  Tensor pos_bias = random_input({2 * T - 1}, 8, device, true), time_bias = random_input({129}, 9, device, true);
  PhiloxGenerator gen(10);
  std::vector<int64_t> timestamps(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      timestamps[b * T + t] = (t ? timestamps[b * T + t - 1] : 0) + static_cast<int64_t>(gen.uniform_u64() % 600);
  Tensor buckets = ops::hstu_time_buckets(Tensor::from_i64(timestamps, {B, T}, device));
  const double ms = time_fwd_bwd(
      [&] { return ops::hstu_attention(uvqk, valid, pos_bias, time_bias, buckets, static_cast<int>(H)); },
      {uvqk, pos_bias, time_bias}, device, 20);
  const double flops = 3.5 * 2 * B * H * T * T * D;
  bench::report(fmt::format("hstu_attention_fwdbwd_B{}H{}T{}D{}", B, H, T, D), ms,
                fmt::format(R"(, "TFLOPs": {:.1f})", flops / ms / 1e9));
}

// Decoding attention (evaluation only): N beams of S new positions, each after one of R cached
// contexts of T positions, as TIGER's beam search runs it (20 beams per user, 4-token codes, a
// 20-item history). The _by_gather row times the same result through gather + full causal
// attention, what the op replaced on the CPU (and still is on CUDA).
void attention_continued_case(int64_t R, int64_t beams, int64_t T, int64_t S, int64_t H, int64_t D, Device device) {
  NoGradGuard no_grad;
  const int64_t N = R * beams, width = 3 * H * D;
  Tensor qkv_new = random_input({N, S, width}, 11, device, false), context = random_input({R, T, width}, 12, device, false);
  Tensor valid = Tensor::full({R, T}, 1.0f, device);
  std::vector<int64_t> rows(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) rows[n] = n / beams;
  // Bytes floor: the R contexts' keys and values (2/3 of their packed rows; the beams of a context
  // share them), the beams' new rows, and their outputs.
  const double bytes = 4.0 * (R * T * 2 * H * D + N * S * width + N * S * H * D);
  for (bool gather : {false, true}) {
    auto op = gather ? ops::attention_continued_by_gather : ops::attention_continued;
    const double ms = bench::median_ms([&] { op(qkv_new, context, valid, rows, static_cast<int>(H)); }, device, 2, 10);
    bench::report(fmt::format("attention_continued{}_R{}x{}_T{}S{}H{}D{}", gather ? "_by_gather" : "", R, beams, T,
                              S, H, D),
                  ms, fmt::format(R"(, "GBps": {:.1f})", bytes / ms / 1e6));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::BenchArgs args = bench::parse_bench_args(argc, argv, "bench_ops");
    const Device device = args.device;
    const bool small = args.small;
    attention_case(128, 1, 200, 64, device);
    hstu_attention_case(128, 1, 200, 64, device);
    attention_continued_case(64, 20, 80, 3, 2, 64, device);
    if (!small) {
      attention_case(128, 4, 200, 64, device);
      hstu_attention_case(128, 4, 200, 64, device);
      attention_case(32, 8, 1024, 64, device);
    }
    for (auto [V, d, N] : {std::tuple<int64_t, int64_t, int64_t>{3707, 64, 128 * 200}, {1000000, 128, 256 * 200}}) {
      if (small && V > 10000) continue;
      Tensor w = random_input({V, d}, 2, device, true);
      Tensor ids = random_ids(N, 1, V, 3, device);
      // Bytes floor: read N ids and N*d gathered values, write N*d outputs; backward reads N*d
      // gradients and writes the touched rows (at most V*d).
      // As in training (and in the peer, whose w.grad accumulates): the gradient lives in a
      // persistent buffer, and the backward adds to the rows in use without re-zeroing the table.
      w.attach_grad_buffer(Tensor::zeros({V, d}, DType::F32, device));
      const double ms = time_fwd_bwd([&] { return ops::embedding(w, ids); }, {}, device, 20);
      bench::report(fmt::format("embedding_fwdbwd_V{}_d{}_N{}", V, d, N), ms);
    }
    // The fp32 rows keep the peer's names; the _tf32 and _bf16 rows time the same op under that
    // matmul precision (GPU only: the CPU always computes in fp32). 4 products of 2*N*d*V flops:
    // forward logits, backward recompute, dh and dweight.
    for (auto [N, d, V] : {std::tuple<int64_t, int64_t, int64_t>{128 * 200, 64, 3707}, {256 * 200, 128, 100000}}) {
      if (small && V > 10000) continue;
      Tensor h = random_input({N, d}, 4, device, true), e = random_input({V, d}, 5, device, true);
      Tensor targets = random_ids(N, 1, V, 6, device);
      for (MatmulPrecision precision : {MatmulPrecision::FP32, MatmulPrecision::TF32, MatmulPrecision::BF16}) {
        if (precision != MatmulPrecision::FP32 && device != Device::CUDA) continue;
        MatmulPrecisionGuard guard(precision);
        const double ms = time_fwd_bwd([&] { return ops::linear_cross_entropy(h, e, targets); }, {h, e}, device, 10);
        const std::string suffix =
            precision == MatmulPrecision::FP32 ? "" : std::string("_") + matmul_precision_name(precision);
        bench::report(fmt::format("ce_full_N{}_d{}_V{}{}", N, d, V, suffix), ms,
                      fmt::format(R"(, "TFLOPs": {:.1f})", 8.0 * N * d * V / ms / 1e9));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_ops: error: " << e.what() << "\n";
    return 1;
  }
}

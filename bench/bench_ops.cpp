// Building blocks, forward + backward through the op API, on the shapes of
// ../shared/bench/torch_ref.py --micro (same op names, so bench/compare.py pairs them): causal
// attention, embedding lookup, full-softmax cross-entropy over the catalogue. Backward is driven by
// a fixed random cotangent (loss = sum(out * g)), which adds one elementwise product and a sum to
// what the peer times.
//   bench_ops [--device cuda|cpu] [--small]   (--small: only the ML-1M-size shapes)
#include <functional>
#include <iostream>
#include <tuple>

#include "bench/bench_util.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/module.h"

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

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::BenchArgs args = bench::parse_bench_args(argc, argv, "bench_ops");
    const Device device = args.device;
    const bool small = args.small;
    attention_case(128, 1, 200, 64, device);
    if (!small) {
      attention_case(128, 4, 200, 64, device);
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
    for (auto [N, d, V] : {std::tuple<int64_t, int64_t, int64_t>{128 * 200, 64, 3707}, {256 * 200, 128, 100000}}) {
      if (small && V > 10000) continue;
      Tensor h = random_input({N, d}, 4, device, true), e = random_input({V, d}, 5, device, true);
      Tensor targets = random_ids(N, 1, V, 6, device);
      const double ms = time_fwd_bwd([&] { return ops::linear_cross_entropy(h, e, targets); }, {h, e}, device, 10);
      bench::report(fmt::format("ce_full_N{}_d{}_V{}", N, d, V), ms);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_ops: error: " << e.what() << "\n";
    return 1;
  }
}

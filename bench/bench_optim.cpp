// Optimizer benchmark on the shapes of ../shared/bench/torch_ref.py --micro: fused AdamW over 100M
// parameters, Muon on a d=1024 8-block transformer and on SASRec d=64. Prints one JSON line per
// case with the op names the peer uses, so bench/compare.py can pair them.
//   bench_optim [--device cuda|cpu] [--small]   (--small: only the SASRec-size Muon, for CPUs)
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <string>

#include "muonrec/bench/bench_util.h"
#include "muonrec/engine/device.h"
#include "muonrec/optim/adamw.h"
#include "muonrec/optim/muon.h"

using namespace muonrec;

namespace {

std::vector<NamedParameter> random_params(const std::vector<Shape>& shapes, Device device) {
  std::vector<NamedParameter> params;
  PhiloxGenerator gen(1);
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = init_normal(shapes[i], 1.0f, gen, device).set_requires_grad(true);
    p.set_grad(init_normal(shapes[i], 1.0f, gen, device));  // never time zeros
    params.push_back({"p" + std::to_string(i), p});
  }
  return params;
}

int64_t numel(const std::vector<NamedParameter>& params) {
  int64_t n = 0;
  for (const auto& p : params) n += p.tensor.numel();
  return n;
}

// Newton-Schulz matrix-product flops of one Muon step: per iteration and matrix with sides
// s <= l, A = X X^T (2 s^2 l), A A (2 s^3) and B X (2 s^2 l), each Gram product formed on the
// small side.
double newton_schulz_flops(const std::vector<NamedParameter>& params, int ns_steps) {
  double flops = 0;
  for (const auto& p : params) {
    const double s = static_cast<double>(std::min(p.tensor.dim(0), p.tensor.dim(1)));
    const double l = static_cast<double>(std::max(p.tensor.dim(0), p.tensor.dim(1)));
    flops += ns_steps * (4 * s * s * l + 2 * s * s * s);
  }
  return flops;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::BenchArgs args = bench::parse_bench_args(argc, argv, "bench_optim");
    const Device device = args.device;
    const bool small = args.small;
    if (!small) {
      // 6 x 4096^2 = 100.7M parameters. Traffic per parameter: read p, g, m, v and write p, m, v
      // (28 bytes), the figure the peer reports.
      auto params = random_params(std::vector<Shape>(6, Shape{4096, 4096}), device);
      AdamW adamw(params, {});
      const double ms = bench::median_ms([&] { adamw.step(); }, device, 10, 50);
      bench::report("adamw_fused_100M", ms, fmt::format(R"(, "GBps": {:.1f})", 28.0 * numel(params) / ms / 1e6));

      std::vector<Shape> d1024;
      for (int block = 0; block < 8; ++block)
        for (Shape s : {Shape{3072, 1024}, Shape{1024, 1024}, Shape{4096, 1024}, Shape{1024, 4096}}) d1024.push_back(s);
      auto big = random_params(d1024, device);
      MuonOptions o;
      o.adjust_lr = MuonAdjustLr::MatchRmsAdamW;
      Muon muon_big(big, o);
      const double muon_ms = bench::median_ms([&] { muon_big.step(); }, device, 3, 20);
      const int ns_steps = static_cast<int>(o.newton_schulz.coefficients.size());
      bench::report("muon_d1024_L8", muon_ms,
                    fmt::format(R"(, "TFLOPs": {:.1f})", newton_schulz_flops(big, ns_steps) / muon_ms / 1e9));
    }
    std::vector<Shape> sasrec;
    for (int block = 0; block < 2; ++block)
      for (Shape s : {Shape{192, 64}, Shape{64, 64}, Shape{64, 64}, Shape{64, 64}}) sasrec.push_back(s);
    auto small_params = random_params(sasrec, device);
    MuonOptions o;
    o.adjust_lr = MuonAdjustLr::MatchRmsAdamW;
    Muon muon_small(small_params, o);
    bench::report("muon_sasrec_d64_L2", bench::median_ms([&] { muon_small.step(); }, device, 3, 20));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_optim: error: " << e.what() << "\n";
    return 1;
  }
}

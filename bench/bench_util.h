// Shared by the benchmarks: the median of many repeats after a warm-up, measured with CUDA events
// on the GPU (so launch-bound work is timed as the device sees it) and a steady clock on the CPU;
// and the JSON line every benchmark prints (op names as ../shared/bench/torch_ref.py --micro).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "muonrec/engine/device.h"
#include "muonrec/engine/error.h"
#include "muonrec/models/run_log.h"
#ifdef MUONREC_WITH_CUDA
#include "muonrec/engine/cuda_check.h"
#endif

namespace muonrec::bench {

inline double median_ms(const std::function<void()>& fn, Device device, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) fn();
  device_synchronize();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
#ifdef MUONREC_WITH_CUDA
    if (device == Device::CUDA) {
      cudaEvent_t start, stop;
      CUDA_CHECK(cudaEventCreate(&start));
      CUDA_CHECK(cudaEventCreate(&stop));
      CUDA_CHECK(cudaEventRecord(start, current_stream()));
      fn();
      CUDA_CHECK(cudaEventRecord(stop, current_stream()));
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      CUDA_CHECK(cudaEventDestroy(start));
      CUDA_CHECK(cudaEventDestroy(stop));
      times.push_back(ms);
      continue;
    }
#endif
    auto t0 = std::chrono::steady_clock::now();
    fn();
    device_synchronize();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median_time(std::move(times));
}

struct BenchArgs {
  Device device = Device::CPU;
  bool small = false;  // only the small shapes (what a CPU can time)
};

// [--device auto|cpu|cuda] [--small]; throws with the usage line on anything else.
inline BenchArgs parse_bench_args(int argc, char** argv, const std::string& name) {
  std::string device = "auto";
  BenchArgs args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device") {
      MUONREC_CHECK(i + 1 < argc, "usage: {} [--device auto|cpu|cuda] [--small] (--device needs a value)", name);
      device = argv[++i];
    } else if (arg == "--small") {
      args.small = true;
    } else {
      MUONREC_FAIL("usage: {} [--device auto|cpu|cuda] [--small] (unknown argument '{}')", name, arg);
    }
  }
  args.device = parse_device(device);
  return args;
}

inline void report(const std::string& op, double ms, const std::string& extra = "") {
  std::cout << fmt::format(R"({{"kind": "micro", "impl": "muonrec", "op": "{}", "ms": {:.4f}{}}})", op, ms, extra)
            << std::endl;
}

}  // namespace muonrec::bench

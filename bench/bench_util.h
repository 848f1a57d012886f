// Shared by the benchmarks: the median of many repeats after a warm-up, measured with CUDA events
// on the GPU (so launch-bound work is timed as the device sees it) and a steady clock on the CPU;
// and the JSON line every benchmark prints (op names as ../shared/bench/torch_ref.py --micro).
#pragma once

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "engine/device.h"
#ifdef MUONREC_WITH_CUDA
#include "engine/cuda_check.h"
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
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

inline void report(const std::string& op, double ms, const std::string& extra = "") {
  std::cout << fmt::format(R"({{"kind": "micro", "impl": "muonrec", "op": "{}", "ms": {:.4f}{}}})", op, ms, extra)
            << std::endl;
}

}  // namespace muonrec::bench

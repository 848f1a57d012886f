// HSTU's log-scale time buckets, shared by the CPU reference and the CUDA kernel:
// bucket(dt) = clamp(floor(ln(max(|dt|, 1)) / 0.301), 0, 128), in double as torch_ref.time_buckets.
#pragma once

#include <cmath>
#include <cstdint>

#include "muonrec/engine/rng.h"  // MUONREC_HOST_DEVICE

namespace muonrec::kernels {

constexpr int64_t kHstuTimeBuckets = 129;

MUONREC_HOST_DEVICE int32_t hstu_time_bucket(int64_t dt) {
  const double gap = dt < 0 ? -static_cast<double>(dt) : static_cast<double>(dt);
  const double bucket = floor(log(gap < 1.0 ? 1.0 : gap) / 0.301);
  return static_cast<int32_t>(bucket < 0.0 ? 0.0 : (bucket > kHstuTimeBuckets - 1 ? kHstuTimeBuckets - 1 : bucket));
}

// Query i compares the timestamp of the next event (the last position reuses its own) with key j.
MUONREC_HOST_DEVICE int32_t hstu_time_bucket_at(const int64_t* timestamps, int64_t seq, int64_t i, int64_t j) {
  const int64_t next = timestamps[i + 1 < seq ? i + 1 : i];
  return hstu_time_bucket(next - timestamps[j]);
}

}  // namespace muonrec::kernels

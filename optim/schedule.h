// Learning-rate schedules, applied per optimizer step to each group's base rate.
#pragma once

#include <cstdint>
#include <string>

namespace muonrec {

struct LrSchedule {
  enum class Kind { Constant, Cosine };
  Kind kind = Kind::Constant;
  int64_t warmup_steps = 0;  // linear warmup from base/warmup to base over these steps
  int64_t total_steps = 0;   // cosine: the step at which the rate reaches min_lr
  float min_lr = 1e-6f;      // cosine floor (MuonRec anneals to 1e-6)

  // The rate for 0-based `step` of a group whose base rate is `base_lr`.
  float lr_at(int64_t step, float base_lr) const;
  std::string describe() const;
};

// "constant" or "cosine"; throws listing both.
LrSchedule::Kind parse_schedule_kind(const std::string& name);

}  // namespace muonrec

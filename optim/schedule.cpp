#include "muonrec/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/error.h"

namespace muonrec {

float LrSchedule::lr_at(int64_t step, float base_lr) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return base_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  if (kind == Kind::Constant) return base_lr;
  const double floor = std::min(static_cast<double>(min_lr), static_cast<double>(base_lr));
  const double span = std::max<int64_t>(total_steps - warmup_steps, 1);
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  return static_cast<float>(floor + (base_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

std::string LrSchedule::describe() const {
  std::string warmup = warmup_steps > 0 ? fmt::format(", linear warmup {} steps", warmup_steps) : "";
  if (kind == Kind::Constant) return "constant" + warmup;
  return fmt::format("cosine to {} over {} steps{}", min_lr, total_steps, warmup);
}

LrSchedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return LrSchedule::Kind::Constant;
  if (name == "cosine") return LrSchedule::Kind::Cosine;
  MUONREC_FAIL("unknown schedule '{}' (available: constant, cosine)", name);
}

}  // namespace muonrec

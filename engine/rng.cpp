#include "muonrec/engine/rng.h"

#include <cmath>

namespace muonrec {

float PhiloxGenerator::normal() {
  Philox4x32 r = philox4x32(0, next_offset(), seed_);
  // u1 in (0, 1] so the log is finite.
  double u1 = (static_cast<double>(r.v[0]) + 1.0) / 4294967296.0;
  double u2 = static_cast<double>(r.v[1]) / 4294967296.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

}  // namespace muonrec

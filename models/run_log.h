// What every training loop prints and writes the same way: progress lines, durations and JSONL
// metrics records.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "muonrec/engine/tensor.h"

namespace muonrec {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The progress lines of a training loop: "epoch e/E  step s/S  loss L[  grad-norm g]  r steps/s
// ETA t". Step losses stay on the device until a line is printed (every `interval_seconds`, and
// at an epoch's last step), so steps in between never wait for the device.
class ProgressLog {
 public:
  ProgressLog(std::ostream& log, double interval_seconds, int64_t epochs, int64_t steps_per_epoch);
  void start_epoch(int64_t epoch);  // clears the epoch's losses
  void add_loss(const Tensor& loss);  // a step's one-element loss, on any device
  // After step `step_in_epoch` (1-based): prints a line when it is due. grad_norm: the latest
  // step's norm when clipping (or undefined); steps_per_second and steps_left give the ETA. Throws
  // when a loss it read is not finite (the run diverged).
  void after_step(int64_t step_in_epoch, const Tensor& grad_norm, double steps_per_second, int64_t steps_left);
  // The mean loss of the epoch's steps read so far: all of them once its last step was printed.
  double epoch_loss() const;

 private:
  std::ostream& log_;
  double interval_seconds_;
  int64_t epochs_, steps_per_epoch_, epoch_ = 0;
  Clock::time_point last_line_ = Clock::now();
  std::vector<Tensor> pending_;
  double loss_sum_ = 0;
  int64_t loss_count_ = 0;
};

// For long evaluations (TIGER's beam search over every user): a function to call with the users
// done so far and the total, which prints "WHAT: d/N users  r users/s  ETA t" at most every
// `interval_seconds` (nothing when the whole pass takes less). A call with 0 done starts a pass:
// the rate counts from there.
std::function<void(int64_t, int64_t)> users_progress(std::ostream& log, double interval_seconds, std::string what);

// "m:ss", or "h:mm:ss" from an hour on, to the nearest second.
std::string format_duration(double seconds);
// The median of measured times (0 for none); of an even count the upper middle, so the time
// reported is one that was measured.
double median_time(std::vector<double> times);
// Appends one line (a JSON object) to `path`; does nothing when path is empty. A file whose last
// line was cut short gets a newline first, so the new record stands on a line of its own. Throws
// naming the file when it cannot be opened.
void append_jsonl_line(const std::string& path, const std::string& json_line);

}  // namespace muonrec

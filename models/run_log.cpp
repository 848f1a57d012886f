#include "muonrec/models/run_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>

#include "muonrec/engine/error.h"

namespace muonrec {

std::string format_duration(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

double median_time(std::vector<double> times) {
  if (times.empty()) return 0.0;
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

ProgressLog::ProgressLog(std::ostream& log, double interval_seconds, int64_t epochs, int64_t steps_per_epoch)
    : log_(log), interval_seconds_(interval_seconds), epochs_(epochs), steps_per_epoch_(steps_per_epoch) {}

void ProgressLog::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  pending_.clear();
  loss_sum_ = 0;
  loss_count_ = 0;
}

void ProgressLog::add_loss(const Tensor& loss) { pending_.push_back(loss); }

void ProgressLog::after_step(int64_t step_in_epoch, const Tensor& grad_norm, double steps_per_second,
                             int64_t steps_left) {
  if (seconds_since(last_line_) < interval_seconds_ && step_in_epoch != steps_per_epoch_) return;
  for (const Tensor& loss : pending_) loss_sum_ += loss.item();
  loss_count_ += static_cast<int64_t>(pending_.size());
  pending_.clear();
  const std::string norm = grad_norm.defined() ? fmt::format("  grad-norm {:.3f}", grad_norm.item()) : "";
  log_ << fmt::format("epoch {}/{}  step {}/{}  loss {:.4f}{}  {:.1f} steps/s  ETA {}\n", epoch_, epochs_,
                      step_in_epoch, steps_per_epoch_, epoch_loss(), norm, steps_per_second,
                      format_duration(steps_left / std::max(steps_per_second, 1e-9)))
       << std::flush;
  last_line_ = Clock::now();
  // A diverged run stops here, before its epoch is evaluated or saved: the checkpoints written so
  // far keep their finite parameters, and no more device time goes into NaNs.
  MUONREC_CHECK(std::isfinite(loss_sum_),
                "training diverged: the loss is {} at epoch {}, step {} (try a lower learning rate, "
                "--warmup-steps or --clip-grad-norm); the checkpoints written before this epoch are kept",
                epoch_loss(), epoch_, step_in_epoch);
}

double ProgressLog::epoch_loss() const { return loss_sum_ / static_cast<double>(std::max<int64_t>(loss_count_, 1)); }

std::function<void(int64_t, int64_t)> users_progress(std::ostream& log, double interval_seconds, std::string what) {
  // One function serves every pass of a run (each validation): a pass restarts the clock.
  struct Clocks {
    Clock::time_point pass_start = Clock::now(), last_line = pass_start;
  };
  auto clocks = std::make_shared<Clocks>();
  return [&log, interval_seconds, what = std::move(what), clocks](int64_t done, int64_t total) {
    if (done == 0) {
      *clocks = Clocks{};
      return;
    }
    if (done >= total || seconds_since(clocks->last_line) < interval_seconds) return;
    const double per_second = static_cast<double>(done) / std::max(seconds_since(clocks->pass_start), 1e-9);
    log << fmt::format("{}: {}/{} users  {:.1f} users/s  ETA {}\n", what, done, total, per_second,
                       format_duration(static_cast<double>(total - done) / std::max(per_second, 1e-9)))
        << std::flush;
    clocks->last_line = Clock::now();
  };
}

namespace {
// Whether the file exists and its last byte is not a newline: a record cut short (a killed run, a
// full disk), which the next record must not be glued to.
bool ends_mid_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return false;
  in.seekg(-1, std::ios::end);
  return in.get() != '\n';
}
}  // namespace

void append_jsonl_line(const std::string& path, const std::string& json_line) {
  if (path.empty()) return;
  const bool cut_short = ends_mid_line(path);
  std::ofstream out(path, std::ios::app);
  MUONREC_CHECK(out, "{}: cannot open the metrics file for appending", path);
  if (cut_short) out << '\n';
  out << json_line << '\n';
  out.flush();
  // A record cut short (a full disk, a file-size limit) would leave a file no reader can parse.
  MUONREC_CHECK(out.good(), "{}: writing a metrics record failed (disk full?); the record is cut short", path);
}

}  // namespace muonrec

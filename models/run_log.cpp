#include "models/run_log.h"

#include <fmt/format.h>

#include <cstdint>
#include <fstream>

#include "engine/error.h"

namespace muonrec {

std::string format_duration(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

void append_jsonl_line(const std::string& path, const std::string& json_line) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::app);
  MUONREC_CHECK(out, "{}: cannot open the metrics file for appending", path);
  out << json_line << '\n';
}

}  // namespace muonrec

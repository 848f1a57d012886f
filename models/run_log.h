// What every training loop prints and writes the same way: durations in progress lines and
// JSONL metrics records.
#pragma once

#include <string>

namespace muonrec {

// "m:ss", or "h:mm:ss" from an hour on.
std::string format_duration(double seconds);
// Appends one line (a JSON object) to `path`; does nothing when path is empty. Throws naming the
// file when it cannot be opened.
void append_jsonl_line(const std::string& path, const std::string& json_line);

}  // namespace muonrec

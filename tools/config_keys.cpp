#include "tools/config_keys.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <string_view>

#include "data/text_fields.h"
#include "engine/error.h"

namespace muonrec {
namespace {

// The line without a '#' comment (one outside double quotes).
std::string_view without_comment(std::string_view line) {
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '"') quoted = !quoted;
    if (line[i] == '#' && !quoted) return line.substr(0, i);
  }
  return line;
}

std::string_view unquoted(std::string_view key) {
  if (key.size() >= 2 && key.front() == '"' && key.back() == '"') return key.substr(1, key.size() - 2);
  return key;
}

}  // namespace

std::string config_file_argument(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) return argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) return std::string(arg.substr(9));
  }
  return "";
}

void refuse_repeated_config_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return;  // CLI11 reports a file it cannot read
  std::map<std::string, int64_t> line_of_key;
  std::string section;
  int64_t number = 0;
  for (std::string text; std::getline(in, text);) {
    ++number;
    const std::string_view line = data::trim(without_comment(text));
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = std::string(data::trim(line.substr(1, line.find(']') - 1)));
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) continue;  // CLI11 reports the malformed line
    const std::string key = std::string(section.empty() ? "" : section + ".") +
                            std::string(unquoted(data::trim(line.substr(0, equals))));
    const auto [first, inserted] = line_of_key.emplace(key, number);
    MUONREC_CHECK(inserted, "{}, line {}: '{}' is set again (first on line {}); a config file sets each flag once",
                  path, number, key, first->second);
  }
}

}  // namespace muonrec

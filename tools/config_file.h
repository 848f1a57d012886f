// Reading a --config file where CLI11 2.1 falls short of TOML.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace muonrec {

// The --config file a command line names ("--config FILE" or "--config=FILE"; "" when none).
std::string config_file_argument(int argc, const char* const* argv);

// Throws, naming the file and line, on what CLI11 would misread:
// - a key set twice ("train.epochs", or "epochs" under a [train] section, or two names of one flag,
//   as flag_of_key maps them): CLI11 refuses a repeat on the next line but takes the first of two
//   apart, so a recorded settings file with an override appended would run with the recorded value,
//   silently;
// - a NUL byte (TomlConfigReader hands CLI11 NUL as its comment character).
// Returns the line that sets each flag (flag_of_key's names), for messages about the file's values.
std::map<std::string, int64_t> check_config_file(const std::string& path,
                                                 const std::function<std::string(const std::string&)>& flag_of_key);

// `message` (CLI11's words on a bad value, naming the flag: "Could not convert: --epochs = abc") with
// the file and line that set it inserted before its first line break, where a flag it names as a
// whole word came from the file (in `lines`, keys "train.FLAG") and was not typed on the command line:
// of several, the one named first. For CLI11's errors and for a run's checks of its settings alike.
std::string with_config_place(const std::string& message, const std::string& path,
                              const std::map<std::string, int64_t>& lines, int argc, const char* const* argv);

// CLI11's TOML reader, with comments cut as TOML cuts them: from a '#' outside quotes. CLI11 cuts at
// the first '#' on a line, so a recorded run whose data path holds one (train.data="runs/#3/a.txt")
// would not read back.
class TomlConfigReader : public CLI::ConfigTOML {
 public:
  TomlConfigReader();
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace muonrec

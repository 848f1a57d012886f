// Reading a --config file where CLI11 2.1 falls short of TOML.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
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
void check_config_file(const std::string& path, const std::function<std::string(const std::string&)>& flag_of_key);

// CLI11's TOML reader, with comments cut as TOML cuts them: from a '#' outside quotes. CLI11 cuts at
// the first '#' on a line, so a recorded run whose data path holds one (train.data="runs/#3/a.txt")
// would not read back.
class TomlConfigReader : public CLI::ConfigTOML {
 public:
  TomlConfigReader();
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace muonrec

// Checks on a --config file that CLI11 does not make.
#pragma once

#include <string>

namespace muonrec {

// The --config file a command line names ("--config FILE" or "--config=FILE"; "" when none).
std::string config_file_argument(int argc, const char* const* argv);

// Throws, naming the file and both lines, when a key is set twice ("train.epochs", or "epochs" under
// a [train] section): CLI11 refuses a repeat on the next line but takes the first of two apart, so a
// recorded settings file with an override appended would run with the recorded value, silently.
void refuse_repeated_config_keys(const std::string& path);

}  // namespace muonrec

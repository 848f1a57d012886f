// Files replaced whole or not at all: written to PATH.tmp, flushed to the disk and renamed over
// PATH, so a full disk, a file-size limit, a crash or an error before the end never leaves PATH cut
// short (a checkpoint, a list of recommendations) or emptied. A symbolic link's target is what is
// replaced (the link stays), and a device or FIFO (/dev/null, /dev/stdout) is written in place.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace muonrec {

// Writes the pieces, in order, as the new contents of `path`; throws naming the file, leaving `path`
// as it was, when any step fails.
void replace_file(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces);
void replace_file(const std::string& path, std::string_view text);

// Before any work, so that a bad output path fails at once rather than after hours of training: the
// file's directory must exist and be writable, the path must not be a directory, and it must not be
// one of `inputs` (writing it would destroy the data or the checkpoint being read; links and '..'
// resolved). `flag` names the output in the message, e.g. "eval: --ranks".
void check_output_file(const std::string& flag, const std::string& path, const std::vector<std::string>& inputs);

}  // namespace muonrec

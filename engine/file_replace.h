// Files replaced whole or not at all: written to PATH.tmp, flushed to the disk and renamed over
// PATH, so a full disk, a file-size limit, a crash or an error before the end never leaves PATH cut
// short (a checkpoint, a list of recommendations) or emptied.
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

}  // namespace muonrec

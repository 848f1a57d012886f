#include "muonrec/engine/file_replace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "muonrec/engine/error.h"

namespace muonrec {

void replace_file(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MUONREC_CHECK(fd >= 0, "{}: cannot write it: {} (it is written as {} first, then renamed)", path,
                std::strerror(errno), tmp);
  auto fail = [&](const char* what) {
    const int error = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    MUONREC_FAIL("{}: {} failed: {}; {} is left as it was", tmp, what, std::strerror(error), path);
  };
  for (const auto& [data, size] : pieces) {
    const char* bytes = static_cast<const char*>(data);
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd, bytes + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write");
      done += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    MUONREC_FAIL("{}: close failed: {}; {} is left as it was", tmp, std::strerror(error), path);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    MUONREC_FAIL("{}: cannot rename {} into place: {}; {} is left as it was", path, tmp, std::strerror(error), path);
  }
}

void replace_file(const std::string& path, std::string_view text) { replace_file(path, {{text.data(), text.size()}}); }

void check_output_file(const std::string& flag, const std::string& path, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path();
  const std::string directory = parent.empty() ? "." : parent.string();
  std::error_code error;
  MUONREC_CHECK(fs::is_directory(directory, error), "{} {}: there is no directory {}", flag, path, directory);
  MUONREC_CHECK(::access(directory.c_str(), W_OK) == 0, "{} {}: the directory {} is not writable", flag, path,
                directory);
  MUONREC_CHECK(!fs::is_directory(path, error), "{} {}: it is a directory; name a file", flag, path);
  for (const std::string& input : inputs)
    MUONREC_CHECK(input.empty() || !fs::equivalent(path, input, error),
                  "{} {} is the input file {}: writing it would destroy it; give another path", flag, path, input);
}

}  // namespace muonrec

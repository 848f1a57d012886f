#include "muonrec/engine/file_replace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

namespace fs = std::filesystem;

// The file a write to `path` lands in: a symbolic link's target (a rename over the link would
// replace the link and leave its target as it was), else `path`. A link to a file not there yet
// (which canonical() cannot resolve) is followed link by link.
std::string file_written(const std::string& path) {
  constexpr int kMaxLinks = 40;  // as the kernel's limit: a loop of links ends here
  fs::path file = path;
  std::error_code error;
  int hops = 0;
  for (; hops < kMaxLinks && fs::is_symlink(fs::symlink_status(file, error)); ++hops) {
    const fs::path target = fs::read_symlink(file, error);
    if (error) break;
    file = target.is_absolute() ? target : file.parent_path() / target;
  }
  return hops == 0 ? path : file.lexically_normal().string();
}

// Whether `file` exists and is no regular file or directory (a device such as /dev/null, a FIFO):
// written in place, as renaming a file over it would replace the device node with a plain file.
bool written_in_place(const std::string& file) {
  std::error_code error;
  const fs::file_status status = fs::status(file, error);
  return !error && fs::exists(status) && !fs::is_regular_file(status) && !fs::is_directory(status);
}

// Writes every piece to `fd`; false (errno set) when a write fails.
bool write_pieces(int fd, const std::vector<std::pair<const void*, size_t>>& pieces) {
  for (const auto& [data, size] : pieces) {
    const char* bytes = static_cast<const char*>(data);
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd, bytes + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
  }
  return true;
}

void write_in_place(const std::string& path, const std::string& file,
                    const std::vector<std::pair<const void*, size_t>>& pieces) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  MUONREC_CHECK(fd >= 0, "{}: cannot write it: {}", path, std::strerror(errno));
  const bool written = write_pieces(fd, pieces);
  const int error = errno;
  ::close(fd);
  MUONREC_CHECK(written, "{}: write failed: {}", path, std::strerror(error));
}

// The rename is durable once the directory's entry is on the disk too (best effort: some file
// systems cannot sync a directory).
void sync_directory_of(const std::string& file) {
  const fs::path parent = fs::path(file).parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void replace_file(const std::string& given_path, const std::vector<std::pair<const void*, size_t>>& pieces) {
  const std::string path = file_written(given_path);
  if (written_in_place(path)) return write_in_place(given_path, path, pieces);
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
  if (!write_pieces(fd, pieces)) fail("write");
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
  sync_directory_of(path);
}

void replace_file(const std::string& path, std::string_view text) { replace_file(path, {{text.data(), text.size()}}); }

void check_output_file(const std::string& flag, const std::string& path, const std::vector<std::string>& inputs) {
  const std::string file = file_written(path);
  const fs::path parent = fs::path(file).parent_path();
  const std::string directory = parent.empty() ? "." : parent.string();
  std::error_code error;
  MUONREC_CHECK(fs::is_directory(directory, error), "{} {}: there is no directory {}", flag, path, directory);
  if (written_in_place(file)) {
    MUONREC_CHECK(::access(file.c_str(), W_OK) == 0, "{} {}: it is not writable", flag, path);
  } else {
    MUONREC_CHECK(::access(directory.c_str(), W_OK) == 0, "{} {}: the directory {} is not writable", flag, path,
                  directory);
  }
  MUONREC_CHECK(!fs::is_directory(path, error), "{} {}: it is a directory; name a file", flag, path);
  for (const std::string& input : inputs)
    MUONREC_CHECK(input.empty() || !fs::equivalent(path, input, error),
                  "{} {} is the input file {}: writing it would destroy it; give another path", flag, path, input);
}

}  // namespace muonrec

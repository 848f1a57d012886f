#include "engine/host_block_cache.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/error.h"

namespace muonrec {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kDefaultLimit = size_t{4} << 30;

size_t limit_from_environment() {
  const char* text = std::getenv("MUONREC_HOST_CACHE_MB");
  if (!text || !*text) return kDefaultLimit;
  char* end = nullptr;
  const unsigned long long megabytes = std::strtoull(text, &end, 10);
  MUONREC_CHECK(*end == '\0' && text[0] != '-', "MUONREC_HOST_CACHE_MB='{}' is not a whole number of MiB", text);
  return static_cast<size_t>(megabytes) << 20;
}

class HostBlockCache {
 public:
  void* allocate(size_t bytes) {
    const size_t size = host_block_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* block = it->second.back();
        it->second.pop_back();
        cached_ -= size;
        return block;
      }
    }
    void* block = std::aligned_alloc(kAlignment, size);
    if (!block) {
      release_all();  // idle blocks of other classes may make room
      block = std::aligned_alloc(kAlignment, size);
    }
    MUONREC_CHECK(block != nullptr, "out of host memory allocating {} bytes", bytes);
    return block;
  }

  void release(void* block, size_t bytes) {
    const size_t size = host_block_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + size <= limit()) {
        free_[size].push_back(block);
        cached_ += size;
        return;
      }
    }
    std::free(block);
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    limit_known_ = true;
    for (auto& [size, blocks] : free_) {
      while (cached_ > limit_ && !blocks.empty()) {
        std::free(blocks.back());
        blocks.pop_back();
        cached_ -= size;
      }
    }
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* block : blocks) std::free(block);
    free_.clear();
    cached_ = 0;
  }

 private:
  size_t limit() {  // under mutex_
    if (!limit_known_) {
      limit_ = limit_from_environment();
      limit_known_ = true;
    }
    return limit_;
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = 0;
  bool limit_known_ = false;
};

// Never destroyed: tensors held by other statics may be freed after this file's statics would be.
HostBlockCache& cache() {
  static HostBlockCache* instance = new HostBlockCache;
  return *instance;
}

}  // namespace

size_t host_block_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t power = 4096;
  while (power * 2 <= bytes) power *= 2;
  const size_t step = power / 8;  // >= 512, a multiple of kAlignment
  return (bytes + step - 1) / step * step;
}

void* host_allocate(size_t bytes) { return cache().allocate(bytes); }
void host_release(void* data, size_t bytes) { cache().release(data, bytes); }
size_t host_cached_bytes() { return cache().cached(); }
void set_host_cache_limit(size_t bytes) { cache().set_limit(bytes); }
void release_cached_host_memory() { cache().release_all(); }

}  // namespace muonrec

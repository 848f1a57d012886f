#include "muonrec/engine/host_block_cache.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMaxDefaultLimit = size_t{4} << 30;
constexpr size_t kMaxOversize = 4;

std::optional<size_t> limit_from_environment() {
  const char* text = std::getenv("MUONREC_HOST_CACHE_MB");
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long megabytes = std::strtoull(text, &end, 10);
  MUONREC_CHECK(*end == '\0' && text[0] != '-', "MUONREC_HOST_CACHE_MB='{}' is not a whole number of MiB", text);
  MUONREC_CHECK(errno != ERANGE && megabytes <= (std::numeric_limits<size_t>::max() >> 20),
                "MUONREC_HOST_CACHE_MB='{}' is more MiB than a size can count", text);
  return static_cast<size_t>(megabytes) << 20;
}

class HostBlockCache {
 public:
  void* allocate(size_t bytes) {
    const size_t size = host_block_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      read_environment();
      // The smallest idle class that fits, up to kMaxOversize times the request: batches whose
      // shapes vary (TIGER cuts each batch to its longest history) then reuse the blocks of the
      // longest ones instead of faulting in fresh pages while those sit idle.
      auto it = by_size_.lower_bound(size);
      if (it != by_size_.end() && it->first <= kMaxOversize * size) {
        const size_t served = it->first;
        const auto entry = it->second.back();  // the most recently freed block of the class
        it->second.pop_back();
        if (it->second.empty()) by_size_.erase(it);
        void* block = entry->data;
        idle_.erase(entry);
        cached_ -= served;
        add_live(served);
        if (served != size) oversized_[block] = served;
        return block;
      }
    }
    void* block = std::aligned_alloc(kAlignment, size);
    if (!block) {
      release_all();  // idle blocks of other classes may make room
      block = std::aligned_alloc(kAlignment, size);
    }
    MUONREC_CHECK(block != nullptr, "out of host memory allocating {} bytes", bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    add_live(size);
    return block;
  }

  void release(void* block, size_t bytes) {
    size_t size = host_block_size(bytes);
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // A block served from a larger class goes back to that class.
      if (const auto it = oversized_.find(block); it != oversized_.end()) {
        size = it->second;
        oversized_.erase(it);
      }
      live_ -= size;
      if (size > limit()) {
        evicted.push_back(block);
      } else {
        by_size_[size].push_back(idle_.insert(idle_.end(), IdleBlock{block, size}));
        cached_ += size;
        trim(evicted);
      }
    }
    for (void* p : evicted) std::free(p);
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  void set_limit(size_t bytes) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fixed_limit_ = bytes;
      trim(evicted);
    }
    for (void* p : evicted) std::free(p);
  }

  void release_all() {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const IdleBlock& b : idle_) evicted.push_back(b.data);
      idle_.clear();
      by_size_.clear();
      cached_ = 0;
    }
    for (void* p : evicted) std::free(p);
  }

 private:
  struct IdleBlock {
    void* data;
    size_t size;
  };
  using Entry = std::list<IdleBlock>::iterator;

  void add_live(size_t size) {  // under mutex_
    live_ += size;
    peak_live_ = std::max(peak_live_, live_);
  }

  // MUONREC_HOST_CACHE_MB, read at the first allocation, which may throw for a bad value (release
  // may not: it runs in destructors); until it reads well, every allocation throws.
  void read_environment() {  // under mutex_
    if (environment_read_) return;
    const std::optional<size_t> from_environment = limit_from_environment();
    environment_read_ = true;
    if (!fixed_limit_) fixed_limit_ = from_environment;
  }

  // Idle bytes allowed: a fixed limit when one was set, else as many as were ever live at once
  // (up to 4 GiB), so the cache at most doubles the peak footprint.
  size_t limit() const {  // under mutex_
    return fixed_limit_ ? *fixed_limit_ : std::min(peak_live_, kMaxDefaultLimit);
  }

  // Evicts the least recently freed blocks until the idle bytes fit the limit.
  void trim(std::vector<void*>& evicted) {  // under mutex_
    const size_t allowed = limit();
    while (cached_ > allowed) {
      const IdleBlock oldest = idle_.front();
      const auto same_size = by_size_.find(oldest.size);
      same_size->second.erase(std::find(same_size->second.begin(), same_size->second.end(), idle_.begin()));
      if (same_size->second.empty()) by_size_.erase(same_size);
      idle_.pop_front();
      cached_ -= oldest.size;
      evicted.push_back(oldest.data);
    }
  }

  std::mutex mutex_;
  std::list<IdleBlock> idle_;                             // oldest first
  std::map<size_t, std::vector<Entry>> by_size_;  // classes with idle blocks, each newest last
  std::unordered_map<void*, size_t> oversized_;   // live blocks served from a larger class: its size
  size_t cached_ = 0, live_ = 0, peak_live_ = 0;
  std::optional<size_t> fixed_limit_;
  bool environment_read_ = false;
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
  while (power <= bytes / 2) power *= 2;  // not power * 2 <= bytes: that wraps for bytes >= 2^63
  const size_t step = power / 8;  // >= 512, a multiple of kAlignment
  // No machine has such a block; rounding it up would wrap to a small one.
  MUONREC_CHECK(bytes <= std::numeric_limits<size_t>::max() - (step - 1), "out of host memory allocating {} bytes",
                bytes);
  return (bytes + step - 1) / step * step;
}

void* host_allocate(size_t bytes) { return cache().allocate(bytes); }
void host_release(void* data, size_t bytes) { cache().release(data, bytes); }
size_t host_cached_bytes() { return cache().cached(); }
void set_host_cache_limit(size_t bytes) { cache().set_limit(bytes); }
void release_cached_host_memory() { cache().release_all(); }

}  // namespace muonrec

// Host memory for CPU tensors, kept for reuse after a tensor dies. A training step allocates and
// frees the same sizes every step; straight from malloc, blocks above glibc's mmap threshold
// (activations of a few MiB and more) come fresh from the kernel each time, so every step pays a
// page fault and the kernel's zeroing for every page it touches (over a quarter of a CPU TIGER step
// before this cache). Blocks are rounded up to size classes (eight per power of two, at most 12.5%
// slack) and a freed block waits in its class's free list for the next request of that class, or
// of a smaller one down to a quarter of its size when its own class has nothing idle (then it
// returns to its own class when freed).
//
// Idle blocks are bounded: by default to the most bytes ever live at once (up to 4 GiB), so caching
// at most doubles the peak footprint; MUONREC_HOST_CACHE_MB (read at first use) or
// set_host_cache_limit fixes the bound instead (0 turns caching off). Beyond the bound, the least
// recently freed blocks go back to the system first, so sizes of a past phase (evaluation batches)
// make room for those in use now.
#pragma once

#include <cstddef>

namespace muonrec {

// 64-byte aligned (a cache line: vector loads never split lines); throws when memory runs out.
void* host_allocate(size_t bytes);
// Returns a block from host_allocate; `bytes` is the size it was asked for.
void host_release(void* data, size_t bytes);

// The size a request of `bytes` is served with (its class).
size_t host_block_size(size_t bytes);
// Bytes in idle cached blocks.
size_t host_cached_bytes();
// Fixes the bound on idle cached bytes; lowering it frees the oldest idle blocks down to it.
void set_host_cache_limit(size_t bytes);
// Frees every idle block.
void release_cached_host_memory();

}  // namespace muonrec

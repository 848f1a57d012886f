// NVTX ranges: every layer and kernel launcher opens one so Nsight shows the engine's structure.
#pragma once

#if defined(MUONREC_WITH_CUDA) && __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
namespace muonrec {
class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};
}  // namespace muonrec
#define MUONREC_NVTX_CONCAT_(a, b) a##b
#define MUONREC_NVTX_CONCAT(a, b) MUONREC_NVTX_CONCAT_(a, b)
#define NVTX_RANGE(name) ::muonrec::NvtxRange MUONREC_NVTX_CONCAT(nvtx_range_, __LINE__)(name)
#else
#define NVTX_RANGE(name) ((void)0)
#endif

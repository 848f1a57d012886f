// Devices and the CUDA context the engine runs on (one stream per process; see DESIGN.md).
#pragma once

#include <cstdint>
#include <string>

namespace muonrec {

enum class Device : uint8_t { CPU, CUDA };

const char* device_name(Device device);
// "cpu", "cuda" or "auto" (CUDA when a GPU is visible, else CPU). Throws on anything else, and on
// "cuda" when the engine was built without CUDA or no GPU is visible.
Device parse_device(const std::string& name);

// True when the engine has its CUDA backend and the driver reports at least one GPU.
bool cuda_available();
// A one-line reason when cuda_available() is false (for skip messages and errors).
std::string cuda_unavailable_reason();
// Blocks until all queued GPU work is done (no-op without CUDA).
void device_synchronize();

}  // namespace muonrec

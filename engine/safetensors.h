// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header (dtype, shape, data_offsets per tensor, optional "__metadata__" string map), then
// the raw little-endian bytes. Used for checkpoints and for the PyTorch conformance fixtures.
#pragma once

#include <map>
#include <string>

#include "engine/tensor.h"

namespace muonrec {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU tensors
  std::map<std::string, std::string> metadata;

  // The tensor called `name`; throws naming the file and the missing tensor.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const { return tensors.count(name) > 0; }
  std::string path;
};

// Reads and validates a whole file (header bounds, offsets, sizes, dtypes); errors name the file
// and the offending tensor. F64 tensors are converted to F32 on load.
SafetensorsFile load_safetensors(const std::string& path);

// Writes tensors (any device; copied to the host) atomically: a temporary file renamed into place,
// so an interrupted save never leaves a truncated checkpoint behind.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace muonrec

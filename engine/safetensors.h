// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header (dtype, shape, data_offsets per tensor, optional "__metadata__" string map), then
// the raw little-endian bytes. Used for checkpoints and for the PyTorch conformance fixtures.
#pragma once

#include <limits>
#include <map>
#include <new>
#include <string>

#include "muonrec/engine/error.h"
#include "muonrec/engine/tensor.h"

namespace muonrec {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU tensors
  std::map<std::string, std::string> metadata;

  // The tensor called `name`; throws naming the file and the missing tensor.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const { return tensors.count(name) > 0; }
  // Throws, naming the file, the tensor and the element, where the F32 tensor `name` (a `what`:
  // "parameter", "optimizer state") holds a value that is not finite or is below `lowest`: a damaged
  // file, or the state of a run that diverged, would otherwise load silently.
  void check_values(const std::string& name, const char* what,
                    float lowest = -std::numeric_limits<float>::infinity()) const;
  std::string path;
};

// Reads and validates a whole file (header bounds, offsets, sizes, dtypes); errors name the file
// and the offending tensor. F64 tensors are converted to F32 on load.
SafetensorsFile load_safetensors(const std::string& path);

// Runs `build`, which makes something of `file` (a model from its config and tensors), so that what
// goes wrong names the file: an error without its path gets it in front, and an allocation that
// fails (a damaged config asking for terabytes) becomes an error rather than std::bad_alloc.
template <typename Build>
auto with_checkpoint_named(const SafetensorsFile& file, Build build) -> decltype(build()) {
  try {
    return build();
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(file.path, 0) == 0) throw;
    throw Error(fmt::format("{}: {}", file.path, e.what()));
  } catch (const std::bad_alloc&) {
    MUONREC_FAIL("{}: its config asks for more memory than there is (a damaged file?)", file.path);
  }
}

// Writes tensors (any device; copied to the host) atomically: a temporary file renamed into place,
// so an interrupted save never leaves a truncated checkpoint behind.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace muonrec

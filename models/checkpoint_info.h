// What a checkpoint holds, in a few lines a person can read (`muonrec info --checkpoint FILE`):
// the model, its parameter count, the data it was trained on, where the training stood, the
// metrics it recorded, the engine version and the command that wrote it. Uses the metadata and
// the tensor shapes only.
#pragma once

#include <string>

#include "muonrec/engine/safetensors.h"

namespace muonrec {

// Throws, naming the file, when it is not a muonrec checkpoint (no model config).
std::string describe_checkpoint(const SafetensorsFile& file);

}  // namespace muonrec

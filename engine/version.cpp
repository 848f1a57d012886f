#include "muonrec/engine/version.h"

namespace muonrec {

const char* version() { return MUONREC_VERSION; }

}  // namespace muonrec

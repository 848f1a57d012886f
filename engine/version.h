// The engine's version, as the project() of the top-level CMakeLists.txt declares it: recorded in
// metrics files and printed by `muonrec info`.
#pragma once

namespace muonrec {

const char* version();

}  // namespace muonrec

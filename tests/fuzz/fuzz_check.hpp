#pragma once
// Shared by the decoder fuzzers: an invariant that does not hold is a finding, reported in words
// before libFuzzer saves the input (abort() -> "deadly signal").
#include <cstdio>
#include <cstdlib>

namespace mcuflash::fuzz {

inline void require(bool holds, const char* what) {
    if (holds) return;
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
}

}  // namespace mcuflash::fuzz

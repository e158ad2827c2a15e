# Precompiled headers for the targets with the most translation units: the library headers every
# one of their files parses (fmt, the standard containers; CLI11 and nlohmann-json in the commands;
# GoogleTest in the tests) are parsed once per target instead of once per file. This, with line-table
# debug information (scripts/test.sh), is what keeps CI's four builds inside its hour (docs/testing.md).
# -DMCUFLASH_PCH=OFF builds without them, which also shows a file that forgot an #include.
option(MCUFLASH_PCH "Precompile the heavy library headers of the largest targets" ON)

set(MCUFLASH_PCH_COMMON <fmt/format.h> <algorithm> <chrono> <cstdint> <cstring> <functional> <memory>
    <optional> <span> <string> <vector> <map> <deque> <filesystem>)

# mcuflash_precompile(TARGET [EXTRA_HEADER...]): the common headers and the extra ones.
function(mcuflash_precompile target)
  if(MCUFLASH_PCH)
    target_precompile_headers(${target} PRIVATE ${MCUFLASH_PCH_COMMON} ${ARGN})
  endif()
endfunction()

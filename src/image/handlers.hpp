#pragma once
// Internal: each format file exposes its handler; format.cpp lists them in the registry table.
#include "image/format.hpp"

namespace mcuflash::image {

FormatHandler intel_hex_handler();
FormatHandler srecord_handler();
FormatHandler elf_handler();
FormatHandler binary_handler();
FormatHandler uf2_handler();

}  // namespace mcuflash::image

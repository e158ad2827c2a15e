# arm64 (64-bit Raspberry Pi OS, Debian arm64): see debian-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(triplet aarch64-linux-gnu)
set(qemu qemu-aarch64-static)
set(MCUFLASH_DEB_ARCH arm64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)

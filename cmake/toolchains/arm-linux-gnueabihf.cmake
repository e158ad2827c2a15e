# armhf (32-bit Raspberry Pi OS, Debian armhf): see debian-cross.cmake.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(triplet arm-linux-gnueabihf)
set(qemu qemu-arm-static)
set(MCUFLASH_DEB_ARCH armhf)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)

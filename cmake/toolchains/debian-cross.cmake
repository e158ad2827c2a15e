# Shared by the per-architecture toolchain files: Debian's cross compiler for ${triplet}, the headers
# and libraries of a Debian root of that architecture (MCUFLASH_SYSROOT, made by scripts/cross.sh with
# mmdebstrap), and qemu-user to run what was built (the unit and sim tiers, the man page generator).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${triplet}-gcc)
set(CMAKE_CXX_COMPILER ${triplet}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${triplet})
# Debian's multiarch folder, which GNUInstallDirs gives only when not cross-compiling.
set(CMAKE_INSTALL_LIBDIR lib/${triplet} CACHE PATH "object code libraries (Debian multiarch)")

if(NOT DEFINED ENV{MCUFLASH_SYSROOT} OR NOT IS_DIRECTORY "$ENV{MCUFLASH_SYSROOT}/usr/include")
  message(FATAL_ERROR "set MCUFLASH_SYSROOT to a Debian root of the target architecture "
                      "(scripts/cross.sh makes one)")
endif()
set(CMAKE_SYSROOT "$ENV{MCUFLASH_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the root's .pc files and prefixes what they say with the root.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CMAKE_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${CMAKE_SYSROOT}/usr/lib/${triplet}/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig")

# -L: the program's dynamic loader and libraries come from the root.
set(CMAKE_CROSSCOMPILING_EMULATOR ${qemu} -L "${CMAKE_SYSROOT}")

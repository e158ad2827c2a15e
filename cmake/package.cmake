# The Debian package: `cpack -G DEB` (or `cmake --build BUILD --target package`) in a build folder
# configured with -DCMAKE_INSTALL_PREFIX=/usr makes mcuflash_VERSION_ARCH.deb of what install.cmake
# installs, with the library in Debian's multiarch folder. scripts/deb-check.sh builds it and tries it
# in a clean Debian 12. Included from the top CMakeLists.txt.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "The .deb (target package) puts the library in /usr/${CMAKE_INSTALL_LIBDIR}; "
                 "configure with -DCMAKE_INSTALL_PREFIX=/usr for Debian's multiarch folder")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mcuflash)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "mcuflash maintainers <maintainers@users.noreply.r-seed-ce948c9a.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "flashes 3D printers' micro-controllers through their bootloaders")
# The summary above is the first line of the Description; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "mcuflash writes Klipper firmware onto the micro-controllers of 3D printers
through their bootloaders (STK500, STM32 UART and DFU, SAM-BA, HalfKay,
the STM32 HID bootloader, PICOBOOT, Katapult over USB, UART and CAN, SD
cards and USB drives, SWD probes), speaking each protocol itself, and
checks every image against the board before writing it.
.
The package holds mcuflash and mcuflash-sim (a simulator of every
bootloader), the udev rules that let users open the USB bootloaders, the
man page, shell completions, documentation, and the C++ library
libmcuflash with its header, CMake package and pkg-config file.")
set(CPACK_DEBIAN_PACKAGE_SECTION electronics)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# A cross build (cmake/toolchains/, scripts/cross.sh) packages for its own architecture, not the host's.
if(CMAKE_CROSSCOMPILING AND MCUFLASH_DEB_ARCH)
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${MCUFLASH_DEB_ARCH})
endif()
# Depends: what dpkg-shlibdeps finds the programs and the library linked against (libusb, OpenSSL, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file for libmcuflash.so.0, and with it the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Without the debug information the RelWithDebInfo build carries (the library alone is 125 MB).
set(CPACK_STRIP_FILES ON)
# After installing, ldconfig and udev read the new library and rules (postrm: CPack's ldconfig).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Decided once every folder has been read: the Python module (python/), when it is built, is in the
# package too, and needs the Python it was built for. `package_files` builds what the package holds
# and nothing else (no tests), for `cpack` to run after it.
function(mcuflash_finish_package)
  add_custom_target(package_files)
  add_dependencies(package_files mcuflash mcuflash-sim mcuflash_library udev_rules reference_docs)
  get_property(folders DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY SUBDIRECTORIES)
  if("${PROJECT_SOURCE_DIR}/python" IN_LIST folders)
    get_property(python_targets DIRECTORY ${PROJECT_SOURCE_DIR}/python PROPERTY BUILDSYSTEM_TARGETS)
    if(python_targets)
      add_dependencies(package_files ${python_targets})
      find_package(Python3 COMPONENTS Interpreter QUIET)
      if(Python3_FOUND)
        math(EXPR next_minor "${Python3_VERSION_MINOR} + 1")
        set(CPACK_DEBIAN_PACKAGE_DEPENDS
            "python3 (>= ${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}), python3 (<< ${Python3_VERSION_MAJOR}.${next_minor})")
      else()
        set(CPACK_DEBIAN_PACKAGE_DEPENDS python3)
      endif()
    endif()
  endif()
  include(CPack)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL mcuflash_finish_package)

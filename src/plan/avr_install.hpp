#pragma once
// Installing a bootloader on an AVR with an ISP programmer, and writing fuses: the checks that come
// before anything is written, and the write sequences with every fuse and lock byte verified.
//
// The sequence (Arduino's "burn bootloader"): chip erase; unlock byte; efuse, hfuse, lfuse; the
// bootloader image, verified; lock byte last (it protects the boot section from the application).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.hpp"
#include "image/image.hpp"
#include "protocol/programmer.hpp"
#include "targets/avr_fuses.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::plan {

// Overriding the brick checks takes two deliberate flags.
struct FuseSafety {
    bool force = false;
    bool confirm_brick_risk = false;
};

// Throws core::Error(Unsafe) listing every reason `values` would leave the board unprogrammable,
// unless both flags are given; returns those reasons (empty when none) so they can be shown anyway.
std::vector<std::string> check_fuses(const targets::Chip& chip, const targets::FuseValues& values,
                                     const FuseSafety& safety);

struct InstallRequest {
    const targets::Chip* chip = nullptr;
    std::string bootloader;  // its name, for messages
    image::Image image;
    std::string image_name;
    targets::FuseValues fuses;  // lfuse, hfuse, efuse
    uint8_t unlock = 0x3F;
    uint8_t lock = 0x0F;
    // Ranges (address, size) outside the boot section the image may hold (BootloaderInstall::stray_bytes).
    std::vector<std::pair<uint32_t, uint32_t>> stray_bytes;
};

// Checks that need no device: fuse safety, and that the image lies inside the boot section the
// fuses select and that BOOTRST makes the chip start there. Throws core::Error(BadInput/Unsafe)
// with the addresses; returns warnings.
std::vector<std::string> check_install(const InstallRequest& request, const FuseSafety& safety);

// One fuse or lock byte written: what was asked and what the chip holds now.
struct FuseWrite {
    targets::FuseByte fuse = targets::FuseByte::Low;
    uint8_t value = 0;
    uint8_t read_back = 0;
};

struct InstallReport {
    targets::FuseValues before;  // the chip's fuses and lock byte before anything was written
    std::vector<FuseWrite> fuse_writes;
    uint32_t flash_bytes = 0;   // bytes in the pages the image touches, written and verified
    uint32_t flash_start = 0;   // where the boot section starts
    bool flash_verified = false;
};

// Reads all four bytes.
targets::FuseValues read_fuses(protocol::AvrProgrammer& programmer);

// Writes `values` (efuse, hfuse, lfuse, then lock), reading each back. A value that does not read
// back as written stops the sequence with core::Error(VerifyMismatch) naming it, what the chip
// holds, and what was and was not written. Call check_fuses() first.
std::vector<FuseWrite> write_fuses(protocol::AvrProgrammer& programmer, const targets::AvrFuses& facts,
                                   const targets::FuseValues& values, const core::Progress& progress);

// The whole install; the programmer must be in programming mode. Call check_install() first.
InstallReport install_bootloader(protocol::AvrProgrammer& programmer, const InstallRequest& request,
                                 const core::Progress& progress);

// "lfuse=0xFF hfuse=0xD8 efuse=0xFD lock=0x0F" (those present, in that order).
std::string describe_fuses(const targets::FuseValues& values);

}  // namespace mcuflash::plan

#pragma once
// A 52-byte Thumb routine the host puts in SRAM and runs with G to copy words from one address to
// another: into a flash controller's page buffer (SAM3/SAM4 ROM monitors have no command that writes
// flash), or out of flash into SRAM (the SAM3 ROM reads flash as zeros through R).
//
// Layout and entry convention are BOSSA's WordCopyApplet's (the simulator and real monitors are used
// to it); the code is our own:
//   +0x00 code (32 bytes)   +0x20 stack   +0x24 reset (entry | 1)   +0x28 dst   +0x2C src   +0x30 words
// `G base+0x20` makes the monitor load SP from +0x20 and jump to the address at +0x24; the routine
// returns to the monitor with `bx lr`.
#include <cstdint>
#include <optional>

#include "protocol/samba/monitor.hpp"

namespace mcuflash::protocol::samba {

class WordCopyApplet {
public:
    static constexpr uint32_t kSize = 0x34;
    static constexpr uint32_t kStackOffset = 0x20;
    static constexpr uint32_t kResetOffset = 0x24;
    static constexpr uint32_t kDstOffset = 0x28;
    static constexpr uint32_t kSrcOffset = 0x2C;
    static constexpr uint32_t kWordsOffset = 0x30;

    // `base`: word-aligned SRAM for the applet; `stack_top`: the SP it runs with.
    WordCopyApplet(Monitor& monitor, uint32_t base, uint32_t stack_top);

    // Copies `words` 32-bit words from `src` to `dst` on the device (uploads the applet first when
    // needed). Parameters already on the device are not sent again.
    void copy(uint32_t dst, uint32_t src, uint32_t words);
    // Forget what is on the device (after a resynchronisation, SRAM may have been overwritten).
    void invalidate();
    // First word-aligned address after the applet: where data buffers can start.
    uint32_t end() const { return base_ + kSize; }

    // The routine, little-endian (also used by the tests to check the encoding).
    static const uint8_t kCode[32];

private:
    void set(uint32_t offset, uint32_t value, std::optional<uint32_t>& known);

    Monitor& monitor_;
    uint32_t base_;
    uint32_t stack_top_;
    bool installed_ = false;
    std::optional<uint32_t> dst_, src_, words_;
};

}  // namespace mcuflash::protocol::samba

#include "protocol/samba/word_copy_applet.hpp"

#include <algorithm>

namespace mcuflash::protocol::samba {

// Thumb-1 (ARMv6-M, so it runs on every Cortex-M). Uses r0-r3 only, which the caller (the monitor's
// G) does not expect preserved, and no stack. LDR literal reads at Align(PC, 4) + imm, PC = insn + 4.
// Checked with llvm-mc/llvm-objdump (thumbv6m).
const uint8_t WordCopyApplet::kCode[32] = {
    0x09, 0x48,  // 0x00 ldr  r0, [pc, #36]   r0 = dst    (word at 0x28)
    0x0A, 0x49,  // 0x02 ldr  r1, [pc, #40]   r1 = src    (word at 0x2C)
    0x0A, 0x4A,  // 0x04 ldr  r2, [pc, #40]   r2 = words  (word at 0x30)
    0x92, 0x00,  // 0x06 lsls r2, r2, #2      r2 = bytes
    0x52, 0x18,  // 0x08 adds r2, r2, r1      r2 = end of the source
    0x01, 0xE0,  // 0x0A b    0x10            test before the first copy (words may be 0)
    0x08, 0xC9,  // 0x0C ldmia r1!, {r3}      r3 = *src++
    0x08, 0xC0,  // 0x0E stmia r0!, {r3}      *dst++ = r3
    0x91, 0x42,  // 0x10 cmp  r1, r2
    0xFB, 0xD3,  // 0x12 bcc  0x0C            while src < end
    0x70, 0x47,  // 0x14 bx   lr              back to the monitor
    0xC0, 0x46, 0xC0, 0x46, 0xC0, 0x46,  // 0x16 mov r8, r8 (no-op) padding up to the parameters
    0xC0, 0x46, 0xC0, 0x46,
};

WordCopyApplet::WordCopyApplet(Monitor& monitor, uint32_t base, uint32_t stack_top)
    : monitor_(monitor), base_(base), stack_top_(stack_top) {}

void WordCopyApplet::invalidate() {
    installed_ = false;
    dst_.reset();
    src_.reset();
    words_.reset();
}

void WordCopyApplet::set(uint32_t offset, uint32_t value, std::optional<uint32_t>& known) {
    if (known == value) return;
    monitor_.write_word(base_ + offset, value);
    known = value;
}

void WordCopyApplet::copy(uint32_t dst, uint32_t src, uint32_t words) {
    if (!installed_) {
        // Code and all parameters in one S transfer.
        Bytes image(kSize, 0);
        std::copy(std::begin(kCode), std::end(kCode), image.begin());
        auto put = [&image](uint32_t offset, uint32_t value) {
            for (int i = 0; i < 4; ++i) image[offset + i] = static_cast<uint8_t>(value >> (8 * i));
        };
        put(kStackOffset, stack_top_);
        put(kResetOffset, base_ | 1);  // Thumb entry at +0
        put(kDstOffset, dst);
        put(kSrcOffset, src);
        put(kWordsOffset, words);
        monitor_.send(base_, image);
        installed_ = true;
        dst_ = dst;
        src_ = src;
        words_ = words;
    } else {
        set(kDstOffset, dst, dst_);
        set(kSrcOffset, src, src_);
        set(kWordsOffset, words, words_);
    }
    monitor_.go(base_ + kStackOffset);
}

}  // namespace mcuflash::protocol::samba

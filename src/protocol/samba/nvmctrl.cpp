#include "protocol/samba/nvmctrl.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/sam_nvmctrl.hpp"

namespace mcuflash::protocol::samba {

using core::Error;
using core::ErrorKind;
using core::hex_address;

void NvmctrlFlash::erase(uint32_t address, uint32_t length) {
    const uint32_t unit = erase_unit();
    for (uint32_t at = address / unit * unit; at < address + length; at += unit) {
        const std::string what = fmt::format("erasing the {} at {}", family_.unit, hex_address(at));
        before_erase(what);
        set_address(at);
        run(family_.erase_unit_command, what);
    }
}

void NvmctrlFlash::program_pages(uint32_t flash, uint32_t sram, uint32_t length, WordCopyApplet& applet) {
    if (!pages_prepared_) {
        prepare_page_writes();
        pages_prepared_ = true;
    }
    for (uint32_t offset = 0; offset < length; offset += geometry_.page_size) {
        const uint32_t at = flash + offset;
        const std::string what = fmt::format("writing the page at {}", hex_address(at));
        run(family_.page_buffer_clear_command, what + " (page buffer clear)");
        applet.copy(at, sram + offset, geometry_.page_size / 4);
        wait_ready(what);
        set_address(at);
        run(family_.write_page_command, what);
    }
}

void NvmctrlFlash::reset() { monitor_.write_word(0xE000ED0C, 0x05FA0004); }  // AIRCR SYSRESETREQ

// ADDR is read back before a command uses it: on a link that can corrupt bytes, a wrong address must
// never reach an erase (it could be the bootloader's row).
void NvmctrlFlash::set_address(uint32_t byte_address) {
    const uint32_t value = byte_address >> family_.address_shift;
    monitor_.write_word(family_.address_register, value);
    const uint32_t back = monitor_.read_word(family_.address_register) & family_.address_mask;
    if (back != value)
        throw Error(ErrorKind::Protocol,
                    fmt::format("NVMCTRL ADDR reads back 0x{:06X}, not {}: the command was not sent", back,
                                family_.address_shift ? fmt::format("0x{:06X} ({})", value, hex_address(byte_address))
                                                      : hex_address(byte_address)));
}

void NvmctrlFlash::wait_ready(const std::string& what) {
    for (int poll = 0; poll < family_.ready_polls; ++poll)
        if (ready()) return;
    throw Error(ErrorKind::Timeout, fmt::format("{}: NVMCTRL stays busy ({} never set)", what, family_.ready));
}

void NvmctrlFlash::run(uint8_t command, const std::string& what) {
    wait_ready(what);
    monitor_.write_word(family_.command_register, nvmctrl::kCmdKey | command);
    wait_ready(what);
    if (auto refused = refusal())
        throw Error(ErrorKind::Protocol, fmt::format("{}: NVMCTRL refused the command: {}", what, refused->why),
                    refused->hint);
}

}  // namespace mcuflash::protocol::samba

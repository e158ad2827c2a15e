#include "protocol/stk500v2/writes.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/hexdump.hpp"

namespace mcuflash::protocol::stk500v2 {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {
// PROGRAM_FLASH_ISP parameters for classic ATmega parts (avrdude.conf: mode 0x41, delay 10,
// 0x40/0x4C/0x20, no polling values); stk500boot_v2 ignores them but real programmers need them.
constexpr IspProgram kFlashProgram{};
// One row erase per 256 bytes, up to 6 ms each: up to 6 s for the SAMD21's 240 KiB.
constexpr long kM0EraseTimeoutMs = 10000;
}  // namespace

// ---- stk500boot_v2: the erase pointer ----

uint32_t Client::ErasePointerWrites::page_size() const { return client_.chip_ ? client_.chip_->page_size : 256; }

Capabilities Client::ErasePointerWrites::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    caps.erases_on_write = true;
    caps.writes_in_address_order = true;  // the erase pointer (erase_pointer_to rewinds for a step back)
    caps.write_unit = page_size();
    return caps;
}

void Client::ErasePointerWrites::erase(uint32_t, uint32_t) {
    throw Error(ErrorKind::Usage, "stk500boot_v2 erases each page as it writes it: there is no erase command");
}

void Client::ErasePointerWrites::program_page(uint32_t at, std::span<const uint8_t> page) {
    client_.with_recovery("write page", at, [&] {
        client_.load_address(at);
        client_.session_.command(program_flash_isp(kFlashProgram, page), "write page", 2, Session::kCommandTimeoutMs, 0);
        client_.device_address_ = at + static_cast<uint32_t>(page.size());
    });
    if (erase_pointer_ < erase_limit_) erase_pointer_ += static_cast<uint32_t>(page.size());
}

void Client::ErasePointerWrites::pin_erase_pointer() {
    // stk500boot_v2 answers CHIP_ERASE_ISP with FAILED (it erases nothing) but sets its erase
    // pointer back to 0: that is the one way to know where the next page erase happens.
    Frame reply = client_.session_.exchange(chip_erase_isp(10, 0), "reset the erase pointer", Session::kCommandTimeoutMs);
    if (reply.body.size() < 2 || reply.body[0] != cmd::kChipEraseIsp ||
        (reply.body[1] != status::kOk && reply.body[1] != status::kFailed))
        throw Error(ErrorKind::Protocol, fmt::format("CHIP_ERASE_ISP answered {}", core::hex_bytes(reply.body)));
    erase_pointer_ = 0;
    erase_known_ = true;
}

void Client::ErasePointerWrites::erase_pointer_to(uint32_t at) {
    uint32_t target = std::min(at, erase_limit_);
    if (erase_known_ && erase_pointer_ == target) return;
    bool rewind = !erase_known_ || erase_pointer_ > target;
    uint32_t from = rewind ? 0 : erase_pointer_;
    const uint32_t page = page_size();
    // Pages between the erase pointer and `at` are erased on the way: learn what they hold first
    // (once: a later rewind must not take a page the line damaged for its content).
    for (uint32_t run = from; run < target;) {
        if (contents_.count(run)) {
            run += page;
            continue;
        }
        uint32_t end = run;
        while (end < target && !contents_.count(end)) end += page;
        Bytes held = client_.read(run, end - run);
        for (uint32_t a = run; a < end; a += page)
            contents_[a] = {Bytes(held.begin() + (a - run), held.begin() + (a - run + page)), false};
        run = end;
    }
    if (!rewind && !erase_known_) throw RestartNeeded{};  // a reset during that read restarted the pointer
    if (rewind) pin_erase_pointer();
    if (target > from && client_.options_.warn)
        client_.options_.warn(fmt::format("stk500boot_v2 erases pages only in order from 0: rewriting {}-{} as they "
                                          "were before the page at {}",
                                          hex_address(from), hex_address(target - 1), hex_address(at)));
    for (uint32_t a = from; a < target; a += page) program_page(a, contents_.at(a).bytes);
    // The plan verifies the pages it wrote; the others are read back here.
    for (uint32_t a = from; a < target; a += page) {
        const auto& content = contents_.at(a);
        if (content.from_host || client_.read(a, page) == content.bytes) continue;
        client_.count_failure(Error(ErrorKind::Protocol, fmt::format("the page at {} did not keep its content when "
                                                                     "rewritten on the erase pointer's way",
                                                                     hex_address(a))),
                              a);
        erase_known_ = false;
        throw RestartNeeded{};
    }
}

void Client::ErasePointerWrites::write(uint32_t address, std::span<const uint8_t> data) {
    const uint32_t page = page_size();
    if (address % page != 0 || data.size() % page != 0)
        throw Error(ErrorKind::Usage, fmt::format("stk500v2 writes whole pages: {} + {} is not {}-byte aligned",
                                                  hex_address(address), data.size(), page));
    for (size_t offset = 0; offset < data.size(); offset += page) {
        uint32_t at = address + static_cast<uint32_t>(offset);
        auto bytes = data.subspan(offset, page);
        for (;;) {
            try {
                erase_pointer_to(at);
                if (at >= erase_limit_) {
                    // The bootloader will not erase this page: programming can only clear bits.
                    Bytes old = client_.read(at, page);
                    for (uint32_t i = 0; i < page; ++i)
                        if ((old[i] & bytes[i]) != bytes[i])
                            throw Error(ErrorKind::Unsafe,
                                        fmt::format("the page at {} holds other data, and stk500boot_v2 never erases "
                                                    "pages at or above {}: writing it would corrupt it",
                                                    hex_address(at), hex_address(erase_limit_)),
                                        "keep the image below that address, or erase the chip through an ISP "
                                        "programmer first")
                                .at_address(at);
                }
                program_page(at, bytes);
                if (at < erase_limit_) contents_[at] = {Bytes(bytes.begin(), bytes.end()), true};
                break;
            } catch (const RestartNeeded&) {
                erase_known_ = false;  // a reset happened: start the erase sequence again
            }
        }
    }
}

// ---- the Arduino M0: the whole application region ----

Capabilities Client::ApplicationRegionWrites::capabilities() const {
    Capabilities caps;
    caps.can_read = true;
    // Writes pad the address up to the next NVM row: write whole rows (the chip's erase unit).
    // Only CHIP_ERASE_ISP erases, everything from the application start.
    const auto& chip = *client_.chip_;
    caps.write_unit = chip.sam ? chip.sam->erase_unit : chip.page_size;
    caps.erase_units.push_back({app_start_, chip.flash_size - app_start_});
    return caps;
}

void Client::ApplicationRegionWrites::erase(uint32_t address, uint32_t length) {
    const uint32_t flash_size = client_.chip_->flash_size;
    if (address != app_start_ || uint64_t(address) + length != flash_size)
        throw Error(ErrorKind::Usage, fmt::format("this bootloader erases only its whole application region {}-{}",
                                                  hex_address(app_start_), hex_address(flash_size - 1)));
    client_.session_.command(chip_erase_isp(10, 0), "erase the application region", 2, kM0EraseTimeoutMs);
    client_.device_address_.reset();
}

void Client::ApplicationRegionWrites::write(uint32_t address, std::span<const uint8_t> data) {
    const uint32_t row = capabilities().write_unit;
    if (address < app_start_ || address % row || data.size() % row)
        throw Error(ErrorKind::Usage, fmt::format("writes go to whole {}-byte rows at or above {}, not {} + {}", row,
                                                  hex_address(app_start_), hex_address(address), data.size()));
    for (size_t offset = 0; offset < data.size(); offset += row) {
        uint32_t at = address + static_cast<uint32_t>(offset);
        for (bool done = false; !done;) {
            try {
                client_.with_recovery("write row", at, [&] {
                    client_.load_address(at);
                    client_.session_.command(program_flash_isp(kFlashProgram, data.subspan(offset, row)), "write row",
                                             2, Session::kCommandTimeoutMs, 0);
                    client_.device_address_ = at + row;
                });
                done = true;
            } catch (const RestartNeeded&) {
                // Rows already written keep their data (nothing erases them): write this one again.
            }
        }
    }
}

}  // namespace mcuflash::protocol::stk500v2

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/dfu/transfer.hpp"

namespace mcuflash::protocol::dfu {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {

constexpr uint8_t kSetAddress = 0x21, kErase = 0x41, kReadUnprotect = 0x92;

std::array<uint8_t, 5> command_with_address(uint8_t command, uint32_t address) {
    return {command, static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
            static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
}

}  // namespace

void DfuseTransfer::start() {
    requests_.start_session();
    mode_ = Mode::Idle;
}

void DfuseTransfer::command(std::span<const uint8_t> bytes, const char* what, uint32_t address) {
    requests_.download_and_wait(0, bytes, what, address);
}

void DfuseTransfer::set_address(uint32_t address) {
    auto bytes = command_with_address(kSetAddress, address);
    command(bytes, "set address", address);
}

bool DfuseTransfer::continues(Mode mode, uint32_t address) const {
    return mode_ == mode && next_block_ >= 2 &&
           uint64_t(pointer_) + uint64_t(next_block_ - 2) * transfer_size_ == address;
}

void DfuseTransfer::ready(bool downloading_ok) {
    if (mode_ == Mode::Idle || (downloading_ok && mode_ == Mode::Downloading)) return;
    if (mode_ == Mode::Uploading) requests_.abort();
    else requests_.to_idle();
    mode_ = Mode::Idle;
}

// Each erase command, block and upload goes through requests_.retrying(): after a failed transfer
// the mode is Unknown, so the next attempt starts from dfuIDLE and sets the address again.
void DfuseTransfer::erase(uint32_t address, uint32_t length) {
    for (uint64_t at = address; at < uint64_t(address) + length;) {
        const auto unit = static_cast<uint32_t>(at);
        const auto* segment = layout_.segment_at(unit);
        if (!segment || !segment->erasable)
            throw Error(ErrorKind::Unsafe, fmt::format("{} is not erasable on this device", hex_address(unit)));
        requests_.retrying("erase", unit, [&] {
            guarded([&] {
                ready(true);
                auto bytes = command_with_address(kErase, unit);
                command(bytes, "erase", unit);
                mode_ = Mode::Downloading;
                next_block_ = 0;  // whether an erase moves the pointer is the device's business
            });
        });
        at += segment->unit_size;
    }
}

void DfuseTransfer::write(uint32_t address, std::span<const uint8_t> data) {
    for (size_t offset = 0; offset < data.size(); offset += transfer_size_) {
        const auto at = address + static_cast<uint32_t>(offset);
        auto part = data.subspan(offset, std::min<size_t>(transfer_size_, data.size() - offset));
        requests_.retrying("write", at, [&] {
            guarded([&] {
                if (!continues(Mode::Downloading, at)) {
                    ready(true);
                    set_address(at);
                    mode_ = Mode::Downloading;
                    pointer_ = at;
                    next_block_ = 2;
                }
                requests_.download_and_wait(next_block_, part, "write", at);
                // A short block ends what the block numbers can address: the next write sets the address.
                next_block_ = part.size() == transfer_size_ ? static_cast<uint16_t>(next_block_ + 1) : 0;
            });
        });
    }
}

std::vector<uint8_t> DfuseTransfer::read(uint32_t address, uint32_t length) {
    std::vector<uint8_t> out;
    bool ended = false;
    while (out.size() < length && !ended) {
        const auto at = address + static_cast<uint32_t>(out.size());
        const auto want = static_cast<uint16_t>(std::min<uint32_t>(transfer_size_, length - static_cast<uint32_t>(out.size())));
        requests_.retrying("read", at, [&] {
            guarded([&] {
                if (!continues(Mode::Uploading, at)) {
                    ready(true);
                    set_address(at);
                    requests_.abort();  // UPLOAD needs dfuIDLE; the address pointer stays
                    mode_ = Mode::Uploading;
                    pointer_ = at;
                    next_block_ = 2;
                }
                auto part = requests_.upload(next_block_, want);
                out.insert(out.end(), part.begin(), part.end());
                if (part.size() < want) {
                    // Less than asked for ends the upload: the device is back in dfuIDLE.
                    mode_ = Mode::Idle;
                    next_block_ = 0;
                    ended = true;
                    return;
                }
                // A block shorter than wTransferSize leaves the upload open but the next block's
                // address unknown to the numbering: the next read starts again.
                next_block_ = want == transfer_size_ ? static_cast<uint16_t>(next_block_ + 1) : 0;
            });
        });
    }
    return out;
}

std::string DfuseTransfer::leave() {
    // Point at the application, then a zero-length download (not retried: the device may be gone).
    requests_.retrying("set address", flash_base_, [&] {
        guarded([&] {
            ready(true);
            set_address(flash_base_);
        });
    });
    requests_.download(2, {});
    DfuStatus st = requests_.get_status();
    mode_ = Mode::Unknown;
    return fmt::format("answered {}", state_name(st.state));
}

void DfuseTransfer::read_unprotect() {
    const uint8_t bytes[] = {kReadUnprotect};
    guarded([&] {
        ready(true);
        command(bytes, "read unprotect (mass erase)", flash_base_);
    });
    mode_ = Mode::Unknown;  // the device resets after the mass erase
}

}  // namespace mcuflash::protocol::dfu

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/dfu/transfer.hpp"

namespace mcuflash::protocol::dfu {

using core::Error;
using core::ErrorKind;
using core::hex_address;

void PlainTransfer::start() { requests_.to_idle(); }

void PlainTransfer::erase(uint32_t, uint32_t) {
    throw Error(ErrorKind::Usage, "plain DFU bootloaders erase as they write: there is no erase command");
}

void PlainTransfer::write(uint32_t address, std::span<const uint8_t> data) {
    end_upload();
    if (downloading_ && address < next_) {
        // A step back (a rewrite after verify): a new download starts again from the base.
        requests_.abort();
        downloading_ = false;
    }
    if (!downloading_) {
        requests_.to_idle();
        next_ = base_;
        block_ = 0;
        downloading_ = true;
    }
    if (address < next_)
        throw Error(ErrorKind::Usage, fmt::format("this DFU bootloader writes from {}, not {}", hex_address(base_),
                                                  hex_address(address)));
    // A gap: the bootloader erases pages as it writes them, so the gap is written as erased bytes.
    std::vector<uint8_t> stream(address - next_, 0xFF);
    stream.insert(stream.end(), data.begin(), data.end());
    for (size_t offset = 0; offset < stream.size(); offset += transfer_size_) {
        auto part = std::span<const uint8_t>(stream).subspan(offset, std::min<size_t>(transfer_size_, stream.size() - offset));
        requests_.download_and_wait(block_++, part, "write", next_);
        next_ += static_cast<uint32_t>(part.size());
    }
}

std::vector<uint8_t> PlainTransfer::read(uint32_t address, uint32_t length) {
    // Uploads run from the alternate setting's base: the open download ends first.
    if (address < base_) throw Error(ErrorKind::Usage, fmt::format("reads start at {}", hex_address(base_)));
    if (!uploading_) {
        if (downloading_) {
            requests_.abort();
            downloading_ = false;
        }
        requests_.to_idle();
        uploading_ = true;
        upload_ended_ = false;
        upload_block_ = 0;
        upload_cache_.clear();
    }
    const uint64_t want = uint64_t(address - base_) + length;
    while (upload_cache_.size() < want && !upload_ended_) {
        auto part = requests_.upload(upload_block_++, transfer_size_);
        upload_cache_.insert(upload_cache_.end(), part.begin(), part.end());
        upload_ended_ = part.size() < transfer_size_;  // a short packet ends the upload: the device is idle
    }
    std::vector<uint8_t> out;
    if (upload_cache_.size() > address - base_)
        out.assign(upload_cache_.begin() + (address - base_),
                   upload_cache_.begin() + std::min<uint64_t>(upload_cache_.size(), want));
    return out;
}

void PlainTransfer::end_upload() {
    if (!uploading_) return;
    if (!upload_ended_) requests_.abort();
    uploading_ = false;
    upload_cache_.clear();
}

std::string PlainTransfer::leave() {
    end_upload();
    std::string outcome;
    // Finish with a zero-length download: manifestation. After a verify the download was aborted;
    // some bootloaders (Smoothieboard) take it anyway and leave, the others stall it.
    try {
        requests_.download(block_, {});
        DfuStatus st = requests_.get_status();
        if (st.state == state::kError)
            throw Error(ErrorKind::Protocol, fmt::format("finishing the download: {}", status_text(st.status)));
        outcome = fmt::format("answered {}", state_name(st.state));
    } catch (const Error& e) {
        if (downloading_ || e.kind() != ErrorKind::Protocol) throw;
        if (requests_.usb().present()) requests_.to_idle();  // stalled: clear dfuERROR before the reset
    }
    downloading_ = false;
    auto& usb = requests_.usb();
    for (int i = 0; i < 4 && usb.present(); ++i) usb.pause(std::chrono::milliseconds(50));
    if (!usb.present())
        return outcome + (outcome.empty() ? "left the bus (application runs)" : ", then left the bus (application runs)");
    usb.reset_port();
    return "USB reset: the bootloader starts the application after its wait";
}

}  // namespace mcuflash::protocol::dfu

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "protocol/dfu/transfer.hpp"

namespace mcuflash::protocol::dfu {

using core::Error;
using core::ErrorKind;
using core::hex_address;

void PlainTransfer::start() { requests_.start_session(); }

void PlainTransfer::erase(uint32_t, uint32_t) {
    throw Error(ErrorKind::Usage, "plain DFU bootloaders erase as they write: there is no erase command");
}

void PlainTransfer::write(uint32_t address, std::span<const uint8_t> data) {
    end_upload();
    if (downloading_ && address < base_ + stream_.size()) {
        // A step back (a rewrite after verify): a new download starts again from the base.
        requests_.abort();
        downloading_ = false;
    }
    if (!downloading_) {
        stream_.clear();
        sent_ = 0;
        restart_ = true;
        downloading_ = true;
    }
    if (address < base_ + stream_.size())
        throw Error(ErrorKind::Usage, fmt::format("this DFU bootloader writes from {}, not {}", hex_address(base_),
                                                  hex_address(address)));
    // A gap: the bootloader erases pages as it writes them, so the gap is written as erased bytes.
    stream_.resize(address - base_, 0xFF);
    stream_.insert(stream_.end(), data.begin(), data.end());
    // Block numbers count from the base: after a failed transfer the download starts again from there
    // and sends everything this download held so far.
    while (sent_ < stream_.size()) {
        requests_.retrying("write", base_ + static_cast<uint32_t>(sent_), [&] {
            try {
                if (restart_) {
                    requests_.to_idle();
                    sent_ = 0;
                    block_ = 0;
                    restart_ = false;
                }
                const auto part = std::span<const uint8_t>(stream_).subspan(
                    sent_, std::min<size_t>(transfer_size_, stream_.size() - sent_));
                requests_.download_and_wait(block_, part, "write", base_ + static_cast<uint32_t>(sent_));
                ++block_;
                sent_ += part.size();
            } catch (...) {
                restart_ = true;
                throw;
            }
        });
    }
}

std::vector<uint8_t> PlainTransfer::read(uint32_t address, uint32_t length) {
    // Uploads run from the alternate setting's base: the open download ends first.
    if (address < base_) throw Error(ErrorKind::Usage, fmt::format("reads start at {}", hex_address(base_)));
    const uint64_t want = uint64_t(address - base_) + length;
    // After a failed transfer the upload starts again from the base.
    requests_.retrying("read", address, [&] {
        try {
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
            while (upload_cache_.size() < want && !upload_ended_) {
                auto part = requests_.upload(upload_block_, transfer_size_);
                ++upload_block_;
                upload_cache_.insert(upload_cache_.end(), part.begin(), part.end());
                upload_ended_ = part.size() < transfer_size_;  // a short packet ends the upload: the device is idle
            }
        } catch (...) {
            uploading_ = false;
            throw;
        }
    });
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

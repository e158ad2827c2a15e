#include "protocol/dfu/requests.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/deadline.hpp"
#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::dfu {

using core::Error;
using core::ErrorKind;
using core::hex_address;

namespace {
constexpr uint8_t kDnload = 1, kUpload = 2, kGetStatus = 3, kClrStatus = 4, kGetState = 5, kAbort = 6;
constexpr unsigned kRequestTimeoutMs = 5000;
// Longest an operation may keep the device busy: a 128 KiB sector erase takes about 1-2 s; a mass
// erase of 2 MiB tens of seconds.
constexpr long kBusyLimitMs = 60000;
constexpr uint8_t kErrStalledPkt = 0x0F;
}  // namespace

const char* state_name(uint8_t state) {
    static const char* names[] = {"appIDLE",        "appDETACH", "dfuIDLE",          "dfuDNLOAD-SYNC",
                                  "dfuDNBUSY",      "dfuDNLOAD-IDLE", "dfuMANIFEST-SYNC", "dfuMANIFEST",
                                  "dfuMANIFEST-WAIT-RESET", "dfuUPLOAD-IDLE", "dfuERROR"};
    return state < 11 ? names[state] : "unknown state";
}

const char* status_text(uint8_t status) {
    static const char* texts[] = {"OK",
                                  "the file is not for this device (errTARGET)",
                                  "the file failed a vendor check (errFILE)",
                                  "the device could not write the memory (errWRITE)",
                                  "the memory erase failed (errERASE)",
                                  "the memory was not erased (errCHECK_ERASED)",
                                  "program memory function failed (errPROG)",
                                  "programmed memory failed verification (errVERIFY)",
                                  "the address is out of range (errADDRESS)",
                                  "received DNLOAD with wLength 0 too early (errNOTDONE)",
                                  "the device's firmware is corrupt (errFIRMWARE)",
                                  "vendor-specific error (errVENDOR)",
                                  "unexpected USB reset (errUSBR)",
                                  "unexpected power-on reset (errPOR)",
                                  "unknown error (errUNKNOWN)",
                                  "the device stalled an unexpected request (errSTALLEDPKT)"};
    return status < 16 ? texts[status] : "unknown status";
}

DfuStatus DfuRequests::get_status() {
    auto raw = usb_.control_in({0xA1, kGetStatus, 0, interface_, 6}, kRequestTimeoutMs);
    if (raw.size() < 6)
        throw Error(ErrorKind::Protocol, fmt::format("GETSTATUS answered {} bytes, not 6", raw.size()));
    return {raw[0], uint32_t{raw[1]} | (uint32_t{raw[2]} << 8) | (uint32_t{raw[3]} << 16), raw[4]};
}

uint8_t DfuRequests::get_state() {
    auto raw = usb_.control_in({0xA1, kGetState, 0, interface_, 1}, kRequestTimeoutMs);
    if (raw.size() != 1) throw Error(ErrorKind::Protocol, fmt::format("GETSTATE answered {} bytes, not 1", raw.size()));
    return raw[0];
}

void DfuRequests::start_session() {
    std::optional<uint8_t> state;
    try {
        state = get_state();
    } catch (const Error& e) {
        // A bootloader without GETSTATE stalls it and goes to dfuERROR, which to_idle() clears.
        if (e.kind() != ErrorKind::Protocol && e.kind() != ErrorKind::Timeout) throw;
    }
    if (state == state::kManifestSync) {
        if (warn_)
            warn_("an earlier flash was stopped as it finished (the device waits in dfuMANIFEST-SYNC): starting over");
        try {
            abort();
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Protocol) throw;  // stalled: the device is now in dfuERROR
        }
    }
    to_idle();
}

void DfuRequests::clear_status() { usb_.control_out({0x21, kClrStatus, 0, interface_, 0}, {}, kRequestTimeoutMs); }
void DfuRequests::abort() { usb_.control_out({0x21, kAbort, 0, interface_, 0}, {}, kRequestTimeoutMs); }

void DfuRequests::to_idle() {
    DfuStatus st = get_status();
    // Busy with a block sent before a failed transfer: ABORT is not allowed until it is done.
    core::Deadline deadline = core::Deadline::after_ms(kBusyLimitMs);
    while ((st.state == state::kDnBusy || st.state == state::kDnloadSync) && !deadline.expired()) {
        usb_.pause(std::chrono::milliseconds(std::max<uint32_t>(st.poll_timeout_ms, 1)));
        st = get_status();
    }
    if (st.state == state::kIdle) return;
    if (st.state == state::kManifest || st.state == state::kManifestWaitReset)
        throw Error(ErrorKind::Protocol,
                    fmt::format("the device is finishing an earlier flash ({}) and takes no requests until it is reset",
                                state_name(st.state)),
                    "unplug and replug the board (or reset it into its bootloader again), then run the same command");
    if (st.state == state::kError) {
        if (warn_) warn_(fmt::format("the device was in dfuERROR ({}): clearing it", status_text(st.status)));
        clear_status();
    } else {
        abort();
    }
    st = get_status();
    if (st.state != state::kIdle)
        throw Error(ErrorKind::Protocol, fmt::format("the device stays in {} ({}), not dfuIDLE", state_name(st.state),
                                                     status_text(st.status)),
                    "unplug and replug the board (or reset it into its bootloader again)");
}

void DfuRequests::download(uint16_t block, std::span<const uint8_t> data) {
    usb_.control_out({0x21, kDnload, block, interface_, static_cast<uint16_t>(data.size())}, data, kRequestTimeoutMs);
}

void DfuRequests::download_and_wait(uint16_t block, std::span<const uint8_t> data, const char* what, uint32_t address) {
    download(block, data);
    core::Deadline deadline = core::Deadline::after_ms(kBusyLimitMs);
    for (;;) {
        DfuStatus st = get_status();
        if (st.state == state::kError) {
            // The device's own failure is not the line's: sending the block again would not help.
            const auto kind = st.status == kErrStalledPkt ? ErrorKind::Protocol : ErrorKind::Io;
            throw Error(kind, fmt::format("{} at {}: {}", what, hex_address(address), status_text(st.status)))
                .at_address(address);
        }
        if (st.state == state::kDnloadIdle || st.state == state::kIdle) return;
        if (st.state != state::kDnBusy && st.state != state::kDnloadSync)
            throw Error(ErrorKind::Protocol,
                        fmt::format("{} at {}: the device went to {}", what, hex_address(address), state_name(st.state)));
        if (deadline.expired())
            throw Error(ErrorKind::Timeout, fmt::format("{} at {}: the device stayed busy for {} s", what,
                                                        hex_address(address), kBusyLimitMs / 1000));
        usb_.pause(std::chrono::milliseconds(std::max<uint32_t>(st.poll_timeout_ms, 1)));
    }
}

void DfuRequests::warn_failed_attempt(const char* what, uint32_t address, const core::Error& e) {
    if (warn_) warn_(fmt::format("{} at {}: {}; trying again", what, hex_address(address), e.what()));
}

std::vector<uint8_t> DfuRequests::upload(uint16_t block, uint16_t length) {
    return usb_.control_in({0xA1, kUpload, block, interface_, length}, kRequestTimeoutMs);
}

}  // namespace mcuflash::protocol::dfu

#pragma once
// The DFU 1.1 class requests on one interface (USB DFU 1.1 section 6): GETSTATUS, CLRSTATUS, ABORT,
// DNLOAD (then waiting out dfuDNBUSY) and UPLOAD. Both kinds of transfer (DfuSe, plain DFU) use them.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "link/usb_device.hpp"
#include "protocol/retry.hpp"

namespace mcuflash::protocol::dfu {

struct DfuStatus {
    uint8_t status = 0;
    uint32_t poll_timeout_ms = 0;
    uint8_t state = 0;
};
const char* state_name(uint8_t state);
const char* status_text(uint8_t status);

namespace state {
inline constexpr uint8_t kIdle = 2, kDnloadSync = 3, kDnBusy = 4, kDnloadIdle = 5, kManifestSync = 6, kManifest = 7,
                         kManifestWaitReset = 8, kUploadIdle = 9, kError = 10;
}

class DfuRequests {
public:
    DfuRequests(link::UsbDevice& usb, link::WarningSink warn) : usb_(usb), warn_(std::move(warn)) {}
    void set_interface(uint8_t interface) { interface_ = interface; }
    uint8_t interface() const { return interface_; }
    link::UsbDevice& usb() { return usb_; }

    DfuStatus get_status();
    // GETSTATE: the state alone. Unlike GETSTATUS it moves no state machine on (a GETSTATUS in
    // dfuMANIFEST-SYNC starts the manifestation, and most bootloaders then leave for the application).
    uint8_t get_state();
    void clear_status();
    void abort();
    // From anything to dfuIDLE: waits out dfuDNBUSY, then CLRSTATUS out of dfuERROR, ABORT otherwise.
    void to_idle();
    // to_idle() at the start of a session, on a device an earlier session may have left anywhere. One
    // stopped (Ctrl-C, a killed process) just after its final zero-length DNLOAD left it waiting in
    // dfuMANIFEST-SYNC: that is ended by ABORT (or, where ABORT stalls there, by the dfuERROR the
    // stall leads to) before any GETSTATUS could start the manifestation and take the device away.
    void start_session();
    // DNLOAD, then GETSTATUS until the device is no longer busy. A device that ends in dfuERROR
    // reporting its own failure (errWRITE, errADDRESS, ...) throws Io with its status; one that
    // reports a stalled request (errSTALLEDPKT) throws Protocol, like the stall itself.
    // `what` and `address` name the operation in messages.
    void download_and_wait(uint16_t block, std::span<const uint8_t> data, const char* what, uint32_t address);
    // DNLOAD without waiting (a zero-length one ends a download).
    void download(uint16_t block, std::span<const uint8_t> data);
    std::vector<uint8_t> upload(uint16_t block, uint16_t length);

    // Runs `attempt` until it works. A failed transfer (a stall, no answer in time, an answer that
    // makes no sense: Protocol or Timeout) is tried again with a warning, up to kAttemptsInARow times
    // in a row and within the session's FailureBudget. What the device reports as its own failure
    // (Io), anything else, and a device gone from the bus are thrown at once. `attempt` must start
    // from what it can know: after a failure the device may be in any state (to_idle() brings it back).
    template <typename Attempt>
    void retrying(const char* what, uint32_t address, Attempt attempt) {
        for (int in_a_row = 1;; ++in_a_row) {
            try {
                attempt();
                budget_.success();
                return;
            } catch (const core::Error& e) {
                if (!transmission_problem(e) || !usb_.present() || in_a_row >= kAttemptsInARow) throw;
                budget_.failure(e, address);
                warn_failed_attempt(what, address, e);
            }
        }
    }
    static constexpr int kAttemptsInARow = 4;

private:
    void warn_failed_attempt(const char* what, uint32_t address, const core::Error& e);

    link::UsbDevice& usb_;
    link::WarningSink warn_;
    uint8_t interface_ = 0;
    FailureBudget budget_;
};

}  // namespace mcuflash::protocol::dfu

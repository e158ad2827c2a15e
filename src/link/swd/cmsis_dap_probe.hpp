#pragma once
// A CMSIS-DAP debug probe (ARM's CMSIS-DAP specification): version 2 over the bulk endpoints of its
// vendor interface (the one whose string holds "CMSIS-DAP"), version 1 over HID reports of the size
// DAP_Info gives (64 bytes on most). DAPLink, the Raspberry Pi Debug Probe, picoprobe, the many
// "CMSIS-DAP" dongles and WCH-Link in its DAP mode are all this.
//
// Commands are carried whole, several in flight up to the probe's packet count: a queue of transfers
// (execute) is packed into DAP_Transfer packets, runs of one register into DAP_TransferBlock.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/hid_device.hpp"
#include "link/swd/cmsis_dap_codec.hpp"
#include "link/swd/debug_probe.hpp"
#include "link/usb_device.hpp"

namespace mcuflash::link::swd {

struct CmsisDapInfo {
    int version = 2;                // 1: HID reports, 2: bulk endpoints
    std::string vendor, product, serial, firmware, protocol_version;  // DAP_Info strings ("" when not given)
    uint8_t capabilities = 0;
    unsigned packet_count = 1;      // commands the probe buffers
    size_t packet_size = 64;
};

class CmsisDapProbe : public DebugProbe {
public:
    // Version 2: the probe's CMSIS-DAP bulk interface on `usb` (claimed here). Throws NotFound when the
    // device has no such interface.
    static std::unique_ptr<CmsisDapProbe> over_bulk(std::unique_ptr<UsbDevice> usb);
    static std::unique_ptr<CmsisDapProbe> over_bulk(UsbDevice& usb);
    // Version 1: HID reports.
    static std::unique_ptr<CmsisDapProbe> over_hid(std::unique_ptr<HidDevice> hid);
    static std::unique_ptr<CmsisDapProbe> over_hid(HidDevice& hid);
    ~CmsisDapProbe() override;

    const CmsisDapInfo& info() const { return info_; }
    std::string describe() const override;
    uint32_t connect() override;
    void disconnect() override;
    void set_clock(uint32_t hz) override;
    void set_retries(uint16_t wait_retries, uint16_t match_retries) override;
    void set_reset_line(bool asserted) override;
    TransferResult execute(std::span<const Transfer> transfers) override;
    TransferResult read_block(bool ap, uint8_t address, size_t count) override;
    TransferResult write_block(bool ap, uint8_t address, std::span<const uint32_t> values) override;
    void write_abort(uint32_t value) override;
    void pause(std::chrono::milliseconds duration) override;
    bool present() override;

    // The LEDs some probes show: connected, target running.
    void host_status(dap::HostStatus which, bool on);
    // USB packets sent so far (for tests and the speed report).
    uint64_t packets_sent() const { return packets_sent_; }
    // One command and its answer.
    std::vector<uint8_t> command(std::span<const uint8_t> packet);

    class Channel;  // how packets reach the probe (bulk endpoints or HID reports)

private:
    explicit CmsisDapProbe(std::unique_ptr<Channel> channel);
    void identify();

    struct Pending {
        std::vector<uint8_t> bytes;
        size_t first = 0;                      // index of its first transfer in the queue
        std::vector<Transfer> requests;        // DAP_Transfer: what it carries
        bool block = false;
        unsigned block_reads = 0;              // DAP_TransferBlock read: words asked
        size_t block_count = 0;
    };
    // Sends the commands with up to packet_count in flight and decodes each answer into `result`;
    // stops sending at the first that fails (those in flight are read and dropped).
    TransferResult run(std::vector<Pending>& commands);
    std::vector<Pending> pack(std::span<const Transfer> transfers) const;
    void expect_ok(std::span<const uint8_t> packet, dap::Command command, const std::string& what);

    std::unique_ptr<Channel> channel_;
    CmsisDapInfo info_;
    uint32_t clock_hz_ = 4'000'000;
    uint16_t wait_retries_ = 0xFFFF, match_retries_ = 0xFFFF;
    uint64_t packets_sent_ = 0;
    bool connected_ = false;
};

}  // namespace mcuflash::link::swd

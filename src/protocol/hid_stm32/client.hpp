#pragma once
// The STM32 HID bootloader (USB 1209:beba), natively: what Klipper's hid-flash does.
//
// Link: a link::HidDevice (the kernel's hidraw node, or libusb driving the device as the kernel
// would): every 64-byte output report goes on the interface's interrupt OUT endpoint when it has
// one, else as a SET_REPORT on endpoint 0 (the F103 build has no OUT endpoint); the 8-byte
// acknowledgements are input reports.
//
// connect(): checks the VID:PID and the release (3.00 and later, as hid-flash), takes the chip from
// --chip (or --board): the bootloader does not say which chip it runs on. The application starts
// after the bootloader's own size on that chip in data/bootloaders.toml (hid_stm32: 2 KiB on F1,
// 16 KiB on F4; --bootloader hid_stm32_16k for the 16 KiB F103 build).
// write(): the first write sends "reset pages" (the page pointer to the application start), then pages
// of 1024 bytes in address order, each as 16 reports followed by a wait for the acknowledgement (a
// bounded wait: F4 sector erases take up to 2 s). The bootloader only writes sequentially: a gap
// is sent as blank pages, a step back is refused. It cannot read flash: capabilities() says
// can_read = false, so the plan reports "not verified".
// start_application(): sends one more blank page where a 2 KiB-page device (ack 0x03) holds half a
// page, then the reboot command; the board then leaves the bus.
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "link/hid_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/hid_stm32/codec.hpp"

namespace mcuflash::protocol::hid_stm32 {

constexpr unsigned kReportTimeoutMs = 1000;
// Writing a page can include an F4 sector erase (128 KiB: 2 s typical, 4 s at most).
constexpr unsigned kAckTimeoutMs = 5000;
// After "reset pages" the F103 build acknowledges at once: that stale ack is read and dropped.
constexpr unsigned kDrainTimeoutMs = 100;

class Client : public Bootloader {
public:
    Client(link::HidDevice& hid, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    // The bootloader has no read command: throws core::Error(Unsupported).
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    uint32_t app_start() const { return app_start_; }
    uint64_t pages_sent() const { return pages_sent_; }
    uint64_t gap_pages() const { return gap_pages_; }

private:
    void begin();
    void send_page(uint32_t address, std::span<const uint8_t> page, const char* what);
    void send_report(const std::vector<uint8_t>& report, const std::string& what, uint32_t address);
    void wait_for_ack(uint32_t address);
    // Whether an acknowledgement comes within kDrainTimeoutMs (the F103 build's ack of a command).
    bool acknowledged_soon(const char* after);
    void start_f1_session();
    [[noreturn]] void fail(core::Error& e, const std::string& what, uint32_t address);

    link::HidDevice& hid_;
    ConnectOptions options_;
    bool connected_ = false;
    bool started_ = false;           // "reset pages" went: pages go from app_start_ up
    bool double_pages_ = false;      // the device acknowledged with 0x03 (it writes 2 KiB at a time)
    bool f1_build_ = false;          // the F103 build: commands only at the start of its page buffer
    uint32_t app_start_ = 0, flash_end_ = 0;
    uint32_t next_ = 0;              // where the device's page pointer is
    uint64_t pages_sent_ = 0, gap_pages_ = 0;
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::hid_stm32

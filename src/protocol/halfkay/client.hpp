#pragma once
// PJRC's HalfKay bootloader on a Teensy (USB 16c0:0478), natively: what teensy_loader_cli does.
//
// Link: a link::HidDevice. HalfKay has no OUT endpoint, so every block is a HID SET_REPORT on
// endpoint 0, whether the kernel's hidraw node sends it or libusb does (teensy_loader_cli on Linux
// uses libusb; the kernel bounds a report to 5 s, which the first block's erase stays within on the
// AVR and 3.x Teensies; a report timed out is sent again).
//
// connect(): checks the VID:PID, claims interface 0, reads the HID report descriptor where the device
// gives it (the output report's size tells the block format: a mismatch with the chip is refused),
// and takes the chip from --chip/--board or the bootloader row's only chip (HalfKay does not say
// which Teensy it is). HalfKay cannot read flash: capabilities() says can_read = false, so the plan
// reports "not verified". The first block written erases the chip's application area (up to seconds:
// a long time limit); the client always begins with block 0, as teensy_loader_cli does, and skips
// later blocks that are blank. start_application() sends the boot report; the Teensy then leaves the bus.
#include <cstdint>
#include <span>
#include <vector>

#include "link/hid_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/halfkay/codec.hpp"

namespace mcuflash::protocol::halfkay {

// Time limits of one block's SET_REPORT (teensy_loader_cli 2.2: 5 s for the first, 0.5 s after; 2.3
// allows 45 s for the first five, for the Teensy 4's big flash).
constexpr unsigned kFirstBlockTimeoutMs = 45000;
constexpr unsigned kBlockTimeoutMs = 1000;
constexpr int kAttempts = 4;  // per block: a lost report or a transient error is sent again

class Client : public Bootloader {
public:
    Client(link::HidDevice& hid, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    // HalfKay has no read command: throws core::Error(Unsupported).
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    const Teensy& teensy() const { return *teensy_; }
    uint64_t blocks_sent() const { return blocks_sent_; }
    uint64_t blocks_skipped() const { return blocks_skipped_; }

private:
    void send_block(uint32_t address, std::span<const uint8_t> block);
    void send(const std::vector<uint8_t>& report, unsigned timeout_ms, const std::string& what, uint32_t address);

    link::HidDevice& hid_;
    ConnectOptions options_;
    const Teensy* teensy_ = nullptr;
    std::string board_;
    bool erased_ = false;  // the first block went: the application area is erased
    uint64_t blocks_sent_ = 0, blocks_skipped_ = 0;
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::halfkay

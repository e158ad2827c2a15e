#pragma once
// SAM-BA client: what `bossac -U -w -v -b -R` does for Atmel SAM boards. Two protocols share it:
// `samba` (the native USB port: the SAM3/SAM4 ROM monitor, the Arduino Zero and Adafruit SAMD
// bootloaders) and `samba-uart` (the same monitors on a UART: autobaud, XMODEM data).
//
// connect() identifies the chip (CPUID, then CHIPID or the DSU device id) and its bootloader, and
// from them the application region: flash bootloaders keep the start of flash (Arduino Zero 8 KiB,
// Adafruit SAMD51 16 KiB), the ROM monitor keeps none. Writes go through the bootloader's Y command
// where it has one, else through a word-copy applet in SRAM and the flash controller's registers.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/samba/flash_controller.hpp"
#include "protocol/samba/monitor.hpp"
#include "protocol/samba/word_copy_applet.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::samba {

ProtocolInfo usb_protocol_info();   // "samba"
ProtocolInfo uart_protocol_info();  // "samba-uart"

class Client : public Bootloader {
public:
    Client(link::ByteLink& link, Transport transport, ConnectOptions options);
    ~Client() override;

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    std::optional<uint32_t> checksum(uint32_t address, uint32_t length) override;
    void start_application() override;
    // Resets into what the chip boots, without touching GPNVM: a SAM3/SAM4 left in its ROM monitor
    // stays there.
    void leave() override;
    // Only a monitor with X (the Arduino and Adafruit SAMD bootloaders): without it (SAM3/SAM4's
    // ROM) a damaged command cannot erase far from where it was meant to go.
    uint64_t failed_exchanges() const override {
        return monitor_.extensions().erase ? monitor_.resynchronisations() : 0;
    }

    const Monitor& monitor() const { return monitor_; }
    static constexpr int kRetries = 3;

private:
    void start_monitor();
    void identify(DeviceInfo& info);
    // What the chip says it is: DSU DID (SAMD) or CHIPID (SAM3/SAM4), and the core's CPUID.
    struct ChipIdentity {
        bool device_id = false;  // DSU DID rather than CHIPID
        uint32_t value = 0, extension = 0, cpuid = 0;
        std::string text() const;
    };
    ChipIdentity read_chip_identity();
    // The data/chips.toml chip with that identity; nullptr when none.
    const targets::Chip* chip_with(const ChipIdentity& id) const;
    // The bootloader in flash (nullptr: the ROM monitor, or one the knowledge base does not know) and
    // the bytes of flash it keeps.
    std::pair<const targets::Bootloader*, uint32_t> flash_bootloader();
    // Whether the chip guards the bootloader (SAMD BOOTPROT), in `info` and as a warning when it does not.
    void describe_boot_protection(DeviceInfo& info, uint32_t reserved);
    // Runs `step` again after resynchronising when the link garbled or lost something.
    template <typename Step>
    auto with_retries(const std::string& what, Step step);
    void require_chip(const char* action) const;
    uint16_t checksum_block(uint32_t address, uint32_t length);

    link::ByteLink& link_;
    Monitor monitor_;
    ConnectOptions options_;
    const targets::Chip* chip_ = nullptr;
    FlashGeometry geometry_;
    uint32_t app_start_ = 0;
    std::unique_ptr<FlashController> controller_;
    std::unique_ptr<WordCopyApplet> applet_;
    uint32_t buffer_ = 0;       // SRAM for data on its way to flash (or read out of it)
    uint32_t buffer_size_ = 0;  // bytes
};

}  // namespace mcuflash::protocol::samba

#pragma once
// Client for ST's ROM USART bootloader (AN3155), what `stm32flash -w fw.bin -v -g 0 PORT` does.
// The board is put in its bootloader by hand (BOOT0 high, reset); the line is 8E1.
#include <cstdint>
#include <optional>
#include <string>

#include "core/deadline.hpp"
#include "core/error.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/stm32uart/codec.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::stm32uart {

ProtocolInfo protocol_info();

class Client : public Bootloader, public Protection {
public:
    Client(link::ByteLink& link, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    // Mass erase: every erase unit in one command (Extended Erase FFFF or Erase FF).
    void mass_erase();
    Protection* protection() override { return this; }
    // Readout Unprotect: the device mass-erases its flash, then resets into the bootloader again.
    void remove_readout_protection() override;
    bool can_remove_write_protection() const override { return true; }
    // Write Unprotect: clears every write-protection bit; the device resets.
    void remove_write_protection() override;

    const BootloaderCommands& bootloader_commands() const { return commands_; }
    // True when the ROM refused Read Memory at connect: readout protection (RDP level 1) is on, and
    // reads, writes, erases and Go are refused until remove_readout_protection() (which erases everything).
    bool readout_protected() const { return readout_protected_; }

    static constexpr long kAckTimeoutMs = 1000;
    static constexpr long kMassEraseTimeoutMs = 40000;  // AN3155 allows tens of seconds
    static constexpr long kEraseUnitTimeoutMs = 5000;   // per page or sector
    static constexpr int kRetries = 3;

private:
    // 0x7F until ACK (synchronised now) or NACK (it already was); throws NotFound with what to check.
    void synchronise(int attempts);
    // Sends a command's two bytes and waits for its ACK.
    void start_command(uint8_t code);
    // Waits for ACK, skipping BUSY; NACK throws Protocol, silence Timeout.
    void expect_ack(const std::string& what, long timeout_ms);
    Bytes read_bytes(size_t count, const std::string& what, long timeout_ms = kAckTimeoutMs);
    // Gets the ROM's attention again after a failed command, whatever state it was left in.
    void resynchronise(const core::Error& failure);
    // Runs `step` with retries after resynchronisation; rethrows after kRetries.
    template <typename Step>
    auto with_retries(const std::string& what, Step step);

    void write_block(uint32_t address, std::span<const uint8_t> block);
    Bytes read_block(uint32_t address, size_t count);
    void erase_units(const std::vector<uint16_t>& numbers);
    uint32_t probe_flash_size(const targets::Chip& chip);
    // Whether the ROM NACKs the Read Memory command itself (AN3155: readout protection active).
    bool probe_readout_protection();
    void refuse_if_protected(const char* what) const;
    bool readout_protected_ = false;
    void identify(DeviceInfo& info);
    void read_commands();    // Get: the bootloader version and the commands it takes
    void read_product_id();  // Get ID
    // A product ID the knowledge base does not know: read-only, with the flash size from the first
    // flash-size register that answers.
    void identify_unknown_part(DeviceInfo& info);

    link::ByteLink& link_;
    ConnectOptions options_;
    BootloaderCommands commands_;
    uint16_t product_id_ = 0;
    const targets::Chip* chip_ = nullptr;
    uint32_t flash_size_ = 0;
    std::vector<EraseUnit> erase_units_;
};

}  // namespace mcuflash::protocol::stm32uart

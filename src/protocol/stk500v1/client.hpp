#pragma once
// STK500v1 client for Arduino bootloaders (optiboot, ATmegaBOOT): avrdude's `-c arduino`.
#include <cstdint>

#include "core/error.hpp"
#include "protocol/retry.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/stk500v1/codec.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::stk500v1 {

ProtocolInfo protocol_info();

class Client : public Bootloader {
public:
    Client(link::ByteLink& link, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    // Bytes per READ_PAGE: optiboot keeps the length in 8 bits (0 means 256).
    static constexpr uint32_t kReadBlock = 256;

private:
    // Sends `request` and reads `answers` complete replies; returns their data bytes concatenated.
    Bytes exchange(const Bytes& request, const std::vector<size_t>& data_lengths, const char* what, long timeout_ms);
    void synchronise();
    void resynchronise_after(const core::Error& failure, const char* what);
    uint8_t get_parameter(uint8_t parameter);
    // UNIVERSAL load-extended-address when `byte_address` lies in another 64K-word segment than the
    // device was last told (parts above 128 KiB); empty otherwise.
    Bytes extended_address_prefix(uint32_t byte_address);
    // Sends [extended address] + LOAD_ADDRESS(at) + `command` as one write and returns the data of the
    // command's answer (`answer_length` bytes). A lost or garbled frame resets, resyncs and repeats.
    Bytes at_address(uint32_t at, const Bytes& command, size_t answer_length, const char* what);
    void identify(DeviceInfo& info);

    link::ByteLink& link_;
    ConnectOptions options_;
    const targets::Chip* chip_ = nullptr;
    int current_extended_ = -1;  // last 64K-word segment told to the device; -1 = unknown
    // Resets in a row without a successful command in between; a page that keeps failing gives up.
    static constexpr int kMaxRecoveriesInARow = 5;
    int recoveries_in_a_row_ = 0;
    // Bounds the whole session's recoveries: each costs a reset and a sync, and a line that damages
    // many pages would otherwise keep a flash going for many minutes.
    FailureBudget failure_budget_;
};

}  // namespace mcuflash::protocol::stk500v1

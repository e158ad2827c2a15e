#pragma once
// USB DFU 1.1 and ST's DfuSe: what dfu-util does, natively (protocols.md section 5).
//
// The client identifies the device and chooses how it transfers (transfer.hpp: DfuSe or plain DFU);
// the DFU requests themselves are in requests.hpp.
//
// connect(): reads the descriptors (DFU interface, alternate settings and their names, the DFU
// functional descriptor: attributes, wTransferSize, DFU version), chooses the alternate setting that
// writes the application, brings the device to dfuIDLE (CLRSTATUS out of dfuERROR, ABORT otherwise),
// and names the bootloader (by VID:PID, data/bootloaders.toml `usb`) and the chip (DfuSe: the chip
// whose erase layout matches the flash layout string; plain DFU: --chip or the bootloader's chip).
// DfuSe: erase by page/sector (0x41), write blocks after a set-address (0x21), read by UPLOAD,
// leave with a zero-length DNLOAD. Plain DFU (stm32duino): the bootloader writes blocks one after the
// other from its alternate setting's base and erases as it goes; verify reads go by UPLOAD after an
// ABORT; start = finish the download, then a USB reset.
#include <memory>
#include <optional>

#include "link/usb_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/dfu/layout.hpp"
#include "protocol/dfu/transfer.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol::dfu {

struct FunctionalDescriptor {
    uint8_t attributes = 0;
    uint16_t detach_timeout_ms = 0;
    uint16_t transfer_size = 0;
    uint16_t version = 0x0110;  // 0x011A: DfuSe
    bool can_download() const { return attributes & 0x01; }
    bool can_upload() const { return attributes & 0x02; }
    bool manifestation_tolerant() const { return attributes & 0x04; }
    bool will_detach() const { return attributes & 0x08; }
};

class Client : public Bootloader, public Protection {
public:
    Client(link::UsbDevice& usb, ConnectOptions options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void erase(uint32_t address, uint32_t length) override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override;

    bool dfuse() const { return functional_.version == 0x011A; }
    // DfuSe devices only: plain DFU has no protection commands.
    Protection* protection() override { return dfuse() ? this : nullptr; }
    // DfuSe read unprotect (0x92): the chip mass-erases its flash, then resets (it leaves the bus).
    void remove_readout_protection() override;
    bool can_remove_write_protection() const override { return false; }
    void remove_write_protection() override;  // throws Usage: DfuSe has no such command
    // How the last start_application() ended: "answered", or "dropped off the bus".
    const std::string& leave_outcome() const { return leave_outcome_; }

private:
    void identify(DeviceInfo& info);

    link::UsbDevice& usb_;
    ConnectOptions options_;
    DfuRequests requests_;
    uint8_t interface_ = 0;
    uint8_t alt_ = 0;
    std::vector<std::string> alt_names_;
    FunctionalDescriptor functional_;
    std::optional<MemoryLayout> layout_;  // DfuSe: the chosen alt's
    const targets::Chip* chip_ = nullptr;
    const targets::Bootloader* bootloader_ = nullptr;
    uint32_t plain_base_ = 0;  // plain DFU: where block 0 of a download goes
    std::unique_ptr<Transfer> transfer_;
    DfuseTransfer* dfuse_transfer_ = nullptr;  // transfer_, when the device speaks DfuSe
    std::string leave_outcome_;
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::dfu

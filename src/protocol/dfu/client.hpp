#pragma once
// USB DFU 1.1 and ST's DfuSe: what dfu-util does, natively (protocols.md section 5).
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
#include <optional>

#include "link/usb_device.hpp"
#include "protocol/bootloader.hpp"
#include "protocol/dfu/layout.hpp"
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

struct DfuStatus {
    uint8_t status = 0;
    uint32_t poll_timeout_ms = 0;
    uint8_t state = 0;
};
const char* state_name(uint8_t state);
const char* status_text(uint8_t status);

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
    DfuStatus get_status();
    void clear_status();
    void abort();
    void to_idle();
    // DNLOAD then GETSTATUS until the device is no longer busy; throws with the device's status
    // when it ends in dfuERROR.
    void download_and_wait(uint16_t block, std::span<const uint8_t> data, const char* what, uint32_t address);
    void dfuse_command(std::span<const uint8_t> command, const char* what, uint32_t address);
    void set_address(uint32_t address);
    std::vector<uint8_t> upload(uint16_t block, uint16_t length);
    void identify(DeviceInfo& info);

    link::UsbDevice& usb_;
    ConnectOptions options_;
    uint8_t interface_ = 0;
    uint8_t alt_ = 0;
    std::vector<std::string> alt_names_;
    FunctionalDescriptor functional_;
    std::optional<MemoryLayout> layout_;  // DfuSe: the chosen alt's
    const targets::Chip* chip_ = nullptr;
    const targets::Bootloader* bootloader_ = nullptr;
    uint32_t plain_base_ = 0;       // plain DFU: where block 0 of a download goes
    uint32_t plain_next_ = 0;       // plain DFU: where the next byte of this download goes
    bool downloading_ = false;      // plain DFU: a download is open (blocks sent, not finished)
    uint16_t plain_block_ = 0;
    // Plain DFU reads: one upload from the base, kept open and cached (reads come page by page).
    bool uploading_ = false, upload_ended_ = false;
    uint16_t upload_block_ = 0;
    std::vector<uint8_t> upload_cache_;
    void end_upload();
    std::string leave_outcome_;
    // DfuSe: what the device is doing, so that contiguous writes and reads go on from the address
    // pointer with the next block number instead of setting the address again (three transfers
    // saved per block). Any error makes it Unknown: the next operation starts from dfuIDLE.
    enum class DfuseMode { Unknown, Idle, Downloading, Uploading };
    DfuseMode mode_ = DfuseMode::Unknown;
    uint32_t pointer_ = 0;
    uint16_t next_block_ = 0;  // 0: the pointer is not known
    bool continues(DfuseMode mode, uint32_t address) const;
    // Brings the device to dfuIDLE (from anything) or keeps dfuDNLOAD-IDLE when `downloading_ok`.
    void dfuse_ready(bool downloading_ok);
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::dfu

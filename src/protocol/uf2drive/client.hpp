#pragma once
// A UF2 drive (microsoft/uf2): the RP2040 boot ROM's RPI-RP2, Adafruit's SAMD51 bootloader. The drive
// is recognised by its INFO_UF2.TXT, which names the board (Board-ID) and the bootloader; the image
// becomes a UF2 file with the chip's family ID and its own addresses (256-byte blocks), is copied to
// the drive and flushed, and the board, once every block has arrived, resets: the drive goes away,
// which is what mcuflash waits for. A UF2 drive cannot give the flash back (the RP2040 ROM shows no
// CURRENT.UF2; where there is one, it is not read), so the result says "not verified". The
// bootloader's own region is refused before anything is written (the plan checks the image
// against the application region).
#include <optional>
#include <string>

#include "protocol/bootloader.hpp"
#include "storage/drive_presence.hpp"
#include "storage/volume_link.hpp"

namespace mcuflash::protocol::uf2drive {

// What INFO_UF2.TXT says: "UF2 Bootloader v3.0", "Model: Raspberry Pi RP2", "Board-ID: RPI-RP2".
struct Uf2Info {
    std::string bootloader, model, board_id;
    static Uf2Info parse(const std::string& text);
};

class Client : public Bootloader {
public:
    Client(storage::VolumeLink& drive, const ConnectOptions& options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    void write_image(uint32_t address, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    // Waits for the drive to leave (the board reset into the application).
    void start_application() override;
    void leave() override {}

    const Uf2Info& drive_info() const { return info_uf2_; }
    uint32_t family_id() const { return family_; }

private:
    storage::VolumeLink& drive_;
    ConnectOptions options_;
    Uf2Info info_uf2_;
    DeviceInfo info_;
    uint32_t family_ = 0;
    std::optional<storage::DriveDevice> device_;  // the USB drive behind the folder or node
    bool left_while_writing_ = false;
};

ProtocolInfo protocol_info();

// The file name mcuflash gives the UF2 file on the drive.
inline constexpr const char* kUf2FileName = "MCUFLASH.UF2";

}  // namespace mcuflash::protocol::uf2drive

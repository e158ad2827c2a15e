#pragma once
// The SD-card (and USB-drive) bootloaders: the board installs a file from its card at power-on. The
// "device" is the card: the board (ConnectOptions::board) decides the file name, the transform and
// where the application starts; the image goes on the card as one file (Capabilities::whole_image),
// is read back from the card and compared, and the user then puts the card in the board.
//
// The same client serves an MSC bootloader's drive (protocol "msc": the board itself is the drive,
// "copy klipper.bin to the drive that appears"): the file goes on it the same way, then mcuflash
// waits for the drive to leave (the board installed the file and started its application). What
// the drive held is not the flash, so that result says "not verified".
#include <memory>
#include <optional>

#include "protocol/bootloader.hpp"
#include "storage/card_rules.hpp"
#include "storage/drive_presence.hpp"
#include "storage/transforms.hpp"
#include "storage/volume_link.hpp"

namespace mcuflash::protocol::sdcard {

class Client : public Bootloader {
public:
    // `drive`: an MSC bootloader's drive (also chosen by a board or bootloader whose protocol is msc).
    Client(storage::VolumeLink& card, const ConnectOptions& options, bool drive = false);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    void write_image(uint32_t address, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    // A card: nothing (the board installs the file when it next starts with the card). A drive: waits
    // for it to leave.
    void start_application() override;
    void leave() override {}

    const storage::CardRules& rules() const { return rules_; }
    const std::string& written_name() const { return written_name_; }

private:
    storage::VolumeLink& card_;
    ConnectOptions options_;
    storage::CardRules rules_;
    DeviceInfo info_;
    std::string written_name_;
    bool drive_ = false;
    std::optional<storage::DriveDevice> device_;  // the USB drive behind the folder or node
    bool left_while_writing_ = false;
    std::optional<std::vector<uint8_t>> read_back_;  // the card's file, untransformed, since the last write
};

ProtocolInfo protocol_info();
ProtocolInfo msc_protocol_info();

}  // namespace mcuflash::protocol::sdcard

#pragma once
// The SD-card (and USB-drive) bootloaders: the board installs a file from its card at power-on. The
// "device" is the card: the board (ConnectOptions::board) decides the file name, the transform and
// where the application starts; the image goes on the card as one file (Capabilities::whole_image),
// is read back from the card and compared, and the user then puts the card in the board.
#include <memory>

#include "protocol/bootloader.hpp"
#include "storage/card_rules.hpp"
#include "storage/transforms.hpp"
#include "storage/volume_link.hpp"

namespace mcuflash::protocol::sdcard {

class Client : public Bootloader {
public:
    Client(storage::VolumeLink& card, const ConnectOptions& options);

    DeviceInfo connect() override;
    Capabilities capabilities() const override;
    void write(uint32_t address, std::span<const uint8_t> data) override;
    void write_image(uint32_t address, std::span<const uint8_t> bytes) override;
    std::vector<uint8_t> read(uint32_t address, uint32_t length) override;
    void start_application() override {}  // the board installs the file when it next starts with the card
    void leave() override {}

    const storage::CardRules& rules() const { return rules_; }
    const std::string& written_name() const { return written_name_; }

private:
    storage::VolumeLink& card_;
    ConnectOptions options_;
    storage::CardRules rules_;
    DeviceInfo info_;
    std::string written_name_;
    std::optional<std::vector<uint8_t>> read_back_;  // the card's file, untransformed, since the last write
};

ProtocolInfo protocol_info();

}  // namespace mcuflash::protocol::sdcard

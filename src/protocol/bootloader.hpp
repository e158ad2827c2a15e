#pragma once
// The common interface every bootloader protocol client exposes to plan/.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/progress.hpp"
#include "link/byte_link.hpp"
#include "link/hid_device.hpp"
#include "link/usb_device.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::protocol {

struct DeviceInfo {
    std::string chip;              // knowledge-base chip name ("" when the device is unknown)
    std::string bootloader;        // knowledge-base bootloader name ("" when not identified)
    std::string bootloader_text;   // what the device says about itself, e.g. "optiboot 4.4"
    std::vector<uint8_t> signature;
    uint32_t flash_base = 0;
    uint32_t flash_size = 0;
    uint32_t app_start = 0;        // the writable application region is [app_start, app_end)
    uint32_t app_end = 0;
    uint32_t page_size = 0;        // the program unit
    // A ROM bootloader leaves all flash to the application, but the start of flash is where a flash
    // bootloader would live (what the chip boots first): writing below this needs an explicit flag.
    std::optional<uint32_t> boot_area_end;
    std::vector<std::pair<std::string, std::string>> details;  // extra facts for `info`
};

// One unit the flash is erased in (a page or a sector).
struct EraseUnit {
    uint32_t address = 0;
    uint32_t size = 0;
    uint64_t end() const { return uint64_t(address) + size; }
};

struct Capabilities {
    bool can_read = true;
    bool can_checksum = false;
    // A checksum finds differences; only a cryptographic hash (SHA-256 computed on the chip) also
    // proves two contents the same. Without that, "verified" and "unchanged" take a read-back.
    bool checksum_proves_sameness = false;
    std::string checksum_name;     // in words, for messages: "CRC-16/XMODEM"
    bool erases_on_write = false;  // writing a page erases it first (optiboot)
    uint32_t write_unit = 1;       // writes are whole multiples of this, aligned to it
    // How much one verify read asks for (0: the plan's default, 1 KiB): more where each read costs a
    // round trip of several USB transfers (PICOBOOT).
    uint32_t verify_read_size = 0;
    // Writes must come in ascending address order (stk500boot_v2's erase pointer, plain DFU's block
    // numbers); the client turns a step back into what the device needs (a rewind from its start).
    bool writes_in_address_order = false;
    // The device takes the whole image at once, as one file (an SD card, a USB drive, a UF2 drive):
    // write_image() instead of pages and erase units.
    bool whole_image = false;
    // The file waits on the device until the board's next start (an SD card): nothing is installed
    // or started now. A drive the board itself shows (MSC, UF2) installs the file at once instead.
    bool installed_at_next_start = false;
    // Flash that must be erased (erase()) before it is written, in these units, in address order;
    // empty when writes need no separate erase.
    std::vector<EraseUnit> erase_units;
    // With can_checksum: what checksum() returns for these bytes, computed here.
    std::function<uint32_t(std::span<const uint8_t>)> local_checksum;
};

// The optional role of removing a chip's protection (STM32 ROM bootloaders).
class Protection {
public:
    virtual ~Protection() = default;
    // Readout protection off: the chip erases its whole flash.
    virtual void remove_readout_protection() = 0;
    // False where the bootloader has no such command (DfuSe).
    virtual bool can_remove_write_protection() const = 0;
    virtual void remove_write_protection() = 0;
};

// What a client chose at connect() (how the device takes pages, its transfer strategy); using it
// before connect() is a bug in mcuflash: std::logic_error naming `client`.
template <typename Part>
Part& chosen_at_connect(const std::unique_ptr<Part>& part, const char* client) {
    if (!part) throw std::logic_error(std::string(client) + " used before connect()");
    return *part;
}

class Bootloader {
public:
    virtual ~Bootloader() = default;

    virtual DeviceInfo connect() = 0;
    virtual Capabilities capabilities() const = 0;
    // Erases [address, address + length), whole erase units (Capabilities::erase_units).
    virtual void erase(uint32_t address, uint32_t length);
    // Before a run of write() calls: the ranges they will cover (merged, in address order). A device
    // that erases by itself learns which of its erase units the run covers whole (PICOBOOT then
    // need not read a sector first to keep what the image leaves alone).
    virtual void will_write(std::span<const EraseUnit> ranges) { (void)ranges; }
    virtual void write(uint32_t address, std::span<const uint8_t> data) = 0;
    // Capabilities::whole_image devices: the image's bytes from `address`, gaps as 0xFF.
    virtual void write_image(uint32_t address, std::span<const uint8_t> bytes);
    virtual std::vector<uint8_t> read(uint32_t address, uint32_t length) = 0;
    // The device's own checksum of a range (Capabilities::local_checksum computes the same here);
    // nullopt when it has none.
    virtual std::optional<uint32_t> checksum(uint32_t address, uint32_t length);
    virtual void start_application() = 0;
    // After a read-only command (info, read, verify): back to what the device ran, changing nothing
    // on it (start_application may change boot settings, as SAM3/SAM4's GPNVM bit 1).
    virtual void leave() { start_application(); }

    // Optional roles: nullptr when the bootloader has none.
    virtual Protection* protection() { return nullptr; }

    // Exchanges of this session that the line lost or damaged, where a damaged command may have been
    // carried out as another one that changes flash far from where the session was: SAM-BA on the
    // Arduino and Adafruit SAMD bootloaders, whose commands carry no checksum and whose `X` erases
    // from its address to the end of the flash (they also have `Z`, a checksum, so checking again
    // costs a few exchanges). The plan checks the image again after a verify during which this count
    // moved. The others count nothing: the STM32 ROM's and STK500v2's commands carry checksums, USB
    // transfers are checked by the bus, and STK500v1's one write command, damaged from a read,
    // writes the page being read, which the retried read then finds.
    virtual uint64_t failed_exchanges() const { return 0; }

    // Whole-image devices that send the image in blocks say after each how many of write_image()'s
    // bytes are done, so a long write shows progress (the plan sets this around write_image).
    void set_write_progress(std::function<void(size_t bytes_done)> advanced) { write_progress_ = std::move(advanced); }

protected:
    void write_advanced(size_t bytes_done) const {
        if (write_progress_) write_progress_(bytes_done);
    }

private:
    std::function<void(size_t)> write_progress_;
};

struct ConnectOptions {
    // The knowledge base the client identifies chips and bootloaders in (nullptr: the built-in one).
    const targets::Knowledge* knowledge = nullptr;
    const targets::Knowledge& knowledge_base() const;
    std::string chip;        // expected chip ("" = take what the device says)
    std::string bootloader;  // force a knowledge-base bootloader ("" = identify)
    std::string board;       // a data/boards.toml ID ("" = none named): file-copy protocols take its file rules
    bool reset = true;       // pulse DTR/RTS to reset into the bootloader
    // With reset: an application running on the board may be asked to start its bootloader (SAM-BA:
    // the 1200-baud touch; Katapult: Klipper's UART request). Off while probing unknown ports.
    bool ask_application = true;
    int sync_attempts = 10;
    link::WarningSink warn;
};

struct ProtocolInfo {
    std::string name;
    std::string description;
    link::LinkKind runs_on = link::LinkKind::ByteStream;
    link::SerialSettings serial;  // byte streams: the protocol's default line settings
    // Tried on a serial port when no -p is given (one protocol says so).
    bool default_on_serial = false;
    // Auto-detection on a serial port without -p: the order this protocol is probed in (0: never).
    // A probe must not harm a device of another kind: see device/connect.cpp.
    int probe_order = 0;
    // The client offers Bootloader::protection().
    bool offers_protection = false;
    // What to do when no such device is connected (how to start its bootloader); "": the transport's.
    std::string not_found_hint;
    // The board's own bootloader installs a file from a card at its next start, under the name (and in
    // the form) the board gives (boards.toml firmware_file, transform): no bootloader facts needed.
    bool installs_card_file = false;
    // Builds the client on a link of kind `runs_on` (link::link_as checks it).
    std::function<std::unique_ptr<Bootloader>(link::Link&, const ConnectOptions&)> make;
};

// The ProtocolInfo of a USB bootloader whose client is built as Client(LinkType&, ConnectOptions):
// link::UsbDevice, or link::HidDevice for the HID bootloaders (hid_protocol_info).
template <class Client, class LinkType = link::UsbDevice>
ProtocolInfo usb_protocol_info(std::string name, std::string description, std::string not_found_hint = {}) {
    ProtocolInfo info;
    info.name = std::move(name);
    info.description = std::move(description);
    info.runs_on = LinkType::kKind;
    info.not_found_hint = std::move(not_found_hint);
    info.make = [protocol = info.name](link::Link& link, const ConnectOptions& options) {
        return std::unique_ptr<Bootloader>(std::make_unique<Client>(link::link_as<LinkType>(link, protocol), options));
    };
    return info;
}
template <class Client>
ProtocolInfo hid_protocol_info(std::string name, std::string description, std::string not_found_hint = {}) {
    return usb_protocol_info<Client, link::HidDevice>(std::move(name), std::move(description), std::move(not_found_hint));
}

// The last command of a session that makes the device leave the bus (start the application): an
// I/O error from the device leaving before the transfer completed is no failure; others are thrown.
void send_as_it_leaves(const std::function<void()>& send);

// The registry: one line per protocol in registry.cpp.
const std::vector<ProtocolInfo>& protocols();
const ProtocolInfo& find_protocol(const std::string& name);  // throws Usage error listing the known ones
const ProtocolInfo* spoken_protocol(const std::string& name);  // nullptr: a protocol mcuflash does not speak
// "stk500v1, stk500v2, ..." for help texts and messages.
std::string protocol_names();

}  // namespace mcuflash::protocol

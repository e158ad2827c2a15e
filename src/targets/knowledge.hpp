#pragma once
// The knowledge base: chips and bootloaders, loaded from data/*.toml (embedded at build time;
// MCUFLASH_DATA_DIR overrides with a folder of .toml files).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "targets/avr_fuses.hpp"
#include "targets/boards.hpp"

namespace mcuflash::targets {

// An Atmel SAM chip's facts for SAM-BA (data/chips.toml [chips.X.sam]): which flash controller it
// has and the memory the client's applet and the simulator use.
struct SamFacts {
    // The flash controller: "nvmctrl_d21", "nvmctrl_d51" or "eefc"; its driver is in protocol/samba,
    // its model in sim/samba.
    std::string controller;
    uint32_t erase_unit = 0;      // bytes one erase command clears; 0: writing a page erases it (EEFC)
    uint32_t cpuid = 0;           // SCB CPUID
    uint32_t planes = 1;          // EEFC: flash planes, a controller each
    uint32_t lock_regions = 0;    // EEFC
    uint32_t gpnvm_bits = 0;      // EEFC
    uint32_t chipid_register = 0;    // EEFC: CHIPID_CIDR (EXID at +4)
    uint32_t reset_controller = 0;   // EEFC: RSTC_CR; 0: reset through the Cortex-M AIRCR
    uint32_t rom = 0;                // where the boot ROM with the SAM-BA monitor is (0: none)
    bool rom_monitor_reads_flash = true;  // false: the ROM's R reads flash as zeros (SAM3X)
    uint32_t applet_area = 0;     // SRAM for the client's word-copy applet and data buffers (BOSSA's)
    uint32_t stack_top = 0;       // the stack the applet runs with
    std::vector<std::pair<uint32_t, uint32_t>> sram;  // (address, size)
};

// What a debug probe sees of an ARM chip over SWD (data/chips.toml [chips.X.swd]). The chip is told
// by its DBGMCU_IDCODE (STM32: product_id) or its DSU DID (SAMD/SAMC: signature).
struct SwdFacts {
    std::string flash_controller;  // "stm32f1", "stm32f4", "samd21" (SAMD21 and SAMC21) or "samd51"
    uint32_t dpidr = 0;            // the SW-DP's DPIDR
    uint32_t cpuid = 0;            // SCB CPUID
    uint32_t sram_base = 0x20000000;
    uint32_t sram_size = 0;
    std::string openocd_target;    // OpenOCD's target script: "target/stm32f1x.cfg"
    std::string openocd_erase;     // its whole-chip erase: "stm32f1x mass_erase 0", "at91samd chip-erase"
    std::string openocd_bootprot;  // SAMD: its BOOTPROT command, given the bytes: "at91samd bootloader"
};

// The chip's symbols in Klipper's Kconfig (data/chips.toml [chips.X.klipper_kconfig]), without the
// CONFIG_ prefix. An interface choice is what the menu shows (name and pins: "USART1 PA10/PA9") and
// the assignments it takes: "STM32_SERIAL_USART1" (=y) or "RPXXXX_CANBUS_GPIO_RX=4".
struct KlipperKconfigChoice {
    std::string label;
    std::vector<std::string> assignments;
};
struct KlipperKconfigFacts {
    std::vector<std::string> choose;   // architecture and processor: MACH_STM32, MACH_STM32F103
    std::vector<std::string> offsets;  // one per Chip::klipper_offsets entry (empty: the menu has no choice)
    std::string clock;                 // the crystal symbol, "{MHz}" for the frequency ("" = no choice)
    std::string usb;                   // USB ("" = none)
    std::vector<KlipperKconfigChoice> serial, can;  // in menu order, the first the default
    std::string usb_can;               // USB to CAN bridge ("" = none)
    std::vector<KlipperKconfigChoice> usb_can_bus;  // a bridge's CAN pins
    std::string default_interface;     // "usb", "serial" or "can": what Klipper builds with no interface symbol
};

struct Chip {
    std::string name;
    std::string family;  // "avr", ...
    std::string description;
    std::vector<uint8_t> signature;
    uint32_t flash_base = 0;
    uint32_t flash_size = 0;
    uint32_t page_size = 0;
    uint32_t eeprom_size = 0;
    uint32_t max_boot_size = 0;
    // AVR: fuse and lock-bit facts, and the bootloader `bootloader install` puts on it by default.
    std::optional<AvrFuses> fuses;
    std::string install_bootloader;
    // STM32: the product ID the ROM bootloader reports (Get ID); where the chip keeps its flash size
    // in KiB (parts sharing a product ID differ there); the erase layout when it is not uniform pages
    // of page_size: sector sizes in address order (F2/F4).
    std::optional<uint16_t> product_id;
    std::optional<uint32_t> flash_size_register;
    std::vector<uint32_t> sectors;
    std::optional<SamFacts> sam;
    std::optional<SwdFacts> swd;
    // Klipper's menuconfig "Bootloader offset" choices for this chip, in menu order (the first is
    // the default); [0] where the application always starts at the flash base (AVR, SAM3/SAM4).
    std::vector<uint32_t> klipper_offsets;
    std::optional<KlipperKconfigFacts> klipper_kconfig;
};

struct EraseUnitRange {
    uint32_t address = 0;
    uint32_t size = 0;
};
// The chip's erase units from its flash base up to `flash_size` (sectors, else pages of page_size).
std::vector<EraseUnitRange> erase_layout(const Chip& chip, uint32_t flash_size);

enum class Placement { Top, Bottom };

// How a bootloader is put on a chip with an ISP programmer (data/bootloaders.toml `install.CHIP`).
struct BootloaderInstall {
    std::string hex;       // where Debian installs the file
    std::string package;   // the Debian package that ships it
    FuseValues fuses;      // lfuse/hfuse/efuse, written after the chip erase
    uint8_t unlock = 0x3F;  // lock byte before writing (opens the boot section)
    uint8_t lock = 0x0F;    // lock byte after: the application cannot overwrite the bootloader
    // Ranges (address, size) outside the boot section the file is known to hold, and may.
    std::vector<std::pair<uint32_t, uint32_t>> stray_bytes;
};

struct Bootloader {
    std::string name;
    std::string protocol;
    std::string description;
    Placement placement = Placement::Top;
    uint32_t baud = 0;                 // the usual rate
    std::vector<uint32_t> other_bauds;  // rates some boards use too
    int sw_major_min = -1, sw_major_max = -1;
    // A bootloader that pretends to be another chip (the Arduino M0's reports an atmega2560's
    // signature): what it reports; the chip it really runs on is the one in `sizes`.
    std::vector<uint8_t> reports_signature;
    // USB bootloaders: the VID:PID pairs they enumerate as, and (plain DFU) the alternate setting
    // that writes the application.
    std::vector<std::pair<uint16_t, uint16_t>> usb_ids;
    std::optional<uint8_t> dfu_alt;
    // A bootloader that also shows a UF2 drive: its volume label ("RPI-RP2"); "" = none.
    std::string uf2_drive;
    // Where its binary comes from, for `bootloader install` over SWD (a URL, or how to build it).
    std::string source;
    std::map<std::string, uint32_t> sizes;  // chip name -> reserved bytes (0: in ROM, keeps no flash)
    std::map<std::string, BootloaderInstall> installs;  // chip name -> how to install it there

    std::optional<uint32_t> size_on(const std::string& chip) const;
};

// A debug probe model users may plug in (data/probes.toml): its USB ids get udev rules.
struct DebugProbeModel {
    std::string name;
    std::string description;
    std::vector<std::pair<uint16_t, uint16_t>> usb_ids;
};

class Knowledge {
public:
    // Parses TOML documents; throws core::Error(BadInput) naming the document and key on bad data.
    static Knowledge from_documents(const std::vector<std::pair<std::string, std::string>>& named_toml);
    // The built-in data, or the folder named by MCUFLASH_DATA_DIR.
    static const Knowledge& builtin();

    // By name: exact, else in any case, by a unique prefix, or Klipper's CONFIG_MCU ("stm32f446xx").
    const Chip* find_chip(const std::string& name) const;
    const Chip& chip(const std::string& name) const;  // throws Usage listing the known (or the matching) chips
    std::vector<const Chip*> chips_matching(const std::string& name) const;
    const Chip* chip_by_signature(const std::vector<uint8_t>& signature) const;
    std::vector<const Chip*> chips_by_product_id(uint16_t product_id) const;
    const Bootloader* find_bootloader(const std::string& name) const;
    std::vector<const Bootloader*> bootloaders_for(const std::string& protocol, const std::string& chip) const;
    // The bootloader that enumerates as this USB VID:PID (its `usb` list), if any.
    const Bootloader* bootloader_by_usb_id(uint16_t vendor, uint16_t product) const;

    const std::map<std::string, Chip>& chips() const { return chips_; }
    // protocols.toml: every protocol a bootloader may name -> how firmware goes in, in words.
    const std::map<std::string, std::string>& protocols() const { return protocols_; }
    const std::map<std::string, DebugProbeModel>& probes() const { return probes_; }
    const std::map<std::string, Bootloader>& bootloaders() const { return bootloaders_; }
    // data/boards.toml (boards.cpp): the boards by ID, the guide words by bootloader or protocol.
    const std::map<std::string, Board>& boards() const { return boards_; }
    const std::map<std::string, BootloaderGuide>& guides() const { return guides_; }
    // The exact ID; else the boards whose ID, name or an alias is the pattern written another way
    // ("skr 1.4", "SKR v1.4"); else every board with all the pattern's words, best first.
    std::vector<const Board*> find_boards(const std::string& pattern) const;

private:
    std::map<std::string, std::string> protocols_;
    std::map<std::string, DebugProbeModel> probes_;
    std::map<std::string, Chip> chips_;
    std::map<std::string, Bootloader> bootloaders_;
    std::map<std::string, Board> boards_;
    std::map<std::string, BootloaderGuide> guides_;
};

}  // namespace mcuflash::targets

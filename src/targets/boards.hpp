#pragma once
// Boards: the printer controller boards Klipper and Kalico have configs for (data/boards.toml), each
// tied to its chip, the bootloaders it ships with, where the application starts and how firmware
// goes in; and the words the guide gives per bootloader (or protocol): the classic tool's command
// and how the bootloader is installed.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mcuflash::targets {

class Knowledge;

struct Board {
    std::string id;    // "btt-skr-v1.4": a stable slug, what `--board` and `guide` take
    std::string name;  // as Klipper's config names it
    std::vector<std::string> aliases;          // other names people use ("SKR 1.4", printer names)
    std::vector<std::string> klipper_configs;  // config/generic-*.cfg, config/printer-*.cfg ...
    std::string mcu;   // Klipper's CONFIG_MCU ("stm32f407xx")
    std::string chip;  // the data/chips.toml row of the real part
    std::string clock;  // "12MHz" when the config states it
    // data/bootloaders.toml rows; the first is the one the firmware goes in through, the others are
    // alternatives the board has or commonly gets (a ROM bootloader to install another one ...).
    std::vector<std::string> bootloaders;
    // The application start, relative to the chip's flash base; empty where the config does not say.
    std::optional<uint32_t> app_offset;
    std::string flash_method;   // a protocol of data/protocols.toml, or "none"
    std::string firmware_file;  // the name the file needs on the SD card, else the build's output
    std::string transform;      // "", "mks-robin", "chitu", "srec": what the file needs first
    bool unique_name = false;   // the bootloader skips a file name it installed before (Creality)
    std::string interface;      // what to select in menuconfig: "USB", "USART1 PA10/PA9", "CAN ..."
    std::string entry;          // how the bootloader is entered, in words
    std::string notes;
    std::string where;  // "boards.toml:12: boards.ID", for messages
};

// What the guide says about a bootloader, or about every bootloader of a protocol ([guides.NAME]).
struct BootloaderGuide {
    // The classic tool's command. Placeholders: {file} (the build's output), {port}, {mcu}, {chip},
    // {address} (where the application starts), {offset}, {usb}, {baud}, {firmware_file}.
    std::string classic;
    std::string install;  // how to put the bootloader on the board, or why it cannot be lost
};

// What data/boards.toml adds to the knowledge base.
struct BoardTables {
    std::map<std::string, Board> boards;            // by ID
    std::map<std::string, BootloaderGuide> guides;  // by bootloader or protocol name
};

// The guide for a bootloader: its own [guides.NAME], else its protocol's; nullptr when neither exists.
const BootloaderGuide* guide_for(const Knowledge& knowledge, const std::string& bootloader);

// The boards whose names are nearest `pattern` (for "unknown board" messages), best first.
std::vector<const Board*> nearest_boards(const Knowledge& knowledge, const std::string& pattern, size_t count);

// A firmware file's transformation before it goes on the card (boards-notes §6): its command.
struct Transform {
    std::string name;
    std::string command;  // placeholders as for BootloaderGuide::classic
};
const std::vector<Transform>& transforms();

struct Chip;
// Klipper's menuconfig entry for an application offset on a chip: "28KiB bootloader", "No
// bootloader", "128KiB bootloader with 512 byte offset"; on the HC32F460 the address ("0x008000").
std::string klipper_offset_choice(const Chip& chip, uint32_t offset);

// A name as people type it, in words: lower case, letters and numbers apart, a "v" before a version
// dropped and trailing ".0"s cut ("SKR-v1.4" -> {"skr", "1.4"}; "Ender3 V2.0" -> {"ender", "3", "2"}).
std::vector<std::string> name_words(const std::string& text);

}  // namespace mcuflash::targets

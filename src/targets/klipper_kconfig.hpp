#pragma once
// Klipper's build configuration for a board, from the knowledge base: the minimal `.config` that
// Klipper's `make olddefconfig` completes (architecture, processor, bootloader offset, crystal,
// communication interface). The chip's Kconfig symbols are data (data/chips.toml
// [chips.X.klipper_kconfig]); the board says its offset, crystal and interface (data/boards.toml).
// What cannot be told is left to Klipper's defaults and said in a "# mcuflash: ..." line.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "targets/knowledge.hpp"

namespace mcuflash::targets {

enum class KconfigInterface {
    Board,     // the first interface the board's `interface` names
    Usb,
    Serial,    // a UART (printer.cfg's /dev/ttyAMA0, /dev/ttyS0 ...)
    Can,       // a CAN node (printer.cfg's canbus_uuid)
    UsbToCan,  // Klipper's "USB to CAN bus bridge": USB to the host, CAN to the other nodes
};

struct KconfigChoices {
    KconfigInterface interface = KconfigInterface::Board;
    std::string pins;                        // "PB8/PB9": the interface's pins when not the board's
    std::optional<uint32_t> serial_baud;     // CONFIG_SERIAL_BAUD (printer.cfg's baud)
    std::optional<uint32_t> canbus_bitrate;  // CONFIG_CANBUS_FREQUENCY (the can0 bitrate)
};

// What klipper_kconfig_for decided, for the caller's messages.
struct KlipperKconfig {
    std::string text;                 // the .config
    std::optional<uint32_t> offset;   // the application offset chosen (nullopt: Klipper's default)
    std::string offset_source;        // "the board's app_offset", "katapult (8 KiB on stm32g0b1xb)" ...
    std::string interface;            // in words: "USB", "serial USART1 PA10/PA9", "CAN PB0/PB1" ...
    std::vector<std::string> notes;   // what was left to Klipper's defaults
};

// Throws core::Error: Unsupported when the chip has no Kconfig facts or the interface asked for does
// not exist on it (no USB, no CAN), or when the offset is not one of Klipper's menu; BadInput when the
// CAN pins cannot be told (the board does not say, and the chip has more than one choice).
KlipperKconfig klipper_kconfig_plan(const Knowledge& knowledge, const Board& board, const Bootloader* chosen,
                                    const KconfigChoices& choices);
std::string klipper_kconfig_for(const Knowledge& knowledge, const Board& board, const Bootloader* chosen,
                                const KconfigChoices& choices);

// The interface kinds of a board's `interface` words, in its order: "USB PA11/PA12 or CAN PB0/PB1"
// -> {Usb, Can} (for messages and for init's choice).
std::vector<KconfigInterface> board_interfaces(const Board& board);

std::string interface_name(KconfigInterface interface);  // "USB", "serial", "CAN", "USB to CAN bridge"

}  // namespace mcuflash::targets

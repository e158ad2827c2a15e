#include "targets/klipper_kconfig.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>

#include "core/error.hpp"

namespace mcuflash::targets {

using core::Error;
using core::ErrorKind;

namespace {

// One way a board's `interface` words offer: "USART1 PA10/PA9" -> Serial, USART1, {PA10, PA9}.
struct Offered {
    KconfigInterface kind = KconfigInterface::Board;  // Board: words mcuflash cannot tell
    std::string port;                                 // "USART1", "UART0" ("" = not said)
    std::vector<std::string> pins;                    // sorted, so PA9/PA10 matches PA10/PA9
    std::string words;
};

std::string lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

bool is_pin(const std::string& word) {
    static const std::regex pin(R"(P[A-Z][0-9]{1,2}|P[0-9]\.[0-9]{1,2}|GPIO[0-9]{1,2})");
    return std::regex_match(word, pin);
}

// The port name and pins in some words ("USART1 PA10/PA9", "CAN on PA9/PA10", "UART0 GPIO1/GPIO0").
void read_port_and_pins(const std::string& words, Offered& into) {
    static const std::regex port(R"((USART|UART)[0-9])");
    std::istringstream in(words);
    for (std::string word; in >> word;) {
        while (!word.empty() && (word.back() == ',' || word.back() == ')' || word.back() == ';')) word.pop_back();
        while (!word.empty() && word.front() == '(') word.erase(word.begin());
        if (std::regex_match(word, port)) into.port = word;
        const auto slash = word.find('/');
        if (slash != std::string::npos && slash > 0 && is_pin(word.substr(0, slash)) && is_pin(word.substr(slash + 1))) {
            into.pins = {word.substr(0, slash), word.substr(slash + 1)};
            std::sort(into.pins.begin(), into.pins.end());
        }
    }
}

// "USB PA11/PA12, UART PA9/PA10, or UART PD8/PD9 (ESP32)" -> three offers.
std::vector<Offered> offered_interfaces(const std::string& interface) {
    std::vector<std::string> parts{interface};
    for (const std::string separator : {";", ", or ", ", ", " or "}) {
        std::vector<std::string> split;
        for (const auto& part : parts) {
            size_t start = 0;
            for (size_t at; (at = part.find(separator, start)) != std::string::npos; start = at + separator.size())
                split.push_back(part.substr(start, at - start));
            split.push_back(part.substr(start));
        }
        parts = split;
    }
    std::vector<Offered> out;
    for (const auto& part : parts) {
        Offered o;
        o.words = part;
        // Words in parentheses say more about the port ("(CAN also available)", "(CH340)"), not what it is.
        std::string plain;
        int depth = 0;
        for (char c : part) {
            if (c == '(') ++depth;
            if (depth == 0) plain += c;
            if (c == ')' && depth > 0) --depth;
        }
        std::vector<std::string> words;
        std::istringstream in(lower(plain));
        for (std::string w; in >> w;) words.push_back(w);
        auto has = [&](const std::string& prefix) {
            return std::any_of(words.begin(), words.end(), [&](const std::string& w) { return w.starts_with(prefix); });
        };
        const bool serial = has("uart") || has("usart") || has("serial") || plain.find("/tty") != std::string::npos ||
                            lower(plain).find("serial") != std::string::npos;
        if (serial)
            o.kind = KconfigInterface::Serial;
        else if (std::find(words.begin(), words.end(), "can") != words.end())
            o.kind = KconfigInterface::Can;
        else if (has("usb"))
            o.kind = KconfigInterface::Usb;
        if (o.kind == KconfigInterface::Board) continue;
        read_port_and_pins(plain, o);
        out.push_back(o);
    }
    return out;
}

// The chip's menu choice for an offer: same pins, else same port, else nothing.
const KlipperKconfigChoice* matching_choice(const std::vector<KlipperKconfigChoice>& choices, const Offered& wanted) {
    for (const auto& choice : choices) {
        Offered label;
        read_port_and_pins(choice.label, label);
        if (!wanted.pins.empty() && label.pins == wanted.pins) return &choice;
    }
    if (wanted.pins.empty() && !wanted.port.empty())
        for (const auto& choice : choices) {
            Offered label;
            read_port_and_pins(choice.label, label);
            if (label.port == wanted.port) return &choice;
        }
    return nullptr;
}

std::string hex(uint32_t value) { return fmt::format("0x{:X}", value); }

class ConfigText {
public:
    void note(const std::string& text) {
        lines_ += "# mcuflash: " + text + "\n";
        notes_.push_back(text);
    }
    void comment(const std::string& text) { lines_ += "# " + text + "\n"; }
    void set(const std::string& assignment) {
        lines_ += "CONFIG_" + (assignment.find('=') == std::string::npos ? assignment + "=y" : assignment) + "\n";
    }
    std::string text() const { return lines_; }
    std::vector<std::string> notes() const { return notes_; }

private:
    std::string lines_;
    std::vector<std::string> notes_;
};

}  // namespace

std::string interface_name(KconfigInterface interface) {
    switch (interface) {
        case KconfigInterface::Usb: return "USB";
        case KconfigInterface::Serial: return "serial";
        case KconfigInterface::Can: return "CAN";
        case KconfigInterface::UsbToCan: return "USB to CAN bridge";
        case KconfigInterface::Board: break;
    }
    return "the board's interface";
}

std::vector<KconfigInterface> board_interfaces(const Board& board) {
    std::vector<KconfigInterface> out;
    for (const auto& o : offered_interfaces(board.interface)) out.push_back(o.kind);
    return out;
}

KlipperKconfig klipper_kconfig_plan(const Knowledge& kb, const Board& board, const Bootloader* chosen,
                                    const KconfigChoices& choices) {
    const Chip& chip = kb.chip(board.chip);
    if (!chip.klipper_kconfig)
        throw Error(ErrorKind::Unsupported,
                    fmt::format("mcuflash does not know Klipper's menuconfig symbols for the {} ({})", board.name, chip.name),
                    "choose its options with make menuconfig");
    const auto& facts = *chip.klipper_kconfig;
    KlipperKconfig result;
    ConfigText config;
    config.comment(fmt::format("Klipper's build configuration for the {} ({}, {}), written by mcuflash.", board.name,
                               board.id, board.mcu));
    config.comment("Klipper's `make olddefconfig` completes it; review it with make menuconfig KCONFIG_CONFIG=<this file>.");
    config.set("LOW_LEVEL_OPTIONS");
    for (const auto& symbol : facts.choose) config.set(symbol);

    // Where the application starts: the chosen bootloader keeps its size, else the board says.
    std::optional<uint32_t> offset;
    // A bootloader at the top of flash (AVR) leaves the application at the start.
    auto start_after = [](const Bootloader& b, uint32_t size) { return b.placement == Placement::Bottom ? size : 0u; };
    if (chosen) {
        if (auto size = chosen->size_on(chip.name)) {
            offset = start_after(*chosen, *size);
            result.offset_source = fmt::format("the {} bootloader ({} KiB on the {})", chosen->name, *size / 1024, chip.name);
        } else {
            throw Error(ErrorKind::Unsupported,
                        fmt::format("the {} bootloader has no known size on the {}", chosen->name, chip.name),
                        fmt::format("data/bootloaders.toml lists the chips it exists on; choose another bootloader for the {}",
                                    board.name));
        }
    } else if (board.app_offset) {
        offset = *board.app_offset;
        result.offset_source = fmt::format("the {}'s application offset", board.name);
    } else if (!board.bootloaders.empty()) {
        if (const auto* first = kb.find_bootloader(board.bootloaders.front()))
            if (auto size = first->size_on(chip.name)) {
                offset = start_after(*first, *size);
                result.offset_source = fmt::format("the board's {} bootloader ({} KiB on the {})", first->name,
                                                   *size / 1024, chip.name);
            }
    }
    if (!facts.offsets.empty()) {
        if (offset) {
            const auto at = std::find(chip.klipper_offsets.begin(), chip.klipper_offsets.end(), *offset);
            if (at == chip.klipper_offsets.end())
                throw Error(ErrorKind::Unsupported,
                            fmt::format("Klipper's menu for the {} offers no bootloader offset of {} ({})", chip.name,
                                        hex(*offset), result.offset_source));
            config.comment(fmt::format("Bootloader offset: {} ({})", klipper_offset_choice(chip, *offset), result.offset_source));
            config.set(facts.offsets[static_cast<size_t>(at - chip.klipper_offsets.begin())]);
            result.offset = offset;
        } else {
            config.note(fmt::format("the {}'s bootloader offset is not known: Klipper's default ({}); check it in "
                                    "make menuconfig",
                                    board.name, klipper_offset_choice(chip, chip.klipper_offsets.front())));
        }
    } else if (!chip.klipper_offsets.empty()) {
        result.offset = chip.klipper_offsets.front();  // the menu has no choice: the application's one start
        result.offset_source = "the only one Klipper builds for the chip";
    }

    // The crystal, where the menu asks for it and the board states it plainly ("12MHz").
    if (!facts.clock.empty()) {
        static const std::regex mhz(R"(([0-9]+)MHz)");
        std::smatch m;
        if (std::regex_match(board.clock, m, mhz)) {
            std::string symbol = facts.clock;
            symbol.replace(symbol.find("{MHz}"), 5, m[1].str());
            config.set(symbol);
        } else {
            config.note(board.clock.empty()
                            ? std::string("the board's crystal is not stated: Klipper's default clock reference")
                            : fmt::format("the board's clock \"{}\" is not one crystal: Klipper's default clock "
                                          "reference; check it in make menuconfig",
                                          board.clock));
        }
    }

    // The communication interface: what the caller asks for, with the pins the board names for it.
    const auto offered = offered_interfaces(board.interface);
    KconfigInterface kind = choices.interface;
    const Offered* offer = nullptr;
    if (kind == KconfigInterface::Board) {
        if (offered.empty()) {
            config.note(fmt::format("the board's interface \"{}\" is not one mcuflash can tell: Klipper's default ({})",
                                    board.interface, facts.default_interface));
            result.interface = facts.default_interface;
        } else {
            offer = &offered.front();
            kind = offer->kind;
        }
    } else {
        const KconfigInterface looked_for = kind == KconfigInterface::UsbToCan ? KconfigInterface::Can : kind;
        for (const auto& o : offered)
            if (o.kind == looked_for) {
                offer = &o;
                break;
            }
    }
    Offered wanted = offer ? *offer : Offered{};
    if (!choices.pins.empty()) read_port_and_pins(choices.pins, wanted);
    const std::string said = offer ? fmt::format("the board's \"{}\"", offer->words) : std::string("asked for");

    auto pick = [&](const std::vector<KlipperKconfigChoice>& menu, const std::string& what) -> const KlipperKconfigChoice* {
        if (menu.empty()) return nullptr;
        if (const auto* found = matching_choice(menu, wanted)) return found;
        if (!wanted.pins.empty() || !wanted.port.empty())
            throw Error(ErrorKind::Unsupported,
                        fmt::format("Klipper's menu for the {} has no {} on {}", chip.name, what,
                                    wanted.port.empty() ? wanted.words : wanted.port + " " + wanted.words),
                        "choose the interface with make menuconfig");
        return nullptr;
    };
    switch (kind) {
        case KconfigInterface::Usb:
            if (facts.usb.empty() && facts.default_interface != "usb")
                throw Error(ErrorKind::Unsupported, fmt::format("the {} ({}) has no USB in Klipper", board.name, chip.name));
            config.comment(fmt::format("Communication interface: USB ({})", said));
            if (!facts.usb.empty()) config.set(facts.usb);
            result.interface = "USB";
            break;
        case KconfigInterface::Serial: {
            const auto* choice = pick(facts.serial, "serial port");
            if (!choice && !facts.serial.empty()) {
                choice = &facts.serial.front();
                config.note(fmt::format("the board names no serial pins: {}, the menu's first; check it in make menuconfig",
                                        choice->label));
            }
            if (!choice && facts.default_interface != "serial")
                throw Error(ErrorKind::Unsupported, fmt::format("the {} ({}) has no serial port in Klipper", board.name, chip.name));
            config.comment(fmt::format("Communication interface: serial{} ({})", choice ? " " + choice->label : "", said));
            if (choice)
                for (const auto& a : choice->assignments) config.set(a);
            config.set(fmt::format("SERIAL_BAUD={}", choices.serial_baud.value_or(250000)));
            result.interface = choice ? "serial " + choice->label : "serial";
            break;
        }
        case KconfigInterface::Can:
        case KconfigInterface::UsbToCan: {
            const bool bridge = kind == KconfigInterface::UsbToCan;
            if (bridge && facts.usb_can.empty())
                throw Error(ErrorKind::Unsupported,
                            fmt::format("the {} ({}) cannot be a USB to CAN bridge in Klipper", board.name, chip.name));
            const auto& menu = bridge ? facts.usb_can_bus : facts.can;
            if (menu.empty())
                throw Error(ErrorKind::Unsupported, fmt::format("the {} ({}) has no CAN bus in Klipper", board.name, chip.name));
            const auto* choice = pick(menu, "CAN bus");
            if (!choice && menu.size() == 1) choice = &menu.front();
            if (!choice)
                throw Error(ErrorKind::BadInput,
                            fmt::format("the {} does not say which pins its CAN bus is on (its interface: \"{}\")", board.name,
                                        board.interface),
                            "choose them with make menuconfig (Communication interface)");
            config.comment(fmt::format("Communication interface: {} on {} ({})", bridge ? "USB to CAN bus bridge" : "CAN bus",
                                       choice->label, said));
            if (bridge) config.set(facts.usb_can);
            for (const auto& a : choice->assignments) config.set(a);
            if (choices.canbus_bitrate)
                config.set(fmt::format("CANBUS_FREQUENCY={}", *choices.canbus_bitrate));
            else
                config.note("CAN bus speed: Klipper's default (1000000); it must be the bitrate of the host's can0");
            result.interface = fmt::format("{} {}", bridge ? "USB to CAN bridge, CAN on" : "CAN", choice->label);
            break;
        }
        case KconfigInterface::Board: break;
    }
    result.text = config.text();
    result.notes = config.notes();
    return result;
}

std::string klipper_kconfig_for(const Knowledge& knowledge, const Board& board, const Bootloader* chosen,
                                const KconfigChoices& choices) {
    return klipper_kconfig_plan(knowledge, board, chosen, choices).text;
}

}  // namespace mcuflash::targets

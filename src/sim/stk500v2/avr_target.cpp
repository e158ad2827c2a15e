#include "sim/stk500v2/avr_target.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::sim::stk500v2 {

namespace {

// Datasheet typical programming times (tWD_FLASH, tWD_ERASE, tWD_FUSE, tWD_EEPROM).
constexpr auto kPageWrite = std::chrono::microseconds(4500);
constexpr auto kChipErase = std::chrono::microseconds(9000);
constexpr auto kFuseWrite = std::chrono::microseconds(4500);
constexpr auto kEepromWrite = std::chrono::microseconds(9000);

struct FactoryFacts {
    const char* chip;
    AvrFuseState fuses;  // as shipped (datasheet "Fuse Bits" default values)
    bool rstdisbl_and_dwen;  // hfuse bits 7 (RSTDISBL) and 6 (DWEN) exist
};
constexpr FactoryFacts kFactory[] = {
    {"atmega168", {0x62, 0xDF, 0xF9, 0xFF}, true},
    {"atmega328p", {0x62, 0xD9, 0xFF, 0xFF}, true},
    {"atmega1280", {0x62, 0x99, 0xFF, 0xFF}, false},
    {"atmega1284p", {0x62, 0x99, 0xFF, 0xFF}, false},
    {"atmega2560", {0x62, 0x99, 0xFF, 0xFF}, false},
};
constexpr uint8_t kSpien = 0x20;  // hfuse bit 5 on every part here

const FactoryFacts& factory(const std::string& chip) {
    for (const auto& f : kFactory)
        if (chip == f.chip) return f;
    throw core::Error(core::ErrorKind::Usage, fmt::format("the ISP target simulator does not model the {}", chip));
}

uint8_t parse_byte(const std::string& text) { return static_cast<uint8_t>(std::stoul(text, nullptr, 0)); }

}  // namespace

AvrTarget::AvrTarget(const targets::Chip& chip, bool timing, const std::optional<std::filesystem::path>& flash_file)
    : chip_(chip),
      timing_(timing),
      flash_(FlashLayout::uniform(0, chip.flash_size, chip.page_size, chip.page_size),
             timing ? FlashTiming{kChipErase, {}, kPageWrite} : FlashTiming{}),
      eeprom_(FlashLayout::uniform(0, chip.eeprom_size ? chip.eeprom_size : 1, 1, 1)),
      page_buffer_(chip.page_size, 0xFF),
      fuses_(factory(chip.name).fuses) {
    if (flash_file) {
        flash_.attach_file(*flash_file);
        fuse_file_ = flash_file->string() + ".fuses";
        if (std::ifstream in(*fuse_file_); in) {
            std::string word;
            while (in >> word) {
                auto eq = word.find('=');
                if (eq == std::string::npos) continue;
                std::string name = word.substr(0, eq);
                uint8_t value = parse_byte(word.substr(eq + 1));
                if (name == "lfuse") fuses_.low = value;
                if (name == "hfuse") fuses_.high = value;
                if (name == "efuse") fuses_.extended = value;
                if (name == "lock") fuses_.lock = value;
            }
        } else {
            save_fuses();
        }
    }
    latched_ = fuses_;
    bricked_ = why_dead(latched_);
}

void AvrTarget::save_fuses() const {
    if (!fuse_file_) return;
    std::ofstream out(*fuse_file_, std::ios::trunc);
    out << fmt::format("lfuse=0x{:02X} hfuse=0x{:02X} efuse=0x{:02X} lock=0x{:02X}\n", fuses_.low, fuses_.high,
                       fuses_.extended, fuses_.lock);
}

std::string AvrTarget::why_dead(const AvrFuseState& f) const {
    if (factory(chip_.name).rstdisbl_and_dwen) {
        if (!(f.high & 0x80)) return "RSTDISBL is programmed: RESET is an I/O pin, ISP cannot start";
        if (!(f.high & 0x40)) return "DWEN is programmed: debugWIRE holds the RESET pin, ISP cannot start";
    }
    if (f.high & kSpien) return "SPIEN is unprogrammed: serial programming is disabled";
    switch (f.low & 0x0F) {
        case 0x0: return "CKSEL selects an external clock the board does not have: the chip has no clock";
        case 0x1: return "CKSEL selects a reserved clock source: the chip has no clock";
        case 0x3: return "CKSEL selects the 128 kHz oscillator: too slow for the programmer's SPI clock";
        case 0x4:
        case 0x5: return "CKSEL selects a low-frequency crystal: the 16 MHz crystal does not oscillate";
        default: return "";
    }
}

bool AvrTarget::enter_programming() {
    page_buffer_.assign(chip_.page_size, 0xFF);
    eeprom_buffer_.clear();
    extended_address_ = 0;
    if (!bricked_.empty()) return false;
    programming_ = true;
    return true;
}

void AvrTarget::leave_programming() {
    programming_ = false;
    latched_ = fuses_;
    bricked_ = why_dead(latched_);
}

uint32_t AvrTarget::word_address(uint8_t high, uint8_t low) const {
    return (uint32_t{extended_address_} << 16) | (uint32_t{high} << 8) | low;
}

void AvrTarget::chip_erase(Clock::duration& busy) {
    flash_.erase(0, flash_.size());
    const bool eesave = !(fuses_.high & 0x08);  // EESAVE programmed: EEPROM kept through chip erase
    if (!eesave) eeprom_.erase(0, eeprom_.size());
    fuses_.lock = 0xFF;
    save_fuses();
    busy += timing_ ? std::chrono::duration_cast<Clock::duration>(kChipErase) : Clock::duration{};
}

void AvrTarget::write_fuse(uint8_t which, uint8_t value, Clock::duration& busy) {
    busy += timing_ ? std::chrono::duration_cast<Clock::duration>(kFuseWrite) : Clock::duration{};
    if (!may_program()) return;  // lock modes 2 and 3 lock the fuses too
    uint8_t used = 0xFF;
    if (chip_.fuses) {
        targets::FuseByte byte = which == 0xA0 ? targets::FuseByte::Low
                                 : which == 0xA8 ? targets::FuseByte::High
                                                 : targets::FuseByte::Extended;
        used = chip_.fuses->used(byte);
    }
    uint8_t stored = static_cast<uint8_t>(value | ~used);  // bits that do not exist read 1
    if (which == 0xA0) fuses_.low = stored;
    if (which == 0xA8) fuses_.high = static_cast<uint8_t>((stored & ~kSpien) | (fuses_.high & kSpien));
    if (which == 0xA4) fuses_.extended = stored;
    save_fuses();
}

std::array<uint8_t, 4> AvrTarget::instruction(const std::array<uint8_t, 4>& in, Clock::duration& busy) {
    // The chip echoes byte 1 while byte 2 shifts in, and answers in byte 3.
    std::array<uint8_t, 4> out{0x00, in[0], in[1], 0x00};
    if (!programming_) {
        out = {0xFF, 0xFF, 0xFF, 0xFF};  // not listening: MISO floats high
        return out;
    }
    const uint32_t page_words = chip_.page_size / 2;
    switch (in[0]) {
        case 0xAC:
            if (in[1] == 0x53) out[2] = 0x53;
            else if (in[1] == 0x80) chip_erase(busy);
            else if (in[1] == 0xE0) {
                // Lock bits can only be programmed; bits 7-6 do not exist and read 1.
                fuses_.lock = static_cast<uint8_t>(fuses_.lock & (in[3] | 0xC0));
                busy += timing_ ? std::chrono::duration_cast<Clock::duration>(kFuseWrite) : Clock::duration{};
                save_fuses();
            } else if (in[1] == 0xA0 || in[1] == 0xA8 || in[1] == 0xA4) {
                write_fuse(in[1], in[3], busy);
            }
            break;
        case 0xF0: out[3] = 0x00; break;  // RDY/BSY poll: the model is never busy when asked
        case 0x4D: extended_address_ = in[2]; break;
        case 0x40:
        case 0x48: {
            uint32_t word = in[2] % page_words;
            page_buffer_[2 * word + (in[0] == 0x48 ? 1 : 0)] = in[3];
            break;
        }
        case 0x4C: {
            uint32_t page_address = (word_address(in[1], in[2]) * 2) % flash_.size() / chip_.page_size * chip_.page_size;
            if (may_program()) busy += flash_.program(page_address, page_buffer_).busy;
            page_buffer_.assign(chip_.page_size, 0xFF);
            break;
        }
        case 0x20:
        case 0x28: {
            uint32_t address = (word_address(in[1], in[2]) * 2 + (in[0] == 0x28 ? 1 : 0)) % flash_.size();
            out[3] = may_read() ? flash_.at(address) : 0xFF;
            break;
        }
        case 0xC0:
        case 0xC1: {
            uint32_t address = ((uint32_t{in[1]} << 8) | in[2]) % eeprom_.size();
            if (in[0] == 0xC1) {
                eeprom_buffer_.emplace_back(address, in[3]);
                break;
            }
            eeprom_buffer_.clear();
            eeprom_buffer_.emplace_back(address, in[3]);
            [[fallthrough]];
        }
        case 0xC2:
            // EEPROM writes erase the bytes first (atomic byte/page programming).
            if (may_program())
                for (auto [address, value] : eeprom_buffer_) {
                    eeprom_.erase(address, 1);
                    eeprom_.program(address, std::span(&value, 1));
                }
            eeprom_buffer_.clear();
            busy += timing_ ? std::chrono::duration_cast<Clock::duration>(kEepromWrite) : Clock::duration{};
            break;
        case 0xA0:
            out[3] = may_read() ? eeprom_.at(((uint32_t{in[1]} << 8) | in[2]) % eeprom_.size()) : 0xFF;
            break;
        case 0x30: out[3] = in[2] < chip_.signature.size() ? chip_.signature[in[2]] : 0xFF; break;
        case 0x38: out[3] = 0x9A; break;  // an oscillator calibration byte
        case 0x50: out[3] = in[1] == 0x08 ? fuses_.extended : fuses_.low; break;
        case 0x58: out[3] = in[1] == 0x08 ? fuses_.high : static_cast<uint8_t>(fuses_.lock | 0xC0); break;
        default: break;
    }
    return out;
}

}  // namespace mcuflash::sim::stk500v2

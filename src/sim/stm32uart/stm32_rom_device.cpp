#include "sim/stm32uart/stm32_rom_device.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"

namespace mcuflash::sim::stm32uart {

namespace {

using namespace std::chrono_literals;

bool is_f1(const targets::Chip& chip) { return chip.family == "stm32f1"; }

// Datasheet figures. F0/F1: page erase 20 ms, halfword program 50 us. F4: sector erase 16K about
// 300 ms, 64K about 600 ms, 128K about 1 s (200 ms + 6.25 ms per KiB), word program 16 us.
FlashTiming flash_timing(const targets::Chip& chip, bool timing) {
    if (!timing) return {};
    if (chip.sectors.empty()) return FlashTiming{20ms, {}, 50us};
    return FlashTiming{200ms, 6250us, 16us};
}

// Programming option bytes (readout or write protection) erases and rewrites them.
Clock::duration option_bytes_time(bool timing) { return timing ? Clock::duration(40ms) : Clock::duration::zero(); }

FlashLayout layout_of(const targets::Chip& chip, const std::vector<targets::EraseUnitRange>& units,
                      uint32_t write_unit) {
    FlashLayout layout;
    layout.base = chip.flash_base;
    layout.write_unit = write_unit;
    for (const auto& unit : units) {
        if (!layout.regions.empty() && layout.regions.back().unit_size == unit.size) ++layout.regions.back().count;
        else layout.regions.push_back({unit.size, 1});
    }
    return layout;
}

uint8_t xor_of(std::span<const uint8_t> data) {
    uint8_t x = 0;
    for (uint8_t b : data) x ^= b;
    return x;
}

uint32_t address_in(std::span<const uint8_t> frame) {
    return uint32_t(frame[0]) << 24 | uint32_t(frame[1]) << 16 | uint32_t(frame[2]) << 8 | frame[3];
}

bool address_checksum_ok(std::span<const uint8_t> frame) { return xor_of(frame.first(4)) == frame[4]; }

}  // namespace

Stm32RomDevice::Stm32RomDevice(const targets::Chip& chip, const targets::Bootloader& bootloader,
                               const DeviceOptions& options)
    : chip_(chip),
      bootloader_name_(bootloader.name),
      baud_(options.baud ? options.baud : bootloader.baud ? bootloader.baud : 115200),
      units_(targets::erase_layout(chip, chip.flash_size)),
      // F0/F1 program halfwords; F4 (at 3.3 V, x32 parallelism) words.
      write_unit_(is_f1(chip) || chip.family == "stm32f0" ? 2 : 4),
      flash_(layout_of(chip, units_, write_unit_), flash_timing(chip, options.timing)),
      sram_(kSramSize, 0),
      // The F1 ROMs (v2.2) have the one-byte Erase; later ones (F0, F2/F4: v3.1) Extended Erase.
      version_(is_f1(chip) ? 0x22 : 0x31),
      extended_erase_(!is_f1(chip)),
      timing_(options.timing) {
    if (!chip.product_id || chip.flash_base == 0 || units_.empty())
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("{} lacks an STM32 product ID or flash layout in data/chips.toml", chip.name));
    commands_ = {bytes::kGet,
                 bytes::kGetVersion,
                 bytes::kGetId,
                 bytes::kReadMemory,
                 bytes::kGo,
                 bytes::kWriteMemory,
                 extended_erase_ ? bytes::kExtendedErase : bytes::kErase,
                 bytes::kWriteProtect,
                 bytes::kWriteUnprotect,
                 bytes::kReadoutProtect,
                 bytes::kReadoutUnprotect};
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string Stm32RomDevice::describe() const {
    return fmt::format("STM32 ROM bootloader {}.{} on {}", version_ >> 4, version_ & 0x0F, chip_.name);
}

// ---- time and resets ----

void Stm32RomDevice::reset(ResetCause cause, Clock::time_point now) {
    (void)now;
    discard_output();
    busy_until_.reset();
    answer_after_busy_.clear();
    then_ = Then::Nothing;
    usart_.clear();
    frame_.clear();
    stage_ = Stage::Command;
    // BOOT0 is held high: whatever the reset, the ROM runs and waits for 0x7F.
    mode_ = Mode::AwaitingSync;
    trace(fmt::format("{}: {} reset: waiting for 0x7F", bootloader_name_, reset_cause_name(cause)));
}

void Stm32RomDevice::self_reset(Clock::time_point now, const std::string& why) {
    (void)now;
    ++stats_.self_resets;
    busy_until_.reset();
    usart_.clear();
    frame_.clear();
    stage_ = Stage::Command;
    mode_ = Mode::AwaitingSync;
    trace(fmt::format("{}: {}: system reset, waiting for 0x7F", bootloader_name_, why));
}

void Stm32RomDevice::tick(Clock::time_point now) {
    while (busy_until_ && *busy_until_ <= now) finish_busy(*busy_until_);
}

void Stm32RomDevice::answer_after(Clock::duration busy, std::vector<uint8_t> answer, Clock::time_point now, Then then) {
    if (busy <= Clock::duration::zero()) {
        send(answer, now);
        if (then == Then::SelfReset) self_reset(now, "option bytes changed");
        return;
    }
    busy_until_ = now + busy;
    answer_after_busy_ = std::move(answer);
    then_ = then;
}

void Stm32RomDevice::finish_busy(Clock::time_point now) {
    busy_until_.reset();
    send(std::exchange(answer_after_busy_, {}), now);
    if (std::exchange(then_, Then::Nothing) == Then::SelfReset) {
        self_reset(now, "option bytes changed");
        return;
    }
    // The ROM reads what the USART kept meanwhile.
    while (!busy_until_ && mode_ != Mode::Application && !usart_.empty()) {
        uint8_t byte = usart_.front();
        usart_.pop_front();
        consume(byte, now);
    }
}

void Stm32RomDevice::receive(uint8_t byte, Clock::time_point now) {
    tick(now);
    if (mode_ == Mode::Application) return;  // the application does not speak AN3155
    if (busy_until_) {
        // The USART keeps one byte in its data register and one in the shift register; more overrun.
        if (usart_.size() < 2) {
            usart_.push_back(byte);
        } else {
            ++stats_.overruns;
            trace(fmt::format("{}: USART overrun: 0x{:02X} lost while busy", bootloader_name_, byte));
        }
        return;
    }
    consume(byte, now);
}

// ---- framing ----

void Stm32RomDevice::nack(Clock::time_point now, const std::string& why) {
    ++stats_.nacks;
    send(bytes::kNack, now);
    trace(fmt::format("{}: NACK: {}", bootloader_name_, why));
    await_command();
}

void Stm32RomDevice::await_command() {
    stage_ = Stage::Command;
    frame_.clear();
}

size_t Stm32RomDevice::bytes_needed() const {
    const size_t have = frame_.size();
    switch (stage_) {
        case Stage::Command: return 2;
        case Stage::ReadAddress:
        case Stage::GoAddress:
        case Stage::WriteAddress: return 5;
        case Stage::ReadCount: return 2;
        case Stage::WriteData:
        case Stage::WriteProtectUnits:
            // N-1, N bytes, checksum
            return have < 1 ? 1 : size_t(frame_[0]) + 3;
        case Stage::ErasePages:
            if (have < 1) return 1;
            return frame_[0] == bytes::kGlobalErase ? 2 : size_t(frame_[0]) + 3;
        case Stage::ExtendedErasePages: {
            if (have < 2) return 2;
            uint16_t n = uint16_t(frame_[0] << 8 | frame_[1]);
            return n >= bytes::kExtendedSpecialFirst ? 3 : 2 + 2 * (size_t(n) + 1) + 1;
        }
    }
    return 1;
}

void Stm32RomDevice::consume(uint8_t byte, Clock::time_point now) {
    if (mode_ == Mode::AwaitingSync) {
        // Anything but 0x7F is noise to the baud-rate measurement.
        if (byte != bytes::kSync) return;
        mode_ = Mode::Commands;
        await_command();
        ack(now);
        trace(fmt::format("{}: 0x7F: baud rate measured, ACK", bootloader_name_));
        return;
    }
    if (stage_ == Stage::Command && frame_.empty() && byte == bytes::kSync) {
        // A second 0x7F: the rate was measured already; the host learns so from the NACK.
        nack(now, "0x7F after synchronisation");
        return;
    }
    frame_.push_back(byte);
    if (frame_.size() < bytes_needed()) return;
    std::vector<uint8_t> frame = std::exchange(frame_, {});
    handle_frame(frame, now);
}

void Stm32RomDevice::handle_frame(std::span<const uint8_t> frame, Clock::time_point now) {
    switch (stage_) {
        case Stage::Command:
            if (uint8_t(frame[0] ^ frame[1]) != 0xFF)
                return nack(now, fmt::format("command 0x{:02X} with a bad complement 0x{:02X}", frame[0], frame[1]));
            ++stats_.commands;
            return handle_command(frame[0], now);
        case Stage::ReadAddress:
        case Stage::WriteAddress: {
            if (!address_checksum_ok(frame)) return nack(now, "address checksum");
            uint32_t address = address_in(frame);
            bool reading = stage_ == Stage::ReadAddress;
            if (reading ? !readable(address, 1) : !writable(address, 1) || address % 4 != 0)
                return nack(now, fmt::format("{} address 0x{:08X}", reading ? "read" : "write", address));
            address_ = address;
            stage_ = reading ? Stage::ReadCount : Stage::WriteData;
            return ack(now);
        }
        case Stage::ReadCount:
            if (uint8_t(frame[0] ^ frame[1]) != 0xFF) return nack(now, "read count complement");
            return handle_read(frame[0], now);
        case Stage::GoAddress:
            if (!address_checksum_ok(frame)) return nack(now, "Go address checksum");
            return handle_go(address_in(frame), now);
        case Stage::WriteData: return handle_write(frame, now);
        case Stage::ErasePages: return handle_erase(frame, now);
        case Stage::ExtendedErasePages: return handle_extended_erase(frame, now);
        case Stage::WriteProtectUnits: return handle_write_protect(frame, now);
    }
}

// ---- commands ----

void Stm32RomDevice::handle_command(uint8_t code, Clock::time_point now) {
    if (std::find(commands_.begin(), commands_.end(), code) == commands_.end())
        return nack(now, fmt::format("command 0x{:02X} is not supported by this ROM", code));
    // Readout protection leaves only identification and the protection commands themselves.
    const bool refused_when_protected = code == bytes::kReadMemory || code == bytes::kGo ||
                                        code == bytes::kWriteMemory || code == bytes::kErase ||
                                        code == bytes::kExtendedErase || code == bytes::kWriteProtect ||
                                        code == bytes::kWriteUnprotect;
    if (readout_protected_ && refused_when_protected)
        return nack(now, fmt::format("command 0x{:02X} refused: readout protection is active", code));

    switch (code) {
        case bytes::kGet: {
            std::vector<uint8_t> answer{bytes::kAck, uint8_t(commands_.size()), version_};
            answer.insert(answer.end(), commands_.begin(), commands_.end());
            answer.push_back(bytes::kAck);
            return send(answer, now);
        }
        case bytes::kGetVersion:
            // The two option bytes are 0x00 for compatibility with the generic protocol.
            return send(std::vector<uint8_t>{bytes::kAck, version_, 0x00, 0x00, bytes::kAck}, now);
        case bytes::kGetId: {
            uint16_t pid = *chip_.product_id;
            return send(std::vector<uint8_t>{bytes::kAck, 0x01, uint8_t(pid >> 8), uint8_t(pid), bytes::kAck}, now);
        }
        case bytes::kReadMemory: stage_ = Stage::ReadAddress; return ack(now);
        case bytes::kGo: stage_ = Stage::GoAddress; return ack(now);
        case bytes::kWriteMemory: stage_ = Stage::WriteAddress; return ack(now);
        case bytes::kErase: stage_ = Stage::ErasePages; return ack(now);
        case bytes::kExtendedErase: stage_ = Stage::ExtendedErasePages; return ack(now);
        case bytes::kWriteProtect: stage_ = Stage::WriteProtectUnits; return ack(now);
        case bytes::kWriteUnprotect:
            ack(now);
            write_protected_.clear();
            trace(fmt::format("{}: Write Unprotect", bootloader_name_));
            return answer_after(option_bytes_time(timing_), {bytes::kAck}, now, Then::SelfReset);
        case bytes::kReadoutProtect:
            ack(now);
            readout_protected_ = true;
            trace(fmt::format("{}: Readout Protect", bootloader_name_));
            return answer_after(option_bytes_time(timing_), {bytes::kAck}, now, Then::SelfReset);
        case bytes::kReadoutUnprotect: {
            ack(now);
            // Lifting readout protection erases the whole flash (and the option bytes with it).
            FlashOutcome erased = flash_.erase(flash_.base(), flash_.size());
            readout_protected_ = false;
            write_protected_.clear();
            trace(fmt::format("{}: Readout Unprotect: flash mass-erased", bootloader_name_));
            return answer_after(erased.busy + option_bytes_time(timing_), {bytes::kAck}, now, Then::SelfReset);
        }
        default: return nack(now, fmt::format("command 0x{:02X}", code));
    }
}

void Stm32RomDevice::handle_read(uint8_t count_minus_one, Clock::time_point now) {
    const uint32_t count = uint32_t(count_minus_one) + 1;
    if (!readable(address_, count)) return nack(now, fmt::format("read of {} bytes at 0x{:08X}", count, address_));
    std::vector<uint8_t> answer{bytes::kAck};
    for (uint32_t i = 0; i < count; ++i) answer.push_back(byte_at(address_ + i));
    send(answer, now);
    await_command();
}

void Stm32RomDevice::handle_go(uint32_t address, Clock::time_point now) {
    if (!in_flash(address, 1) && !in_sram(address, 1)) return nack(now, fmt::format("Go to 0x{:08X}", address));
    ack(now);
    mode_ = Mode::Application;
    await_command();
    jumped_to_ = address;
    trace(fmt::format("{}: Go 0x{:08X}: the application runs (silent until the next reset)", bootloader_name_, address));
}

void Stm32RomDevice::handle_write(std::span<const uint8_t> frame, Clock::time_point now) {
    const size_t count = size_t(frame[0]) + 1;
    std::span<const uint8_t> data = frame.subspan(1, count);
    if (xor_of(frame.first(count + 1)) != frame[count + 1]) return nack(now, "write data checksum");
    if (!writable(address_, static_cast<uint32_t>(count)))
        return nack(now, fmt::format("write of {} bytes at 0x{:08X}", count, address_));
    if (in_sram(address_, static_cast<uint32_t>(count))) {
        std::copy(data.begin(), data.end(), sram_.begin() + (address_ - kSramBase));
        send(bytes::kAck, now);
        return await_command();
    }
    for (uint32_t at = address_; at < address_ + count; ++at)
        if (write_protected_.count(*unit_index_at(at)))
            return nack(now, fmt::format("write at 0x{:08X}: write-protected", at));
    // The ROM programs whole halfwords (words on the F4); a ragged end is padded with erased bits.
    std::vector<uint8_t> padded(data.begin(), data.end());
    padded.resize((padded.size() + write_unit_ - 1) / write_unit_ * write_unit_, FlashMemory::kErased);
    FlashOutcome programmed = flash_.program(address_, padded);
    if (!programmed.ok())
        return nack(now, fmt::format("program at 0x{:08X}: {}", address_, flash_status_name(programmed.status)));
    await_command();
    answer_after(programmed.busy, {bytes::kAck}, now);
}

void Stm32RomDevice::handle_erase(std::span<const uint8_t> frame, Clock::time_point now) {
    if (frame[0] == bytes::kGlobalErase) {
        if (frame[1] != 0x00) return nack(now, "global erase checksum");
        return mass_erase(now);
    }
    const size_t count = size_t(frame[0]) + 1;
    if (xor_of(frame.first(count + 1)) != frame[count + 1]) return nack(now, "erase checksum");
    std::vector<size_t> units(frame.begin() + 1, frame.begin() + 1 + static_cast<std::ptrdiff_t>(count));
    erase_units(units, now);
}

void Stm32RomDevice::handle_extended_erase(std::span<const uint8_t> frame, Clock::time_point now) {
    const uint16_t n = uint16_t(frame[0] << 8 | frame[1]);
    if (n >= bytes::kExtendedSpecialFirst) {
        if (frame[2] != uint8_t(frame[0] ^ frame[1])) return nack(now, "special erase checksum");
        // Bank erases (FFFE, FFFD) exist only on dual-bank parts; this model has one bank.
        if (n != bytes::kExtendedMassErase) return nack(now, fmt::format("special erase code 0x{:04X}", n));
        return mass_erase(now);
    }
    const size_t count = size_t(n) + 1;
    const size_t length = 2 + 2 * count;
    if (xor_of(frame.first(length)) != frame[length]) return nack(now, "extended erase checksum");
    std::vector<size_t> units;
    for (size_t i = 0; i < count; ++i) units.push_back(size_t(frame[2 + 2 * i]) << 8 | frame[3 + 2 * i]);
    erase_units(units, now);
}

void Stm32RomDevice::handle_write_protect(std::span<const uint8_t> frame, Clock::time_point now) {
    const size_t count = size_t(frame[0]) + 1;
    if (xor_of(frame.first(count + 1)) != frame[count + 1]) return nack(now, "write protect checksum");
    std::vector<size_t> units(frame.begin() + 1, frame.begin() + 1 + static_cast<std::ptrdiff_t>(count));
    for (size_t unit : units)
        if (unit >= units_.size()) return nack(now, fmt::format("write protect of unit {}", unit));
    write_protected_.insert(units.begin(), units.end());
    trace(fmt::format("{}: Write Protect of {} unit(s)", bootloader_name_, units.size()));
    answer_after(option_bytes_time(timing_), {bytes::kAck}, now, Then::SelfReset);
}

void Stm32RomDevice::erase_units(const std::vector<size_t>& units, Clock::time_point now) {
    for (size_t unit : units) {
        if (unit >= units_.size()) return nack(now, fmt::format("erase of unit {} (the chip has {})", unit, units_.size()));
        if (write_protected_.count(unit)) return nack(now, fmt::format("erase of unit {}: write-protected", unit));
    }
    Clock::duration busy{};
    for (size_t unit : units) busy += flash_.erase(units_[unit].address, units_[unit].size).busy;
    trace(fmt::format("{}: erased {} unit(s)", bootloader_name_, units.size()));
    await_command();
    answer_after(busy, {bytes::kAck}, now);
}

void Stm32RomDevice::mass_erase(Clock::time_point now) {
    if (!write_protected_.empty()) return nack(now, "mass erase with write-protected units");
    FlashOutcome erased = flash_.erase(flash_.base(), flash_.size());
    trace(fmt::format("{}: mass erase", bootloader_name_));
    await_command();
    answer_after(erased.busy, {bytes::kAck}, now);
}

// ---- the memory map ----

bool Stm32RomDevice::in_flash(uint32_t address, uint32_t length) const { return flash_.contains(address, length); }

bool Stm32RomDevice::in_sram(uint32_t address, uint32_t length) const {
    return address >= kSramBase && uint64_t(address) + length <= uint64_t(kSramBase) + kSramSize;
}

bool Stm32RomDevice::in_flash_size_register(uint32_t address, uint32_t length) const {
    if (!chip_.flash_size_register) return false;
    return address >= *chip_.flash_size_register && uint64_t(address) + length <= uint64_t(*chip_.flash_size_register) + 2;
}

bool Stm32RomDevice::readable(uint32_t address, uint32_t length) const {
    return in_flash(address, length) || in_sram(address, length) || in_flash_size_register(address, length);
}

bool Stm32RomDevice::writable(uint32_t address, uint32_t length) const {
    return in_flash(address, length) || in_sram(address, length);
}

uint8_t Stm32RomDevice::byte_at(uint32_t address) const {
    if (in_flash(address, 1)) return flash_.at(address);
    if (in_sram(address, 1)) return sram_[address - kSramBase];
    // The flash size register: KiB, little-endian.
    const uint32_t kib = chip_.flash_size / 1024;
    return address == *chip_.flash_size_register ? uint8_t(kib) : uint8_t(kib >> 8);
}

std::optional<size_t> Stm32RomDevice::unit_index_at(uint32_t address) const {
    for (size_t i = 0; i < units_.size(); ++i)
        if (address >= units_[i].address && address - units_[i].address < units_[i].size) return i;
    return std::nullopt;
}

}  // namespace mcuflash::sim::stm32uart

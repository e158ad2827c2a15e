#include "sim/katapult/katapult_device.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/crc.hpp"
#include "core/error.hpp"

namespace mcuflash::sim::katapult {

namespace {

using namespace std::chrono_literals;

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

uint32_t le32_at(const uint8_t* p) {
    return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void put_le32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Programming granularity of each family (RM0008, RM0444, RM0090, RM0433; RP2040 and LPC176x: the
// 256-byte page their flash is programmed in).
uint32_t write_unit_of(const targets::Chip& chip, bool buffered) {
    if (buffered) return 256;
    if (chip.family == "stm32g0" || chip.family == "stm32g4") return 8;
    if (chip.family == "stm32h7") return 32;
    if (chip.family == "stm32f1" || chip.family == "stm32f0") return 2;
    return 4;
}

// Datasheet figures: F0/F1 page erase 20 ms and 50 us a halfword; G0 page erase 22 ms and 85 us a
// double word; F4/F7/H7 sectors 200 ms + 6.25 ms a KiB, 16 us a word; RP2040 (W25Q) 45 ms a 4 KiB
// sector and 0.8 ms a 256-byte page; LPC176x 100 ms a sector and 1 ms a 256-byte write.
FlashTiming timing_of(const targets::Chip& chip, bool buffered, bool timing) {
    if (!timing) return {};
    if (chip.family == "rp2040") return FlashTiming{45ms, {}, 800us};
    if (buffered) return FlashTiming{100ms, {}, 1ms};
    if (chip.family == "stm32g0" || chip.family == "stm32g4") return FlashTiming{22ms, {}, 85us};
    if (!chip.sectors.empty()) return FlashTiming{200ms, 6250us, 16us};
    return FlashTiming{20ms, {}, 50us};
}

}  // namespace

std::string katapult_mcu_name(const targets::Chip& chip) {
    const std::string& n = chip.name;
    if (!starts_with(n, "stm32") || n.size() < 9) return n;
    const std::string part = n.substr(0, 9);  // "stm32f103"
    // src/stm32/Kconfig `config MCU`: most parts are "...xx"; these name one size.
    if (part == "stm32f103") return "stm32f103xe";
    if (part == "stm32f401") return "stm32f401xc";
    if (part == "stm32f031" || part == "stm32f042") return part + "x6";
    if (part == "stm32f070" || part == "stm32f072") return part + "xb";
    return part + "xx";
}

KatapultDevice::KatapultDevice(const targets::Chip& chip, const targets::Bootloader& bootloader,
                               const DeviceOptions& options, KatapultConfig config)
    : chip_(chip),
      bootloader_name_(bootloader.name),
      config_(std::move(config)),
      mcu_(config_.mcu.empty() ? katapult_mcu_name(chip) : config_.mcu),
      baud_(options.baud ? options.baud : bootloader.baud ? bootloader.baud : 250000),
      app_start_(chip.flash_base + bootloader.size_on(chip.name).value_or(0)),
      model_(chip.family == "rp2040" || chip.family == "lpc176x" ? Model::PageBuffer : Model::Pages),
      flash_(FlashLayout::of_chip(chip, write_unit_of(chip, model_ == Model::PageBuffer)),
             timing_of(chip, model_ == Model::PageBuffer, options.timing)) {
    if (!bootloader.size_on(chip.name) || app_start_ == chip.flash_base)
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("data/bootloaders.toml gives Katapult no size on the {}", chip.name));
    const uint32_t b = config_.block_size;
    if (b < 64 || b > 512 || (b & (b - 1)) != 0)
        throw core::Error(core::ErrorKind::Usage, fmt::format("Katapult block size {}: 64, 128, 256 or 512", b));
    flash_.protect({chip.flash_base, app_start_ - chip.flash_base, "katapult"});
    flash_.fill_protected_with_placeholder();
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string KatapultDevice::describe() const {
    return fmt::format("Katapult {} on {} (MCU '{}', application at 0x{:08X}, {}-byte blocks)", config_.version,
                       chip_.name, mcu_, app_start_, config_.block_size);
}

// ---- time and resets ----

std::optional<Clock::time_point> KatapultDevice::next_deadline() const {
    if (busy_until_ && jump_at_) return std::min(*busy_until_, *jump_at_);
    return busy_until_ ? busy_until_ : jump_at_;
}

bool KatapultDevice::application_valid() const {
    // What the chips' application_check_valid() look at: the application's first word (its initial
    // stack pointer) is programmed.
    uint32_t word = 0;
    for (int i = 0; i < 4; ++i) word |= uint32_t{flash_.at(app_start_ + i)} << (8 * i);
    return word != 0xFFFFFFFF && word != 0;
}

void KatapultDevice::reset(ResetCause cause, Clock::time_point now) {
    (void)now;
    discard_output();
    rx_.clear();
    need_sync_ = need_valid_ = false;
    stats_.wedged = false;
    busy_until_.reset();
    pending_answer_.clear();
    jump_at_.reset();
    buffer_full_ = false;  // what the page buffer held is lost
    page_write_count_ = 0;
    if (cause == ResetCause::PowerOn && application_valid()) {
        mode_ = Mode::Application;
        trace(fmt::format("{}: {} reset: the application is valid, it runs", bootloader_name_, reset_cause_name(cause)));
    } else {
        mode_ = Mode::Bootloader;
        trace(fmt::format("{}: {} reset: Katapult runs", bootloader_name_, reset_cause_name(cause)));
    }
}

void KatapultDevice::tick(Clock::time_point now) {
    for (;;) {
        auto next = next_deadline();
        if (!next || *next > now) return;
        const Clock::time_point at = *next;
        if (busy_until_ && *busy_until_ == at) {
            busy_until_.reset();
            send(std::exchange(pending_answer_, {}), at);
            process(at);
        } else {
            jump_at_.reset();
            mode_ = Mode::Application;
            rx_.clear();
            trace(fmt::format("{}: COMPLETE: the application starts", bootloader_name_));
        }
    }
}

// ---- frames ----

void KatapultDevice::receive(uint8_t byte, Clock::time_point now) {
    if (mode_ != Mode::Bootloader) return;  // the application does not speak Katapult
    // The receive buffer (USB: 128 bytes plus a packet); bytes that do not fit are lost.
    const size_t capacity = std::max<size_t>(bytes::kMessageMax, config_.block_size + 16) * 2;
    if (rx_.size() >= capacity) return;
    rx_.push_back(byte);
    if (!busy_until_) process(now);
}

void KatapultDevice::process(Clock::time_point now) {
    const size_t max_message = std::max<size_t>(bytes::kMessageMax, config_.block_size + 16);
    while (!busy_until_ && mode_ == Mode::Bootloader && !rx_.empty()) {
        bool from_error = false;
        if (!need_sync_) {
            if (rx_.size() < bytes::kMessageMin) return;
            size_t msglen = 0;
            bool bad = rx_[0] != bytes::kStx1 || rx_[1] != bytes::kStx2;
            if (!bad) {
                msglen = size_t(rx_[3]) * 4 + 8;
                bad = msglen > max_message;
            }
            if (!bad) {
                if (rx_.size() < msglen) return;  // need more data
                const uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(rx_).subspan(2, msglen - 6));
                bad = rx_[msglen - 2] != bytes::kSync2 || rx_[msglen - 1] != bytes::kSync ||
                      rx_[msglen - 4] != static_cast<uint8_t>(crc) || rx_[msglen - 3] != static_cast<uint8_t>(crc >> 8);
            }
            if (!bad) {
                need_valid_ = false;
                std::vector<uint8_t> frame(rx_.begin(), rx_.begin() + static_cast<long>(msglen));
                rx_.erase(rx_.begin(), rx_.begin() + static_cast<long>(msglen));
                ++stats_.frames;
                dispatch(frame[2], frame, now);
                continue;
            }
            need_sync_ = true;
            from_error = true;
        }
        // Discard bytes until the next 0x01. Katapult searches from the start of its buffer.
        const size_t from = from_error && config_.skip_damaged_frames ? 1 : 0;
        auto it = std::find(rx_.begin() + static_cast<long>(std::min(from, rx_.size())), rx_.end(), bytes::kStx1);
        size_t pop = rx_.size();
        if (it != rx_.end()) {
            need_sync_ = false;
            pop = static_cast<size_t>(it - rx_.begin());
        }
        if (!need_valid_) {
            need_valid_ = true;
            ++stats_.nacks;
            respond(bytes::kNack, {}, now);
        }
        if (pop == 0) {
            if (!stats_.wedged) trace(fmt::format("{}: a damaged frame heads the receive buffer: stuck until reset",
                                                  bootloader_name_));
            stats_.wedged = true;
            return;
        }
        rx_.erase(rx_.begin(), rx_.begin() + static_cast<long>(pop));
    }
}

void KatapultDevice::respond(uint8_t type, const std::vector<uint8_t>& payload, Clock::time_point now) {
    std::vector<uint8_t> out{bytes::kStx1, bytes::kStx2, type, static_cast<uint8_t>(payload.size() / 4)};
    out.insert(out.end(), payload.begin(), payload.end());
    const uint16_t crc = core::crc16_mcrf4xx(std::span<const uint8_t>(out).subspan(2));
    out.push_back(static_cast<uint8_t>(crc));
    out.push_back(static_cast<uint8_t>(crc >> 8));
    out.push_back(bytes::kSync2);
    out.push_back(bytes::kSync);
    if (busy_until_) pending_answer_.insert(pending_answer_.end(), out.begin(), out.end());
    else send(out, now);
}

void KatapultDevice::ack(uint8_t command, const std::vector<uint8_t>& rest, Clock::time_point now) {
    std::vector<uint8_t> payload;
    put_le32(payload, command);
    payload.insert(payload.end(), rest.begin(), rest.end());
    respond(bytes::kAck, payload, now);
}

void KatapultDevice::dispatch(uint8_t command, const std::vector<uint8_t>& frame, Clock::time_point now) {
    const size_t words = frame[3];
    const uint8_t* args = frame.data() + 4;  // payload words
    ++commands_seen_;
    if (config_.busy_every && commands_seen_ % config_.busy_every == 0) {
        ++stats_.busy;
        respond(bytes::kBusy, {}, now);
        return;
    }
    const uint32_t block = config_.block_size;
    switch (command) {
        case bytes::kConnect: {
            std::vector<uint8_t> rest;
            put_le32(rest, bytes::kProtoVersion);
            put_le32(rest, app_start_);
            put_le32(rest, block);
            auto padded = [&](const std::string& text) {
                rest.insert(rest.end(), text.begin(), text.end());
                rest.resize((rest.size() + 3) / 4 * 4, 0);
            };
            padded(mcu_);
            rest.insert(rest.end(), 4, 0);
            padded(config_.version);
            ack(command, rest, now);
            return;
        }
        case bytes::kRxBlock: {
            if (words != block / 4 + 1) return command_error(now);
            const uint32_t address = le32_at(args);
            if (address < app_start_) {
                trace(fmt::format("{}: SEND_BLOCK at 0x{:08X} below the application: refused", bootloader_name_, address));
                return command_error(now);
            }
            Clock::duration busy{};
            const int ret = write_block(address, args + 4, busy);
            if (busy > Clock::duration::zero()) busy_until_ = now + busy;
            if (ret < 0) {
                trace(fmt::format("{}: SEND_BLOCK at 0x{:08X} failed ({})", bootloader_name_, address, ret));
                return command_error(now);
            }
            std::vector<uint8_t> rest;
            put_le32(rest, address);
            ack(command, rest, now);
            return;
        }
        case bytes::kRxEof: {
            Clock::duration busy{};
            int ret = model_ == Model::PageBuffer ? flush_buffer(busy) : 0;
            if (busy > Clock::duration::zero()) busy_until_ = now + busy;
            if (ret < 0) return command_error(now);
            std::vector<uint8_t> rest;
            put_le32(rest, page_write_count_);
            ack(command, rest, now);
            return;
        }
        case bytes::kReqBlock: {
            if (words < 1) return command_error(now);
            const uint32_t address = le32_at(args);
            // The firmware copies whatever memory is there (a memcpy from the address). The simulator
            // has the flash and, on an STM32, the flash size register in system memory (KiB, 16
            // bits; the rest of its block reads as erased); elsewhere it refuses.
            const uint32_t size_register = chip_.flash_size_register.value_or(0);
            const bool holds_size_register =
                chip_.flash_size_register && size_register >= address && size_register + 2 <= uint64_t(address) + block;
            if (!flash_.contains(address, block) && !holds_size_register) return command_error(now);
            std::vector<uint8_t> rest;
            put_le32(rest, address);
            const size_t at = rest.size();
            rest.resize(at + block, 0xFF);
            if (holds_size_register) {
                const uint32_t kib = chip_.flash_size / 1024;
                rest[at + size_register - address] = static_cast<uint8_t>(kib);
                rest[at + size_register - address + 1] = static_cast<uint8_t>(kib >> 8);
            } else {
                flash_.read(address, std::span<uint8_t>(rest).subspan(at));
            }
            ack(command, rest, now);
            return;
        }
        case bytes::kComplete:
            ack(command, {}, now);
            jump_at_ = now + 100ms;
            return;
        case bytes::kGetCanbusId:
            if (config_.canbus_uuid) {
                std::vector<uint8_t> rest;
                for (int i = 5; i >= 0; --i) rest.push_back(static_cast<uint8_t>(*config_.canbus_uuid >> (8 * i)));
                rest.push_back(0);
                rest.push_back(0);
                ack(command, rest, now);
                return;
            }
            [[fallthrough]];
        default:
            return command_error(now);
    }
}

// ---- flash ----

bool KatapultDevice::erased(uint32_t address, uint32_t length) const {
    for (uint32_t i = 0; i < length; ++i)
        if (flash_.at(address + i) != FlashMemory::kErased) return false;
    return true;
}

int KatapultDevice::write_block(uint32_t address, const uint8_t* data, Clock::duration& busy) {
    return model_ == Model::PageBuffer ? write_block_buffered(address, data, busy)
                                       : write_block_pages(address, data, busy);
}

int KatapultDevice::write_block_pages(uint32_t address, const uint8_t* data, Clock::duration& busy) {
    const uint32_t block = config_.block_size;
    if (address % block) return -1;  // not a block aligned address
    if (!flash_.contains(address, block)) return -4;
    const auto unit = flash_.erase_unit_at(address);
    auto same = [&] {
        std::vector<uint8_t> now(block);
        flash_.read(address, now);
        return std::memcmp(now.data(), data, block) == 0;
    };
    bool need_erase = false;
    if (unit->address == address) {
        if (erased(address, unit->size)) {
            // page already erased
        } else if (same() && erased(address + block, unit->size - block)) {
            ++stats_.retransmissions;  // retransmitted request: ignored
            return 0;
        } else {
            need_erase = true;
        }
        ++page_write_count_;
    } else if (!erased(address, block)) {
        if (same()) {
            ++stats_.retransmissions;
            return 0;
        }
        return -2;  // block not erased: out of order request?
    }
    if (need_erase) {
        auto outcome = flash_.erase(unit->address, unit->size);
        if (!outcome.ok()) return -5;
        busy += outcome.busy;
    }
    auto outcome = flash_.program(address, std::span<const uint8_t>(data, block));
    if (!outcome.ok()) return -5;
    busy += outcome.busy;
    ++stats_.blocks_written;
    return same() ? 0 : -3;
}

int KatapultDevice::write_block_buffered(uint32_t address, const uint8_t* data, Clock::duration& busy) {
    const uint32_t block = config_.block_size;
    const uint32_t page = std::max<uint32_t>(block, 256);
    if (address % block) return -1;
    if (address < flash_.base()) return -2;
    if (uint64_t(address) + block > flash_.end()) return -3;
    if (buffer_full_ && !(address >= buffer_address_ && address + block <= buffer_address_ + page)) {
        int ret = flush_buffer(busy);
        if (ret < 0) return ret;
    }
    if (!buffer_full_) {
        buffer_full_ = true;
        buffer_address_ = address / page * page;
        buffer_.assign(page, 0xFF);
    }
    std::memcpy(buffer_.data() + (address - buffer_address_), data, block);
    ++stats_.blocks_written;
    return 0;
}

int KatapultDevice::flush_buffer(Clock::duration& busy) {
    if (!buffer_full_) return 0;
    buffer_full_ = false;
    const auto unit = flash_.erase_unit_at(buffer_address_);
    if (!unit) return -3;
    if (unit->address == buffer_address_) {
        auto outcome = flash_.erase(unit->address, unit->size);
        if (!outcome.ok()) return -5;
        busy += outcome.busy;
    }
    auto outcome = flash_.program(buffer_address_, buffer_);
    if (!outcome.ok()) return -5;
    busy += outcome.busy;
    ++page_write_count_;
    return 0;
}

}  // namespace mcuflash::sim::katapult

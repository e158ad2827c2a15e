#include "sim/samba/samba_monitor_device.hpp"

#include <fmt/format.h>

#include "core/crc.hpp"
#include "core/error.hpp"

namespace mcuflash::sim::samba {

namespace {

// XMODEM bytes, from the XMODEM-CRC description.
constexpr uint8_t kSoh = 0x01, kEot = 0x04, kAck = 0x06, kNak = 0x15, kCan = 0x18, kCrcRequest = 'C';
constexpr size_t kBlockData = 128, kBlockSize = 3 + kBlockData + 2;

constexpr uint32_t kRomUartBaud = 115200;

bool is_rom_monitor(const targets::Bootloader& bootloader, const targets::Chip& chip) {
    return bootloader.size_on(chip.name).value_or(0) == 0;
}

// What V# answers: the monitors' version, the extensions the Arduino/Adafruit ones announce, and the
// build date (as the real ones print __DATE__ __TIME__).
std::string version_of(const targets::Bootloader& bootloader, const targets::Chip& chip) {
    if (bootloader.name == "arduino_zero") return "v2.0 [Arduino:XYZ] Nov  7 2016 11:13:48";
    if (bootloader.name == "adafruit_samd51") return "v1.1 [Arduino:XYZ] Jun  5 2019 14:16:44";
    if (chip.family == "sam3x") return "v1.1 Dec 15 2010 19:25:04";
    return "v2.1 Jan 28 2013 14:29:35";
}

}  // namespace

SambaMonitorDevice::SambaMonitorDevice(const targets::Chip& chip, const targets::Bootloader& bootloader,
                                       const DeviceOptions& options, Transport transport)
    : chip_(chip, bootloader.size_on(chip.name).value_or(0), bootloader.name, options.timing),
      bootloader_name_(bootloader.name),
      transport_(transport),
      // A USB CDC port ignores the baud rate; the simulated line still has one (bossac opens at 921600).
      baud_(options.baud ? options.baud : transport == Transport::Usb ? bootloader.baud : kRomUartBaud),
      version_(version_of(bootloader, chip)),
      extensions_(!is_rom_monitor(bootloader, chip)) {
    if (options.flash_file) chip_.flash().attach_file(*options.flash_file);
}

std::string SambaMonitorDevice::describe() const {
    return fmt::format("{} SAM-BA monitor \"{}\" on {} ({})", bootloader_name_, version_, chip_.chip().name,
                       transport_ == Transport::Usb ? "USB" : "UART");
}

// ---- resets and time ----

void SambaMonitorDevice::start_monitor() {
    discard_output();
    pending_input_.clear();
    busy_until_.reset();
    after_busy_.clear();
    xmodem_deadline_.reset();
    block_.clear();
    command_ = 0;
    first_ = number_ = 0;
    // On a UART the monitor measures the baud rate first; on USB it reads commands at once.
    state_ = transport_ == Transport::Uart ? State::Autobaud : State::Command;
    terminal_mode_ = transport_ == Transport::Uart;
}

void SambaMonitorDevice::reset(ResetCause cause, Clock::time_point now) {
    (void)now;
    // RESET here is what the 1200-baud touch or a double tap does: the board comes up in its monitor
    // (on SAM3/SAM4 the application's touch handler clears GPNVM bit 1 before it resets the chip).
    chip_.boot_from_rom();
    chip_.reset();
    start_monitor();
    trace(fmt::format("samba: {} reset: monitor runs ({})", reset_cause_name(cause),
                      transport_ == Transport::Usb ? "USB" : "UART, waiting for autobaud"));
}

void SambaMonitorDevice::software_reset(Clock::time_point now) {
    (void)now;
    ++stats_.software_resets;
    chip_.reset();
    if (chip_.starts_application()) {
        start_monitor();
        state_ = State::Application;
        trace("samba: software reset: the application runs (silent until the next reset)");
    } else {
        start_monitor();
        trace("samba: software reset: no application to start, the monitor runs again");
    }
}

void SambaMonitorDevice::bus_fault(const BusFault& fault) {
    ++stats_.bus_faults;
    state_ = State::Hung;
    trace(fmt::format("samba: HardFault: {} of undecoded address 0x{:08X}; the monitor is gone until reset",
                      fault.write ? "store" : "load", fault.address));
}

std::optional<Clock::time_point> SambaMonitorDevice::next_deadline() const {
    if (!in_bootloader()) return std::nullopt;
    std::optional<Clock::time_point> next = busy_until_;
    if (xmodem_deadline_ && (!next || *xmodem_deadline_ < *next)) next = xmodem_deadline_;
    return next;
}

void SambaMonitorDevice::tick(Clock::time_point now) {
    while (auto next = next_deadline()) {
        if (*next > now) return;
        if (busy_until_ && *next == *busy_until_) end_busy(*next);
        else xmodem_timeout(*next);
    }
}

void SambaMonitorDevice::busy_until(Clock::time_point until, const std::string& then, Clock::time_point now) {
    if (until <= now) return answer(then, now);
    busy_until_ = until;
    after_busy_ = then;
}

void SambaMonitorDevice::end_busy(Clock::time_point now) {
    busy_until_.reset();
    answer(std::exchange(after_busy_, {}), now);
    // What arrived meanwhile waited in the USB endpoint or UART buffer.
    while (!busy_until_ && in_bootloader() && !pending_input_.empty()) {
        uint8_t byte = pending_input_.front();
        pending_input_.pop_front();
        consume(byte, now);
    }
}

void SambaMonitorDevice::answer(const std::string& text, Clock::time_point now) {
    send({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, now);
}

// ---- bytes in ----

void SambaMonitorDevice::receive(uint8_t byte, Clock::time_point now) {
    tick(now);
    if (!in_bootloader()) return;
    if (busy_until_) {
        pending_input_.push_back(byte);
        return;
    }
    consume(byte, now);
}

void SambaMonitorDevice::consume(uint8_t byte, Clock::time_point now) {
    try {
        switch (state_) {
            case State::Autobaud:
                // The monitor times 0x80 bytes and starts once '#' arrives at the measured rate.
                if (byte == '#') {
                    state_ = State::Command;
                    answer("\n\r>", now);
                }
                return;
            case State::Command: return command_byte(byte, now);
            case State::RawData:
                chip_.write(data_address_++, byte, 1, now);
                if (--data_remaining_ == 0) back_to_commands();
                return;
            case State::XmodemReceive: return xmodem_receive_byte(byte, now);
            case State::XmodemSend: return xmodem_send_byte(byte, now);
            case State::Hung:
            case State::Application: return;
        }
    } catch (const BusFault& fault) {
        bus_fault(fault);
    }
}

void SambaMonitorDevice::back_to_commands() {
    state_ = State::Command;
    xmodem_deadline_.reset();
    block_.clear();
}

void SambaMonitorDevice::command_byte(uint8_t byte, Clock::time_point now) {
    auto hex = [](uint8_t c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    if (byte == '#') {
        const uint8_t command = std::exchange(command_, 0);
        const uint32_t first = std::exchange(first_, 0), number = std::exchange(number_, 0);
        if (command) ++stats_.commands;
        execute(command, first, number, now);
        if (terminal_mode_ && state_ == State::Command) answer("\n\r>", now);
    } else if (int digit = hex(byte); digit >= 0) {
        number_ = number_ << 4 | static_cast<uint32_t>(digit);
    } else if (byte == ',') {
        first_ = std::exchange(number_, 0);
    } else {
        command_ = byte;
        first_ = number_ = 0;
    }
}

void SambaMonitorDevice::execute(uint8_t command, uint32_t first, uint32_t number, Clock::time_point now) {
    switch (command) {
        case 'N':
            answer("\n\r", now);
            terminal_mode_ = false;
            return;
        case 'T':
            answer("\n\r", now);
            terminal_mode_ = true;
            return;
        case 'V': return answer(version_ + "\n\r", now);
        case 'W': chip_.write(first, number, 4, now); break;
        case 'H': chip_.write(first, number & 0xFFFF, 2, now); break;
        case 'O': chip_.write(first, number & 0xFF, 1, now); break;
        case 'w': return answer_read(first, 4, now);
        case 'h': return answer_read(first, 2, now);
        case 'o': return answer_read(first, 1, now);
        case 'S': return start_receive(first, number, now);
        case 'R': return start_send(first, number, now);
        case 'G': call_applet(number, now); break;
        case 'X':
            if (extensions_) erase_to_end(number, now);
            return;
        case 'Y':
            if (!extensions_) return;
            if (number == 0) {
                copy_source_ = first;
                return answer("Y\n\r", now);
            }
            return copy_to_flash(first, number, now);
        case 'Z':
            if (extensions_) checksum(first, number, now);
            return;
        default: return;  // the monitors ignore what they do not know
    }
    // A store or a routine may have asked for a reset (AIRCR, RSTC).
    if (chip_.take_reset_request()) software_reset(now);
}

// ---- memory commands ----

uint8_t SambaMonitorDevice::monitor_read_byte(uint32_t address, Clock::time_point now) {
    // The SAM3X ROM monitor reads the flash as zeros (BOSSA reads EEFC flash through its applet).
    if (!chip_.facts().rom_monitor_reads_flash && chip_.flash().contains(address, 1)) return 0;
    return static_cast<uint8_t>(chip_.read(address, 1, now));
}

void SambaMonitorDevice::answer_read(uint32_t address, unsigned size, Clock::time_point now) {
    uint32_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint32_t{monitor_read_byte(address + i, now)} << (8 * i);
    if (terminal_mode_) return answer(fmt::format("\n\r0x{:0{}X}", value, 2 * size), now);
    std::vector<uint8_t> bytes(size);
    for (unsigned i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    send(bytes, now);
}

void SambaMonitorDevice::start_receive(uint32_t address, uint32_t length, Clock::time_point now) {
    if (transport_ == Transport::Usb) {
        if (length == 0) return;
        data_address_ = address;
        data_remaining_ = length;
        state_ = State::RawData;
        return;
    }
    data_address_ = address;
    data_remaining_ = length;
    expected_block_ = 1;
    block_.clear();
    idle_requests_ = 0;
    state_ = State::XmodemReceive;
    send(kCrcRequest, now);
    xmodem_deadline_ = now + kXmodemRequestInterval;
}

void SambaMonitorDevice::start_send(uint32_t address, uint32_t length, Clock::time_point now) {
    std::vector<uint8_t> data;
    data.reserve(length);
    try {
        for (uint32_t i = 0; i < length; ++i) data.push_back(monitor_read_byte(address + i, now));
    } catch (const BusFault&) {
        if (transport_ == Transport::Usb) send(data, now);  // what was read before the fault went out
        throw;
    }
    if (transport_ == Transport::Usb) {
        if (extensions_ && length > kUsbReadLimit) {
            // The bootloaders' USB send path garbles what follows the first 63 bytes of a long read.
            ++stats_.garbled_usb_reads;
            for (size_t i = kUsbReadLimit; i < data.size(); ++i) data[i] ^= 0xFF;
        }
        return send(data, now);
    }
    outgoing_ = std::move(data);
    block_index_ = 0;
    send_phase_ = SendPhase::WaitStart;
    state_ = State::XmodemSend;
    xmodem_deadline_ = now + kXmodemSenderTimeout;
}

void SambaMonitorDevice::call_applet(uint32_t address, Clock::time_point now) {
    ++stats_.applet_calls;
    const uint32_t stack = chip_.read(address, 4, now);
    const uint32_t entry = chip_.read(address + 4, 4, now);
    const uint32_t destination = chip_.read(address + 8, 4, now);
    const uint32_t source = chip_.read(address + 12, 4, now);
    const uint32_t words = chip_.read(address + 16, 4, now);
    // A branch to an even address leaves Thumb state: INVSTATE UsageFault, escalated to HardFault.
    if (!(entry & 1)) throw BusFault{entry, false};
    // The routine and its stack must be in SRAM for the copy to be what runs there.
    chip_.read(entry & ~1u, 4, now);
    chip_.read(stack - 4, 4, now);
    for (uint32_t i = 0; i < words; ++i)
        chip_.write(destination + 4 * i, chip_.read(source + 4 * i, 4, now), 4, now);
    trace(fmt::format("samba: applet copied {} words 0x{:08X} -> 0x{:08X}", words, source, destination));
}

// ---- Arduino/Adafruit extensions ----

void SambaMonitorDevice::erase_to_end(uint32_t address, Clock::time_point now) {
    const uint64_t violations = chip_.flash().counters().violations;
    const auto done = chip_.controller().erase_to_end(address, now);
    if (chip_.flash().counters().violations != violations)
        trace(fmt::format("samba: X{:08X}: the bootloader's rows stay (BOOTPROT)", address));
    busy_until(done, "X\n\r", now);
}

void SambaMonitorDevice::copy_to_flash(uint32_t flash_address, uint32_t length, Clock::time_point now) {
    std::vector<uint8_t> data(length);
    for (uint32_t i = 0; i < length; ++i) data[i] = static_cast<uint8_t>(chip_.read(copy_source_ + i, 1, now));
    const auto done = chip_.controller().program_pages(flash_address, data, now);
    busy_until(done, "Y\n\r", now);
}

void SambaMonitorDevice::checksum(uint32_t address, uint32_t length, Clock::time_point now) {
    std::vector<uint8_t> data(length);
    for (uint32_t i = 0; i < length; ++i) data[i] = static_cast<uint8_t>(chip_.read(address + i, 1, now));
    answer(fmt::format("Z{:08X}#\n\r", core::crc16_xmodem(data)), now);
}

// ---- XMODEM ----

void SambaMonitorDevice::xmodem_receive_byte(uint8_t byte, Clock::time_point now) {
    if (block_.empty()) {
        if (byte == kSoh) {
            block_.push_back(byte);
            xmodem_deadline_ = now + kXmodemByteTimeout;
        } else if (byte == kEot) {
            send(kAck, now);
            back_to_commands();
        } else if (byte == kCan) {
            trace("samba: XMODEM transfer cancelled by the host");
            back_to_commands();
        }
        return;  // anything else between blocks is line noise
    }
    block_.push_back(byte);
    xmodem_deadline_ = now + kXmodemByteTimeout;
    if (block_.size() < kBlockSize) return;

    const std::vector<uint8_t> block = std::exchange(block_, {});
    xmodem_deadline_ = now + kXmodemRequestInterval;
    idle_requests_ = 0;
    const std::span<const uint8_t> data(block.data() + 3, kBlockData);
    const uint16_t crc = core::crc16_xmodem(data);
    const bool intact = block[2] == static_cast<uint8_t>(~block[1]) && block[kBlockSize - 2] == (crc >> 8) &&
                        block[kBlockSize - 1] == (crc & 0xFF);
    if (intact && block[1] == expected_block_) {
        const uint32_t count = std::min<uint32_t>(kBlockData, data_remaining_);
        for (uint32_t i = 0; i < count; ++i) chip_.write(data_address_++, data[i], 1, now);
        data_remaining_ -= count;
        ++expected_block_;
        send(kAck, now);
    } else if (intact && block[1] == static_cast<uint8_t>(expected_block_ - 1)) {
        send(kAck, now);  // our ACK was lost and the block came again
    } else {
        ++stats_.xmodem_blocks_refused;
        send(kNak, now);
    }
}

void SambaMonitorDevice::send_block(Clock::time_point now) {
    std::vector<uint8_t> block(kBlockSize, 0x00);
    const auto number = static_cast<uint8_t>(block_index_ + 1);
    block[0] = kSoh;
    block[1] = number;
    block[2] = static_cast<uint8_t>(~number);
    const size_t offset = block_index_ * kBlockData;
    for (size_t i = 0; i < kBlockData && offset + i < outgoing_.size(); ++i) block[3 + i] = outgoing_[offset + i];
    const uint16_t crc = core::crc16_xmodem(std::span<const uint8_t>(block).subspan(3, kBlockData));
    block[kBlockSize - 2] = static_cast<uint8_t>(crc >> 8);
    block[kBlockSize - 1] = static_cast<uint8_t>(crc);
    send(block, now);
}

void SambaMonitorDevice::xmodem_send_byte(uint8_t byte, Clock::time_point now) {
    const size_t blocks = (outgoing_.size() + kBlockData - 1) / kBlockData;
    if (byte == kCan) {
        trace("samba: XMODEM transfer cancelled by the host");
        return back_to_commands();
    }
    xmodem_deadline_ = now + kXmodemSenderTimeout;
    switch (send_phase_) {
        case SendPhase::WaitStart:
            if (byte != kCrcRequest && byte != kNak) return;
            send_phase_ = SendPhase::WaitAck;
            if (blocks == 0) {
                send_phase_ = SendPhase::WaitEotAck;
                return send(kEot, now);
            }
            return send_block(now);
        case SendPhase::WaitAck:
            if (byte == kAck) {
                if (++block_index_ < blocks) return send_block(now);
                send_phase_ = SendPhase::WaitEotAck;
                return send(kEot, now);
            }
            if (byte == kNak || byte == kCrcRequest) return send_block(now);
            return;
        case SendPhase::WaitEotAck:
            if (byte == kAck) return back_to_commands();
            if (byte == kNak) return send(kEot, now);
            return;
    }
}

void SambaMonitorDevice::xmodem_timeout(Clock::time_point now) {
    if (state_ == State::XmodemSend) {
        trace("samba: XMODEM receiver silent: transfer abandoned");
        return back_to_commands();
    }
    if (state_ != State::XmodemReceive) {
        xmodem_deadline_.reset();
        return;
    }
    xmodem_deadline_ = now + kXmodemRequestInterval;
    if (!block_.empty()) {
        // A block stopped half way: drop it and ask for it again.
        block_.clear();
        ++stats_.xmodem_blocks_refused;
        return send(kNak, now);
    }
    if (++idle_requests_ > kXmodemRequests) {
        trace("samba: no XMODEM data from the host: transfer abandoned");
        return back_to_commands();
    }
    send(expected_block_ == 1 ? kCrcRequest : kNak, now);
}

}  // namespace mcuflash::sim::samba

#include "sim/stk500v1/avr_bootloader_device.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace mcuflash::sim::stk500v1 {

namespace {

FlashTiming flash_timing(bool timing) {
    if (!timing) return {};
    return FlashTiming{AvrTiming::kPageErase, {}, AvrTiming::kPageWrite};
}

FlashTiming eeprom_timing(bool timing) {
    if (!timing) return {};
    return FlashTiming{{}, {}, AvrTiming::kEepromByte};
}

}  // namespace

AvrBootloaderDevice::AvrBootloaderDevice(const targets::Chip& chip, const targets::Bootloader& bootloader,
                                         const DeviceOptions& options)
    : chip_(chip),
      bootloader_name_(bootloader.name),
      baud_(options.baud ? options.baud : bootloader.baud),
      uart_(WireModel::for_line({baud_, link::Parity::None}, options.timing)),
      // The page is both the erase unit and the write unit: SPM erases and writes whole pages.
      flash_(FlashLayout::uniform(0, chip.flash_size, chip.page_size, chip.page_size), flash_timing(options.timing)),
      eeprom_(FlashLayout::uniform(0, chip.eeprom_size ? chip.eeprom_size : 1, 1, 1), eeprom_timing(options.timing)) {
    uint32_t boot_size = bootloader.size_on(chip.name).value_or(0);
    if (boot_size == 0 || boot_size >= chip.flash_size)
        throw core::Error(core::ErrorKind::Usage,
                          fmt::format("{} has no boot section size for {} in data/bootloaders.toml", bootloader.name,
                                      chip.name));
    // The boot lock bits Arduino sets keep SPM from writing the bootloader's own section.
    flash_.protect({chip.flash_size - boot_size, boot_size, bootloader.name});
    flash_.fill_protected_with_placeholder();
    if (options.flash_file) flash_.attach_file(*options.flash_file);
}

std::string AvrBootloaderDevice::describe() const {
    return fmt::format("{} {} on {}", bootloader_name_, version(), chip_.name);
}

std::string AvrBootloaderDevice::trace_prefix() const { return bootloader_name_ + ": "; }

void AvrBootloaderDevice::reset(ResetCause cause, Clock::time_point now) {
    discard_output();
    frame_.clear();
    uart_fifo_.clear();
    busy_until_.reset();
    after_busy_.clear();
    transmitter_free_at_ = now;
    watchdog_fires_at_.reset();
    running_bootloader_ = cause == ResetCause::Pin || runs_on_power_up();
    trace(fmt::format("{}{} reset: {} runs", trace_prefix(), reset_cause_name(cause),
                      running_bootloader_ ? "bootloader" : "application"));
    if (running_bootloader_) start(now);
}

void AvrBootloaderDevice::run_application(Clock::time_point now, const std::string& why) {
    (void)now;
    running_bootloader_ = false;
    frame_.clear();
    uart_fifo_.clear();
    busy_until_.reset();
    after_busy_.clear();
    watchdog_fires_at_.reset();
    trace(fmt::format("{}{}: application runs (silent until the next reset)", trace_prefix(), why));
}

void AvrBootloaderDevice::set_watchdog(Clock::duration period, Clock::time_point now, bool kicked_by_bytes) {
    watchdog_period_ = period;
    watchdog_kicked_by_bytes_ = kicked_by_bytes;
    watchdog_fires_at_ = now + period;
}

std::optional<Clock::time_point> AvrBootloaderDevice::next_deadline() const {
    if (!running_bootloader_) return std::nullopt;
    std::optional<Clock::time_point> next = watchdog_fires_at_;
    if (busy_until_ && (!next || *busy_until_ < *next)) next = busy_until_;
    return next;
}

void AvrBootloaderDevice::tick(Clock::time_point now) {
    while (auto next = next_deadline()) {
        if (*next > now) return;
        if (watchdog_fires_at_ && *next == *watchdog_fires_at_) {
            ++stats_.watchdog_resets;
            watchdog_fires_at_.reset();
            // The watchdog reset flag tells the bootloader to start the application at once.
            watchdog_fired(*next);
        } else {
            end_busy(*next);
        }
    }
}

void AvrBootloaderDevice::end_busy(Clock::time_point now) {
    busy_until_.reset();
    if (!after_busy_.empty()) transmit(std::exchange(after_busy_, {}), now);
    // The CPU reads what the UART kept meanwhile.
    while (!busy_until_ && running_bootloader_ && !uart_fifo_.empty()) {
        uint8_t byte = uart_fifo_.front();
        uart_fifo_.pop_front();
        consume(byte, now);
    }
}

void AvrBootloaderDevice::receive(uint8_t byte, Clock::time_point now) {
    tick(now);
    if (!running_bootloader_) return;  // the application ignores the bootloader's protocol
    if (busy_until_) {
        if (uart_fifo_.size() < kUartReceiveBuffer) {
            uart_fifo_.push_back(byte);
        } else {
            ++stats_.overruns;
            trace(fmt::format("{}UART overrun: 0x{:02x} lost while the CPU was busy", trace_prefix(), byte));
        }
        return;
    }
    consume(byte, now);
}

void AvrBootloaderDevice::consume(uint8_t byte, Clock::time_point now) {
    if (!watchdog_kicked_by_bytes_) return;  // spinning until the watchdog bites: nothing is read
    if (watchdog_fires_at_) watchdog_fires_at_ = now + watchdog_period_;
    if (!take_byte(byte, now) || !running_bootloader_) return;
    frame_.push_back(byte);
    size_t length = command_length(frame_);
    if (length == kDiscardFrame) {
        frame_.clear();
        return;
    }
    if (length == 0 || frame_.size() < length) return;
    std::vector<uint8_t> command = std::exchange(frame_, {});
    ++stats_.commands;
    execute(command, now);
}

void AvrBootloaderDevice::transmit(std::span<const uint8_t> data, Clock::time_point now) {
    send(data, now);
    transmitter_free_at_ = std::max(transmitter_free_at_, now) + uart_.time_for(data.size());
    // The send loop returns once the last byte is in the UART's data register, two bytes before the end.
    Clock::time_point cpu_free = transmitter_free_at_ - uart_.time_for(2);
    if (cpu_free > now) busy_until_ = std::max(busy_until_.value_or(cpu_free), cpu_free);
}

void AvrBootloaderDevice::busy_for(Clock::duration busy, std::vector<uint8_t> then_send, Clock::time_point now) {
    if (busy <= Clock::duration::zero() && !busy_until_) {
        transmit(then_send, now);
        return;
    }
    busy_until_ = std::max(busy_until_.value_or(now), now) + busy;
    after_busy_.insert(after_busy_.end(), then_send.begin(), then_send.end());
}

Clock::duration AvrBootloaderDevice::write_flash_page(uint32_t page_address, std::span<const uint8_t> image) {
    // Both SPM operations are attempted, as the bootloader does; the chip ignores them in the boot section.
    FlashOutcome erased = flash_.erase(page_address, page_size());
    FlashOutcome written = flash_.program(page_address, image);
    if (!erased.ok() || !written.ok())
        trace(fmt::format("{}page write at 0x{:05X} ignored by the chip: {}", trace_prefix(), page_address,
                          flash_status_name(erased.ok() ? written.status : erased.status)));
    return erased.busy + written.busy;
}

Clock::duration AvrBootloaderDevice::write_eeprom(uint32_t address, std::span<const uint8_t> data) {
    Clock::duration busy{};
    for (uint8_t value : data) {
        uint32_t at = address++ % eeprom_.size();  // EEAR ignores address bits beyond the EEPROM
        eeprom_.erase(at, 1);
        busy += eeprom_.program(at, std::span(&value, 1)).busy;
    }
    return busy;
}

std::vector<uint8_t> AvrBootloaderDevice::read_flash(uint32_t address, uint32_t length) const {
    std::vector<uint8_t> out(length);
    for (uint32_t i = 0; i < length; ++i) out[i] = flash_.at((address + i) % flash_.size());
    return out;
}

std::vector<uint8_t> AvrBootloaderDevice::read_eeprom(uint32_t address, uint32_t length) const {
    std::vector<uint8_t> out(length);
    for (uint32_t i = 0; i < length; ++i) out[i] = eeprom_.at((address + i) % eeprom_.size());
    return out;
}

}  // namespace mcuflash::sim::stk500v1

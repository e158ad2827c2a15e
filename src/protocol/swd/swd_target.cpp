#include "protocol/swd/swd_target.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::protocol::swd {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using core::Stage;

namespace {

constexpr uint32_t kDbgmcuIdcode = 0xE0042000;
constexpr uint32_t kSamDid = 0x41002018;
constexpr uint32_t kSamDidRevision = 0x00000F00;
constexpr uint32_t kReadChunk = 16 * 1024;

bool is_stm32(const std::string& controller) { return controller == "stm32f1" || controller == "stm32f4"; }
bool is_sam(const std::string& controller) { return controller == "samd21" || controller == "samd51"; }

uint32_t signature_word(const std::vector<uint8_t>& signature) {
    uint32_t word = 0;
    for (size_t i = 0; i < 4 && i < signature.size(); ++i) word = word << 8 | signature[i];
    return word;
}

std::string kib(uint64_t bytes) {
    return bytes % 1024 ? fmt::format("{} bytes", bytes) : fmt::format("{} KiB", bytes / 1024);
}

}  // namespace

std::string SwdTargetInfo::describe() const {
    std::string text = fmt::format("{} ({}), {} flash at {}, {}", chip ? chip->name : "unknown chip", core,
                                   kib(flash_size), hex_address(flash_base), id_detail);
    text += fmt::format("; DPIDR 0x{:08X}, CPUID 0x{:08X}", dpidr, cpuid);
    if (protection.active) text += "; " + protection.detail;
    if (bootloader_protection) text += fmt::format("; BOOTPROT protects {}", kib(*bootloader_protection));
    text += fmt::format("; application start {}", hex_address(application_start));
    return text;
}

SwdTarget::SwdTarget(link::swd::DebugProbe& probe, const targets::Knowledge& knowledge)
    : probe_(probe), knowledge_(knowledge), dap_(probe), core_(dap_) {}

SwdTarget::~SwdTarget() = default;

FlashDriver& SwdTarget::driver() {
    if (!driver_) throw Error(ErrorKind::Internal, "SwdTarget used before connect()");
    return *driver_;
}

void SwdTarget::make_driver() {
    DriverContext context{dap_, core_, *info_.chip, info_.flash_base, info_.flash_size};
    driver_ = make_flash_driver(info_.flash_controller, context);
}

const SwdTargetInfo& SwdTarget::connect(const SwdConnectOptions& options, const core::Progress& progress) {
    options_ = options;
    info_ = SwdTargetInfo{};
    halted_for_programming_ = false;
    progress.started(Stage::Connect, 0, probe_.describe());
    probe_.set_clock(options.clock_hz);
    info_.probe = probe_.describe();
    if (options.under_reset) {
        namespace cm = link::swd::cortex_m;
        probe_.set_reset_line(true);
        try {
            info_.dpidr = dap_.connect();
            // Set up the vector catch while the chip is held; some chips refuse the access then, and
            // are halted right after the release instead.
            try {
                dap_.write32(cm::kDemcr, cm::kDemcrVcCoreReset);
                dap_.write32(cm::kDhcsr, cm::kDbgKey | cm::kDhcsrDebugEn | cm::kDhcsrHalt);
            } catch (const Error&) {
                dap_.clear_errors();
            }
        } catch (...) {
            probe_.set_reset_line(false);
            throw;
        }
        probe_.set_reset_line(false);
        probe_.pause(std::chrono::milliseconds(5));
        dap_.forget_state();
        core_.halt();
        dap_.write32(cm::kDemcr, dap_.read32(cm::kDemcr) & ~cm::kDemcrVcCoreReset);
        dap_.read32(cm::kDhcsr);  // clears S_RESET_ST: this reset was ours
    } else {
        info_.dpidr = dap_.connect();
        core_.halt();
    }
    info_.cpuid = core_.cpuid();
    info_.core = link::swd::CortexM::core_name(info_.cpuid);
    identify(options);
    make_driver();
    info_.protection = driver().readout_protection();
    if (is_sam(info_.flash_controller) && !info_.protection.active) info_.bootloader_protection = driver().bootloader_protection();
    // The default application start: the chip's usual bootloader size, or what BOOTPROT keeps if more.
    uint32_t start = info_.chip->klipper_offsets.empty() ? 0 : info_.chip->klipper_offsets.front();
    if (info_.bootloader_protection) start = std::max(start, *info_.bootloader_protection);
    info_.application_start = info_.flash_base + start;
    progress.finished(Stage::Connect, 0, info_.describe());
    return info_;
}

void SwdTarget::identify(const SwdConnectOptions& options) {
    const targets::Chip* expected = options.expected_chip.empty() ? nullptr : &knowledge_.chip(options.expected_chip);
    std::string expected_controller = expected ? flash_controller_of(*expected) : "";
    if (expected && expected_controller.empty())
        throw Error(ErrorKind::Unsupported, fmt::format("mcuflash cannot program the {} over SWD", expected->name),
                    "over SWD mcuflash programs STM32F1, STM32F4, SAMD21, SAMC21 and SAMD51 chips");

    auto try_read = [this](uint32_t address) -> std::optional<uint32_t> {
        try {
            return dap_.read32(address);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Protocol) throw;  // a FAULT: nothing there on this chip
            return std::nullopt;
        }
    };
    auto identify_stm32 = [&]() -> bool {
        auto idcode = try_read(kDbgmcuIdcode);
        if (!idcode || *idcode == 0) return false;
        const uint16_t dev_id = *idcode & 0xFFF;
        info_.id_code = *idcode;
        info_.id_detail = fmt::format("DBGMCU_IDCODE 0x{:08X}: DEV_ID 0x{:03X}, REV_ID 0x{:04X}", *idcode, dev_id, *idcode >> 16);
        std::vector<const targets::Chip*> candidates;
        if (expected) {
            if (expected->product_id != dev_id) return false;
            candidates.push_back(expected);
        } else {
            for (const auto* chip : knowledge_.chips_by_product_id(dev_id))
                if (is_stm32(flash_controller_of(*chip))) candidates.push_back(chip);
        }
        if (candidates.empty()) return false;
        // Parts sharing a DEV_ID differ in flash size: the chip's own register says which.
        uint32_t reported = 0;
        if (candidates.front()->flash_size_register) {
            const uint32_t reg = *candidates.front()->flash_size_register;
            if (auto word = try_read(reg & ~3u)) reported = (*word >> (8 * (reg & 2)) & 0xFFFF) * 1024u;
        }
        const targets::Chip* chosen = candidates.front();
        for (const auto* chip : candidates)
            if (chip->flash_size == reported) chosen = chip;
        info_.chip = chosen;
        info_.flash_size = reported && reported != 0xFFFFu * 1024u ? reported : chosen->flash_size;
        return true;
    };
    auto identify_sam = [&]() -> bool {
        auto did = try_read(kSamDid);
        if (!did || *did == 0) return false;
        info_.id_code = *did;
        info_.id_detail = fmt::format("DSU DID 0x{:08X} (revision {})", *did, static_cast<char>('A' + (*did >> 8 & 0xF)));
        const uint32_t masked = *did & ~kSamDidRevision;
        auto matches = [&](const targets::Chip& chip) {
            return chip.signature.size() == 4 && (signature_word(chip.signature) & ~kSamDidRevision) == masked &&
                   is_sam(flash_controller_of(chip));
        };
        if (expected) {
            if (!matches(*expected)) return false;
            info_.chip = expected;
        } else {
            for (const auto& [name, chip] : knowledge_.chips())
                if (matches(chip)) {
                    info_.chip = &chip;
                    break;
                }
            if (!info_.chip) return false;
        }
        info_.flash_size = info_.chip->flash_size;
        return true;
    };

    // A Cortex-M0+ here is a SAM; a Cortex-M4 may be either (STM32F4, SAMD51).
    const bool m0plus = (info_.cpuid >> 4 & 0xFFF) == 0xC60;
    bool found = false;
    if (expected) found = is_stm32(expected_controller) ? identify_stm32() : identify_sam();
    else found = m0plus ? (identify_sam() || identify_stm32()) : (identify_stm32() || identify_sam());
    if (!found) {
        const std::string seen = fmt::format("DPIDR 0x{:08X}, CPUID 0x{:08X} ({}){}", info_.dpidr, info_.cpuid, info_.core,
                                             info_.id_detail.empty() ? "" : ", " + info_.id_detail);
        if (expected)
            throw Error(ErrorKind::Unsupported,
                        fmt::format("the chip on the probe is not a {}: it reports {}", expected->name, seen),
                        "check --chip (or the board), and that the probe is wired to the right board");
        throw Error(ErrorKind::Unsupported, fmt::format("the chip on the probe is not one mcuflash knows: {}", seen),
                    "over SWD mcuflash programs STM32F1, STM32F4, SAMD21, SAMC21 and SAMD51 chips");
    }
    info_.flash_controller = flash_controller_of(*info_.chip);
    info_.flash_base = info_.chip->flash_base;
}

void SwdTarget::set_application_start(uint32_t address) {
    if (address < info_.flash_base || address > info_.flash_base + info_.flash_size)
        throw Error(ErrorKind::Usage, fmt::format("the application start {} is outside the flash ({} to {})",
                                                  hex_address(address), hex_address(info_.flash_base),
                                                  hex_address(info_.flash_base + info_.flash_size)));
    info_.application_start = address;
}

void SwdTarget::check_readable(const char* what) const {
    if (info_.protection.active)
        throw Error(ErrorKind::Unsupported, fmt::format("cannot {}: {}", what, info_.protection.detail),
                    info_.protection.way_out);
}

void SwdTarget::check_range(uint32_t address, uint64_t length, const char* what) const {
    const uint64_t end = static_cast<uint64_t>(address) + length;
    if (address < info_.flash_base || end > static_cast<uint64_t>(info_.flash_base) + info_.flash_size)
        throw Error(ErrorKind::BadInput,
                    fmt::format("cannot {} {} bytes at {}: the {}'s flash is {} to {}", what, length, hex_address(address),
                                info_.chip->name, hex_address(info_.flash_base),
                                hex_address(info_.flash_base + info_.flash_size)));
}

void SwdTarget::check_may_change(uint32_t first_unit, uint32_t address, const SwdWriteOptions& options,
                                 const char* what) const {
    if (first_unit < info_.application_start && !options.bootloader_install)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("refusing to {} at {}: the erase would start at {}, below the application start {} "
                                "(the bootloader is there)",
                                what, hex_address(address), hex_address(first_unit), hex_address(info_.application_start)),
                    "to replace the bootloader use `mcuflash bootloader install --probe`; to flash the application, "
                    "give it at the bootloader's offset");
    if (info_.bootloader_protection && first_unit < info_.flash_base + *info_.bootloader_protection)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("cannot {} at {}: BOOTPROT keeps the first {} of flash from writes", what,
                                hex_address(first_unit), kib(*info_.bootloader_protection)),
                    "lower the bootloader protection first (a bootloader install does: BOOTPROT 0, write, BOOTPROT back)");
}

std::vector<targets::EraseUnitRange> SwdTarget::units_covering(uint32_t address, uint64_t length) const {
    std::vector<targets::EraseUnitRange> units;
    const uint64_t end = static_cast<uint64_t>(address) + length;
    for (const auto& unit : driver_->layout())
        if (unit.address < end && static_cast<uint64_t>(unit.address) + unit.size > address) units.push_back(unit);
    return units;
}

void SwdTarget::check_still_halted(const char* what) {
    // S_RESET_ST is sticky until read: set means the chip reset since the last look (reset_and_halt
    // reads it), and then its firmware may be running alongside the flash operation.
    const uint32_t dhcsr = dap_.read32(link::swd::cortex_m::kDhcsr);
    if ((dhcsr & link::swd::cortex_m::kDhcsrResetSeen) || !(dhcsr & link::swd::cortex_m::kDhcsrHalted)) {
        halted_for_programming_ = false;
        throw Error(ErrorKind::Io,
                    fmt::format("the chip reset itself while {} (a brown-out, its watchdog or the reset button): the "
                                "flash may hold a partial write",
                                what),
                    "check the board's power supply and that nothing presses reset; then run the same command again");
    }
}

void SwdTarget::erase_units(const std::vector<targets::EraseUnitRange>& units, const core::Progress& progress,
                            uint64_t total) {
    // In groups, so that the bar moves and a reset of the chip is seen between them; each group is one
    // queue the probe works through on its own.
    constexpr size_t kGroup = 16;
    uint64_t done = 0;
    for (size_t at = 0; at < units.size(); at += kGroup) {
        const auto group = std::span(units).subspan(at, std::min(kGroup, units.size() - at));
        driver().erase(group, {});
        check_still_halted("erasing");
        for (const auto& unit : group) done += unit.size;
        progress.advanced(Stage::Erase, done, total);
    }
}

void SwdTarget::halt_for_programming() {
    if (halted_for_programming_) return;
    // From reset, so that no firmware runs and the flash controller is idle and in its reset state.
    core_.reset_and_halt(options_.reset);
    make_driver();
    halted_for_programming_ = true;
}

std::vector<uint8_t> SwdTarget::read_flash(uint32_t address, uint32_t length, const core::Progress& progress) {
    driver();
    check_readable("read the flash");
    check_range(address, length, "read");
    std::vector<uint8_t> out;
    out.reserve(length);
    progress.started(Stage::Read, length);
    for (uint32_t done = 0; done < length;) {
        const uint32_t n = std::min(kReadChunk, length - done);
        auto bytes = dap_.read_bytes(address + done, n);
        out.insert(out.end(), bytes.begin(), bytes.end());
        done += n;
        progress.advanced(Stage::Read, done, length);
    }
    progress.finished(Stage::Read, length);
    return out;
}

void SwdTarget::erase_flash(uint32_t address, uint32_t length, const core::Progress& progress,
                            const SwdWriteOptions& options) {
    driver();
    check_readable("erase the flash");
    check_range(address, length, "erase");
    if (length == 0) return;
    auto units = units_covering(address, length);
    if (units.front().address != address || units.back().address + units.back().size != address + length)
        throw Error(ErrorKind::Usage,
                    fmt::format("{} bytes at {} are not whole erase units (the range would have to grow to {}..{})",
                                length, hex_address(address), hex_address(units.front().address),
                                hex_address(units.back().address + units.back().size)));
    check_may_change(units.front().address, address, options, "erase");
    halt_for_programming();
    progress.started(Stage::Erase, length);
    erase_units(units, progress, length);
    progress.finished(Stage::Erase, length);
}

void SwdTarget::write_flash(uint32_t address, std::span<const uint8_t> data, const core::Progress& progress,
                            const SwdWriteOptions& options) {
    driver();
    if (data.empty()) return;
    check_readable("write the flash");
    check_range(address, data.size(), "write");
    const auto units = units_covering(address, data.size());
    const uint32_t first = units.front().address;
    const uint32_t end = units.back().address + units.back().size;
    check_may_change(first, address, options, "write");
    halt_for_programming();

    // The units' bytes outside `data` are kept: read before the erase, written back.
    std::vector<uint8_t> image(end - first, 0xFF);
    const uint32_t data_end = address + static_cast<uint32_t>(data.size());
    if (address > first) {
        auto head = dap_.read_bytes(first, address - first);
        std::copy(head.begin(), head.end(), image.begin());
    }
    if (data_end < end) {
        auto tail = dap_.read_bytes(data_end, end - data_end);
        std::copy(tail.begin(), tail.end(), image.begin() + (data_end - first));
    }
    std::copy(data.begin(), data.end(), image.begin() + (address - first));

    progress.started(Stage::Erase, image.size(), fmt::format("{} erase units from {}", units.size(), hex_address(first)));
    erase_units(units, progress, image.size());
    progress.finished(Stage::Erase, image.size());

    // Blank write units are left erased; the rest is programmed in runs.
    const uint32_t unit = driver().write_unit();
    auto blank = [&](size_t at) {
        return std::all_of(image.begin() + static_cast<std::ptrdiff_t>(at),
                           image.begin() + static_cast<std::ptrdiff_t>(std::min(at + unit, image.size())),
                           [](uint8_t b) { return b == 0xFF; });
    };
    progress.started(Stage::Write, image.size());
    uint64_t written = 0;
    for (size_t at = 0; at < image.size();) {
        if (blank(at)) {
            at += unit;
            written += unit;
            continue;
        }
        size_t run_end = at;
        while (run_end < image.size() && !blank(run_end)) run_end += unit;
        const uint64_t before = written;
        driver().program(first + static_cast<uint32_t>(at), std::span<const uint8_t>(image).subspan(at, run_end - at),
                         [&](uint64_t done) {
                             check_still_halted("writing");
                             progress.advanced(Stage::Write, before + done, image.size());
                         });
        written += run_end - at;
        at = run_end;
    }
    progress.finished(Stage::Write, image.size());

    if (options.verify) {
        progress.started(Stage::Verify, image.size());
        for (uint32_t done = 0; done < image.size();) {
            const uint32_t n = std::min<uint32_t>(kReadChunk, static_cast<uint32_t>(image.size()) - done);
            auto back = dap_.read_bytes(first + done, n);
            for (uint32_t i = 0; i < n; ++i)
                if (back[i] != image[done + i])
                    throw Error(ErrorKind::VerifyMismatch,
                                fmt::format("the flash at {} reads 0x{:02X} after the write, not 0x{:02X}",
                                            hex_address(first + done + i), back[i], image[done + i]),
                                "write it again; if it fails at the same address, that flash may be worn or protected")
                        .during("verifying the write")
                        .at_address(first + done + i);
            done += n;
            progress.advanced(Stage::Verify, done, image.size());
        }
        progress.finished(Stage::Verify, image.size());
    }
    driver().finish();
}

void SwdTarget::chip_erase(const core::Progress& progress) {
    driver();
    halt_for_programming();
    progress.started(Stage::Erase, info_.flash_size, "the whole chip, bootloader included");
    driver().chip_erase();
    check_still_halted("erasing the chip");
    driver().finish();
    progress.finished(Stage::Erase, info_.flash_size);
}

void SwdTarget::remove_readout_protection(const core::Progress& progress) {
    driver();
    halt_for_programming();
    progress.started(Stage::Erase, info_.flash_size, "removing readout protection erases the whole chip");
    driver().remove_readout_protection();
    progress.finished(Stage::Erase, info_.flash_size);
    // The option bytes load at reset.
    core_.reset_and_halt(options_.reset);
    make_driver();
    info_.protection = driver().readout_protection();
    if (info_.protection.active)
        throw Error(ErrorKind::Protocol, fmt::format("the readout protection is still on after removing it: {}",
                                                     info_.protection.detail),
                    "power the board off and on (some chips load option bytes only at power-on), then connect again");
}

std::optional<uint32_t> SwdTarget::bootloader_protection() {
    if (!driver().bootloader_protection()) return std::nullopt;
    info_.bootloader_protection = driver().bootloader_protection();
    return info_.bootloader_protection;
}

std::vector<uint32_t> SwdTarget::bootloader_protection_sizes() const {
    return driver_ ? driver_->bootloader_protection_sizes() : std::vector<uint32_t>{};
}

void SwdTarget::set_bootloader_protection(uint32_t bytes) {
    driver();
    check_readable("change the bootloader protection");
    halt_for_programming();
    driver().set_bootloader_protection(bytes);
    // BOOTPROT is loaded at reset.
    core_.reset_and_halt(options_.reset);
    make_driver();
    const auto now = driver().bootloader_protection();
    if (now != bytes)
        throw Error(ErrorKind::VerifyMismatch,
                    fmt::format("BOOTPROT protects {} after the change, not {}", now ? kib(*now) : "nothing", kib(bytes)));
    info_.bootloader_protection = now;
}

void SwdTarget::reset_and_run() {
    if (driver_) driver_->finish();
    core_.reset_and_run(options_.reset);
    halted_for_programming_ = false;
}

}  // namespace mcuflash::protocol::swd

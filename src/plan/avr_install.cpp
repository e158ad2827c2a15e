#include "plan/avr_install.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::plan {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using targets::FuseByte;
using targets::FuseValues;

namespace {

// The order fuses are written in: the boot section (efuse or hfuse) before the clock (lfuse), as
// Arduino does, and the lock byte last.
constexpr FuseByte kWriteOrder[] = {FuseByte::Extended, FuseByte::High, FuseByte::Low, FuseByte::Lock};

const targets::AvrFuses& fuse_facts(const targets::Chip& chip) {
    if (!chip.fuses)
        throw Error(ErrorKind::Usage, fmt::format("mcuflash has no fuse facts for the {} (data/chips.toml)", chip.name));
    return *chip.fuses;
}

std::string byte_text(FuseByte fuse, uint8_t value) {
    return fmt::format("{}=0x{:02X}", targets::fuse_byte_name(fuse), value);
}

// "verified: efuse=0xFD; not written: hfuse=0xD8, lfuse=0xFF" for the state after a failed step.
std::string progress_text(const std::vector<FuseWrite>& done, const std::vector<std::pair<FuseByte, uint8_t>>& left) {
    std::vector<std::string> verified, pending;
    for (const auto& w : done) verified.push_back(byte_text(w.fuse, w.value));
    for (const auto& [fuse, value] : left) pending.push_back(byte_text(fuse, value));
    return fmt::format("written and verified before it: {}; not written: {}",
                       verified.empty() ? "nothing" : fmt::format("{}", fmt::join(verified, ", ")),
                       pending.empty() ? "nothing" : fmt::format("{}", fmt::join(pending, ", ")));
}

// Whether the image holds data outside [from, to) and the allowed stray ranges.
bool outside(const image::Image& image, uint64_t from, uint64_t to,
             std::vector<std::pair<uint32_t, uint32_t>> allowed) {
    allowed.emplace_back(static_cast<uint32_t>(from), static_cast<uint32_t>(to - from));
    std::sort(allowed.begin(), allowed.end());
    uint64_t at = 0;
    for (const auto& [start, size] : allowed) {
        if (start > at && image.any_in(static_cast<uint32_t>(at), start)) return true;
        at = std::max<uint64_t>(at, uint64_t(start) + size);
    }
    return at <= 0xFFFFFFFFull && image.any_in(static_cast<uint32_t>(at), 0x100000000ull);
}

// The runs of consecutive pages the image touches: [start, end) byte ranges.
std::vector<std::pair<uint32_t, uint32_t>> page_runs(const image::Image& image, uint32_t page) {
    std::vector<std::pair<uint32_t, uint32_t>> runs;
    const uint64_t end = (image.end() + page - 1) / page * page;
    for (uint64_t at = image.lowest() / page * page; at < end; at += page) {
        if (!image.any_in(static_cast<uint32_t>(at), at + page)) continue;
        if (!runs.empty() && runs.back().second == at) runs.back().second = static_cast<uint32_t>(at + page);
        else runs.emplace_back(static_cast<uint32_t>(at), static_cast<uint32_t>(at + page));
    }
    return runs;
}

}  // namespace

std::string describe_fuses(const FuseValues& values) {
    std::vector<std::string> parts;
    for (FuseByte fuse : targets::kAllFuseBytes)
        if (auto it = values.find(fuse); it != values.end()) parts.push_back(byte_text(fuse, it->second));
    return fmt::format("{}", fmt::join(parts, " "));
}

std::vector<std::string> check_fuses(const targets::Chip& chip, const FuseValues& values, const FuseSafety& safety) {
    auto problems = targets::fuse_refusals(fuse_facts(chip), values);
    if (problems.empty() || (safety.force && safety.confirm_brick_risk)) return problems;
    std::string list;
    for (const auto& p : problems) list += "\n  - " + p;
    throw Error(ErrorKind::Unsafe,
                fmt::format("refusing fuses that would leave the {} unprogrammable:{}", chip.name, list),
                safety.force ? "--force alone is not enough here: add --confirm-brick-risk too, and only if the "
                               "board really needs this and you can recover it (high-voltage programmer)"
                             : "check the values; if the board really needs them and you can recover it with a "
                               "high-voltage programmer, give both --force and --confirm-brick-risk");
}

std::vector<std::string> check_install(const InstallRequest& request, const FuseSafety& safety) {
    const targets::Chip& chip = *request.chip;
    const auto& facts = fuse_facts(chip);
    std::vector<std::string> warnings = check_fuses(chip, request.fuses, safety);
    if (request.image.empty()) throw Error(ErrorKind::BadInput, fmt::format("{} holds no data", request.image_name));

    auto boot_size = facts.boot_size(request.fuses);
    if (!boot_size)
        throw Error(ErrorKind::Usage, fmt::format("installing a bootloader needs the {} value: it selects the boot section",
                                                  targets::fuse_byte_name(facts.boot_size_fuse)));
    const uint64_t flash_end = uint64_t(chip.flash_base) + chip.flash_size;
    const uint64_t boot_start = flash_end - *boot_size;
    if (outside(request.image, boot_start, flash_end, request.stray_bytes))
        throw Error(ErrorKind::BadInput,
                    fmt::format("{} spans {}-{}, but the boot section {} selects on the {} is {}-{} ({} bytes): "
                                "the bootloader does not fit it",
                                request.image_name, hex_address(request.image.lowest()),
                                hex_address(static_cast<uint32_t>(request.image.end() - 1)),
                                byte_text(facts.boot_size_fuse, request.fuses.at(facts.boot_size_fuse)), chip.name,
                                hex_address(static_cast<uint32_t>(boot_start)),
                                hex_address(static_cast<uint32_t>(flash_end - 1)), *boot_size),
                    "use the fuses that go with this bootloader (boards.txt of its package), or the bootloader built "
                    "for this boot section size");
    if (facts.boot_reset_programmed(request.fuses) == false)
        warnings.push_back(fmt::format("BOOTRST is unprogrammed ({}): the chip will start the application at 0, "
                                       "not the bootloader",
                                       byte_text(facts.boot_reset_fuse, request.fuses.at(facts.boot_reset_fuse))));
    return warnings;
}

FuseValues read_fuses(protocol::AvrProgrammer& programmer) {
    FuseValues values;
    for (FuseByte fuse : targets::kAllFuseBytes) values[fuse] = programmer.read(fuse);
    return values;
}

std::vector<FuseWrite> write_fuses(protocol::AvrProgrammer& programmer, const targets::AvrFuses& facts,
                                   const FuseValues& values, const core::Progress& progress) {
    std::vector<std::pair<FuseByte, uint8_t>> todo;
    for (FuseByte fuse : kWriteOrder)
        if (auto it = values.find(fuse); it != values.end()) todo.emplace_back(fuse, it->second);

    std::vector<FuseWrite> done;
    for (size_t i = 0; i < todo.size(); ++i) {
        auto [fuse, value] = todo[i];
        std::vector<std::pair<FuseByte, uint8_t>> left(todo.begin() + static_cast<long>(i) + 1, todo.end());
        progress.note(core::Stage::Write, fmt::format("writing {}", byte_text(fuse, value)));
        try {
            programmer.write(fuse, value);
        } catch (Error& e) {
            // The write may or may not have reached the chip: say what it holds now, if it can be read.
            std::string now;
            try {
                now = fmt::format("it reads 0x{:02X} now", programmer.read(fuse));
            } catch (const Error&) {
                now = "it could not be read back, so its value is unknown";
            }
            throw Error(e.kind(),
                        fmt::format("writing {} failed: {}; {}; {}", byte_text(fuse, value), e.what(), now,
                                    progress_text(done, left)),
                        e.hint());
        }
        uint8_t read_back = programmer.read(fuse);
        if (!facts.same(fuse, value, read_back))
            throw Error(ErrorKind::VerifyMismatch,
                        fmt::format("{} was written but reads back 0x{:02X} (bits that exist: 0x{:02X}); {}",
                                    byte_text(fuse, value), read_back, facts.used(fuse), progress_text(done, left)),
                        fuse == FuseByte::Lock ? "" : "a fuse that does not take usually means lock bits that "
                                                      "block fuse writes: a chip erase clears them");
        done.push_back({fuse, value, read_back});
        progress.note(core::Stage::Verify, fmt::format("{} verified", byte_text(fuse, value)));
    }
    return done;
}

InstallReport install_bootloader(protocol::AvrProgrammer& programmer, const InstallRequest& request,
                                 const core::Progress& progress) {
    const targets::Chip& chip = *request.chip;
    const auto& facts = fuse_facts(chip);
    InstallReport report;
    report.before = read_fuses(programmer);
    progress.note(core::Stage::Erase, fmt::format("fuses before: {}", describe_fuses(report.before)));

    progress.started(core::Stage::Erase, 1, "chip erase");
    programmer.chip_erase();
    progress.finished(core::Stage::Erase, 1);

    auto unlocked = write_fuses(programmer, facts, {{FuseByte::Lock, request.unlock}}, progress);
    auto fused = write_fuses(programmer, facts, request.fuses, progress);
    report.fuse_writes = unlocked;
    report.fuse_writes.insert(report.fuse_writes.end(), fused.begin(), fused.end());

    core::Progress verify_progress([&progress](const core::ProgressEvent& e) {
        core::ProgressEvent as_verify = e;
        if (e.stage == core::Stage::Read) as_verify.stage = core::Stage::Verify;
        progress.emit(as_verify);
    });
    const auto runs = page_runs(request.image, chip.page_size);
    for (const auto& [from, to] : runs) {
        const auto data = request.image.flatten(from, to);
        programmer.write_flash(from, data, progress);
        const auto back = programmer.read_flash(from, to - from, verify_progress);
        for (uint32_t i = 0; i < data.size(); ++i)
            if (back[i] != data[i])
                throw Error(ErrorKind::VerifyMismatch,
                            fmt::format("the bootloader did not verify: flash at {} reads 0x{:02X}, {} has 0x{:02X}; "
                                        "the fuses were written ({}), the lock byte was not (the boot section stays "
                                        "unprotected)",
                                        hex_address(from + i), back[i], request.image_name, data[i],
                                        describe_fuses(request.fuses)),
                            "run the install again; if it keeps failing, check the ISP cable and slow the programmer "
                            "down")
                    .at_address(from + i);
        report.flash_bytes += to - from;
    }
    report.flash_start = static_cast<uint32_t>(chip.flash_base + chip.flash_size - *facts.boot_size(request.fuses));
    report.flash_verified = true;

    auto locked = write_fuses(programmer, facts, {{FuseByte::Lock, request.lock}}, progress);
    report.fuse_writes.insert(report.fuse_writes.end(), locked.begin(), locked.end());
    return report;
}

}  // namespace mcuflash::plan

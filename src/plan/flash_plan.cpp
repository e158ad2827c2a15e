#include "plan/flash_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.hpp"
#include "core/hexdump.hpp"

namespace mcuflash::plan {

using core::Error;
using core::ErrorKind;
using core::hex_address;
using core::Stage;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Verify reads this much at a time, so progress moves and a mismatch is found early.
constexpr uint32_t kVerifyChunk = 1024;

}  // namespace

void check_fits_flash(const image::Image& image, uint32_t flash_base, uint32_t flash_size, const std::string& chip) {
    uint64_t flash_end = uint64_t(flash_base) + flash_size;
    if (image.lowest() < flash_base || image.end() > flash_end)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image spans {}-{} but the {}'s flash is {}-{}; nothing was written",
                                hex_address(image.lowest()), hex_address(static_cast<uint32_t>(image.end() - 1)), chip,
                                hex_address(flash_base), hex_address(static_cast<uint32_t>(flash_end - 1))),
                    "check that the image was built for this chip");
}

FlashPlan make_plan(const image::Image& image, const protocol::DeviceInfo& device, const protocol::Capabilities& caps,
                    const PlanOptions& options) {
    if (image.empty()) throw Error(ErrorKind::BadInput, "the image holds no data");
    check_fits_flash(image, device.flash_base, device.flash_size, device.chip);
    if (image.lowest() < device.app_start || image.end() > device.app_end) {
        bool below = image.lowest() < device.app_start;
        uint64_t flash_end = uint64_t(device.flash_base) + device.flash_size;
        uint32_t reserved_from = below ? device.flash_base : device.app_end;
        uint32_t reserved_to = below ? device.app_start - 1 : static_cast<uint32_t>(flash_end - 1);
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image spans {}-{} but the {} bootloader of this {} occupies {}-{} (the "
                                "application region is {}-{}); writing there would brick the board, so nothing "
                                "was written",
                                hex_address(image.lowest()), hex_address(static_cast<uint32_t>(image.end() - 1)),
                                device.bootloader.empty() ? "unidentified" : device.bootloader, device.chip,
                                hex_address(reserved_from), hex_address(reserved_to), hex_address(device.app_start),
                                hex_address(device.app_end - 1)),
                    below ? fmt::format("the application must be linked to start at {}", hex_address(device.app_start))
                          : "the image is too large for the space the bootloader leaves");
    }
    if (device.boot_area_end && image.lowest() < *device.boot_area_end && !options.write_boot_area)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image starts at {}, in {}-{} where the {} boots from: it would replace any "
                                "bootloader installed there; nothing was written",
                                hex_address(image.lowest()), hex_address(device.flash_base),
                                hex_address(*device.boot_area_end - 1), device.chip),
                    "to install a bootloader, or an application built to run without one (Klipper with \"No "
                    "bootloader\"), add --write-boot-area; an application for a bootloader must be linked above it");
    if (image.entry && (*image.entry < device.app_start || *image.entry >= device.app_end) &&
        !options.force_link_address)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image's entry point {} is outside the application region {}-{}: it was linked "
                                "for another bootloader offset; nothing was written",
                                hex_address(*image.entry), hex_address(device.app_start), hex_address(device.app_end - 1)),
                    "rebuild for the right offset, or pass --force if you know the entry point is right");

    const uint32_t unit = std::max<uint32_t>(caps.write_unit, 1);
    FlashPlan plan;
    plan.image_bytes = image.total_bytes();
    // Every write unit the image touches, in address order.
    std::vector<uint32_t> starts;
    for (const auto& [address, bytes] : image.runs()) {
        uint64_t first = address / unit * unit;
        for (uint64_t at = first; at < address + bytes.size(); at += unit)
            if (starts.empty() || starts.back() != at) starts.push_back(static_cast<uint32_t>(at));
    }
    for (uint32_t at : starts) plan.pages.push_back({at, image.flatten(at, at + unit, 0xFF)});

    // The erase units the pages touch; one reaching outside the application region would erase
    // part of the bootloader (or what lies beyond the application).
    for (const auto& unit_range : caps.erase_units) {
        bool touched = std::any_of(plan.pages.begin(), plan.pages.end(), [&](const PageWrite& p) {
            return p.address < unit_range.end() && p.address + p.data.size() > unit_range.address;
        });
        if (!touched) continue;
        if (unit_range.address < device.app_start || unit_range.end() > device.app_end)
            throw Error(ErrorKind::Unsafe,
                        fmt::format("the image starts at {}, inside the erase unit {}-{} that also holds the "
                                    "bootloader region; erasing it would brick the board, so nothing was written",
                                    hex_address(image.lowest()), hex_address(unit_range.address),
                                    hex_address(static_cast<uint32_t>(unit_range.end() - 1))),
                        fmt::format("link the application at an erase-unit boundary at or above {}",
                                    hex_address(device.app_start)));
        plan.erases.push_back(unit_range);
    }
    return plan;
}

namespace {

// Whether the device's checksum of `bytes` at `address` matches; nullopt when it gave none.
std::optional<bool> checksum_matches(protocol::Bootloader& device, const protocol::Capabilities& caps,
                                     uint32_t address, std::span<const uint8_t> bytes) {
    if (!caps.can_checksum || !caps.local_checksum) return std::nullopt;
    auto on_device = device.checksum(address, static_cast<uint32_t>(bytes.size()));
    if (!on_device) return std::nullopt;
    return *on_device == caps.local_checksum(bytes);
}

}  // namespace

std::vector<uint32_t> verify_pages(protocol::Bootloader& device, const std::vector<PageWrite>& pages,
                                   const core::Progress& progress) {
    const auto caps = device.capabilities();
    std::vector<uint32_t> bad;
    uint64_t total = 0, done = 0;
    for (const auto& p : pages) total += p.data.size();
    progress.started(Stage::Verify, total);
    // Read contiguous runs of pages in chunks: fewer, larger reads.
    size_t i = 0;
    while (i < pages.size()) {
        size_t j = i;
        uint64_t run_end = pages[i].address + pages[i].data.size();
        while (j + 1 < pages.size() && pages[j + 1].address == run_end && run_end - pages[i].address < kVerifyChunk) {
            ++j;
            run_end += pages[j].data.size();
        }
        size_t offset = 0;
        std::vector<uint8_t> expected;
        for (size_t k = i; k <= j; ++k) expected.insert(expected.end(), pages[k].data.begin(), pages[k].data.end());
        if (checksum_matches(device, caps, pages[i].address, expected) == true) {
            offset = expected.size();  // the whole run matches; a mismatch falls back to reading it
        } else {
            auto back = device.read(pages[i].address, static_cast<uint32_t>(run_end - pages[i].address));
            for (size_t k = i; k <= j; ++k) {
                if (!std::equal(pages[k].data.begin(), pages[k].data.end(), back.begin() + static_cast<long>(offset)))
                    bad.push_back(pages[k].address);
                offset += pages[k].data.size();
            }
        }
        done += offset;
        progress.advanced(Stage::Verify, done, total);
        i = j + 1;
    }
    progress.finished(Stage::Verify, done, bad.empty() ? "" : fmt::format("{} pages differ", bad.size()));
    return bad;
}

FlashReport execute(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
                    const core::Progress& progress) {
    FlashReport report;
    auto write_pages = [&](const std::vector<const PageWrite*>& pages) {
        uint64_t total = 0, done = 0;
        for (auto* p : pages) total += p->data.size();
        progress.started(Stage::Write, total);
        for (auto* p : pages) {
            device.write(p->address, p->data);
            done += p->data.size();
            progress.advanced(Stage::Write, done, total);
        }
        progress.finished(Stage::Write, done);
        report.bytes_written += done;
    };

    auto erase_units = [&](const std::vector<protocol::EraseUnit>& units) {
        uint64_t total = 0, done = 0;
        for (const auto& u : units) total += u.size;
        progress.started(Stage::Erase, total);
        // Adjacent units go in one call: the device can erase them in one command.
        for (size_t i = 0; i < units.size();) {
            size_t j = i;
            while (j + 1 < units.size() && units[j + 1].address == units[j].end()) ++j;
            uint32_t length = static_cast<uint32_t>(units[j].end() - units[i].address);
            device.erase(units[i].address, length);
            done += length;
            progress.advanced(Stage::Erase, done, total);
            i = j + 1;
        }
        progress.finished(Stage::Erase, done);
        report.bytes_erased += done;
    };

    // Leave alone what already holds the image: an erase unit (or, without erase units, a page)
    // whose device checksum equals that of what flashing would leave there.
    FlashPlan todo = plan;
    const auto caps = device.capabilities();
    if (options.skip_unchanged && caps.can_checksum && caps.local_checksum) {
        FlashPlan kept;
        auto pages_in = [&](uint32_t from, uint64_t to) {
            std::vector<const PageWrite*> in;
            for (const auto& p : plan.pages)
                if (p.address >= from && p.address < to) in.push_back(&p);
            return in;
        };
        std::vector<protocol::EraseUnit> groups = plan.erases;
        if (groups.empty())
            for (const auto& p : plan.pages) groups.push_back({p.address, static_cast<uint32_t>(p.data.size())});
        progress.started(Stage::Verify, groups.size(), "comparing checksums with what is on the device");
        size_t compared = 0;
        for (const auto& group : groups) {
            auto pages = pages_in(group.address, group.end());
            std::vector<uint8_t> after(group.size, 0xFF);  // an erase unit reads 0xFF where no page lands
            for (auto* p : pages) std::copy(p->data.begin(), p->data.end(), after.begin() + (p->address - group.address));
            if (checksum_matches(device, caps, group.address, after) == true) {
                report.bytes_unchanged += group.size;
            } else {
                if (!plan.erases.empty()) kept.erases.push_back(group);
                for (auto* p : pages) kept.pages.push_back(*p);
            }
            progress.advanced(Stage::Verify, ++compared, groups.size());
        }
        progress.finished(Stage::Verify, compared,
                          fmt::format("{} bytes already hold the image and are left alone", report.bytes_unchanged));
        kept.image_bytes = plan.image_bytes;
        todo = std::move(kept);
    }

    auto t_erase = std::chrono::steady_clock::now();
    if (!todo.erases.empty()) erase_units(todo.erases);
    report.seconds_erase = seconds_since(t_erase);

    auto t0 = std::chrono::steady_clock::now();
    std::vector<const PageWrite*> all;
    for (const auto& p : todo.pages) all.push_back(&p);
    write_pages(all);
    report.pages_written = todo.pages.size();
    report.seconds_write = seconds_since(t0);

    if (options.verify) {
        auto t1 = std::chrono::steady_clock::now();
        std::vector<PageWrite> to_check = todo.pages;
        for (int round = 0;; ++round) {
            auto bad = verify_pages(device, to_check, progress);
            if (bad.empty()) break;
            if (round >= options.max_rewrites)
                throw Error(ErrorKind::VerifyMismatch,
                            fmt::format("verify failed: {} page(s) still differ after {} rewrites, first at {}",
                                        bad.size(), options.max_rewrites, hex_address(bad.front())),
                            "the flash may be worn, or the link is unreliable: try a lower --baud or another cable")
                    .at_address(bad.front());
            std::vector<PageWrite> again;
            for (const auto& p : to_check)
                if (std::find(bad.begin(), bad.end(), p.address) != bad.end()) again.push_back(p);
            if (!todo.erases.empty()) {
                // Flash that needs an erase cannot be written twice: erase the units holding the bad
                // pages again and rewrite every planned page inside them.
                std::vector<protocol::EraseUnit> units;
                for (const auto& u : todo.erases)
                    if (std::any_of(again.begin(), again.end(),
                                    [&](const PageWrite& p) { return p.address >= u.address && p.address < u.end(); }))
                        units.push_back(u);
                erase_units(units);
                again.clear();
                for (const auto& p : todo.pages)
                    if (std::any_of(units.begin(), units.end(),
                                    [&](const auto& u) { return p.address >= u.address && p.address < u.end(); }))
                        again.push_back(p);
            }
            progress.note(Stage::Verify, fmt::format("{} page(s) differ, first at {}: writing them again", bad.size(),
                                                     hex_address(bad.front())));
            std::vector<const PageWrite*> ptrs;
            for (const auto& p : again) ptrs.push_back(&p);
            write_pages(ptrs);
            report.pages_rewritten += again.size();
            to_check = std::move(again);
        }
        report.verified = true;
        report.seconds_verify = seconds_since(t1);
    }
    if (options.start_application) {
        progress.started(Stage::Start, 0);
        device.start_application();
        progress.finished(Stage::Start, 0);
        report.started = true;
    }
    return report;
}

}  // namespace mcuflash::plan

#include "plan/flash_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>

#include "core/error.hpp"
#include "core/hexdump.hpp"
#include "storage/uf2_families.hpp"

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
// The flash outside the image is checksummed in pieces of this size (aligned), so that a change
// can be located; SAM-BA's Z computes at most 4 KiB per command anyway.
constexpr uint32_t kOutsideChunk = 4096;
// Application offsets bootloaders use (Klipper's menuconfig offers these on STM32, SAMD and LPC):
// where to look for the application of a bootloader the flash may start with.
constexpr uint32_t kApplicationOffsets[] = {0x800,  0x1000, 0x2000, 0x4000,  0x5000,  0x7000, 0x8000,
                                            0x8800, 0x9000, 0xC000, 0x10000, 0x20000, 0x20200};
constexpr uint32_t kLargestApplicationOffset = std::ranges::max(kApplicationOffsets);

}  // namespace

std::chrono::seconds time_limit(const FlashPlan& plan, uint32_t bytes_per_second) {
    const uint64_t flash = plan.flash_end - plan.flash_base;
    const uint64_t carry = 3 * flash / std::max<uint32_t>(bytes_per_second, 1);
    return std::chrono::seconds(300 + 10 * carry);
}

void check_fits_flash(const image::Image& image, uint32_t flash_base, uint32_t flash_size, const std::string& chip) {
    uint64_t flash_end = uint64_t(flash_base) + flash_size;
    if (image.lowest() < flash_base || image.end() > flash_end)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image spans {}-{} but the {}'s flash is {}-{}; nothing was written",
                                hex_address(image.lowest()), hex_address(static_cast<uint32_t>(image.end() - 1)), chip,
                                hex_address(flash_base), hex_address(static_cast<uint32_t>(flash_end - 1))),
                    "check that the image was built for this chip");
}

namespace {

// In Klipper's menuconfig words: "No bootloader", "8KiB bootloader".
std::string menuconfig_offset(uint32_t app_start, uint32_t flash_base) {
    const uint32_t offset = app_start - flash_base;
    if (offset == 0) return "\"No bootloader\"";
    if (offset % 1024 == 0) return fmt::format("\"{}KiB bootloader\"", offset / 1024);
    return fmt::format("the bootloader offset {}", hex_address(offset));
}

// Whether 8 bytes look like a Cortex-M vector table: an initial stack pointer at the end of some SRAM
// (word aligned, within the first MiB of the SRAM regions these chips have: 0x10000000 LPC176x local
// SRAM and STM32 CCM, 0x20000000 SRAM, 0x24000000 STM32H7 AXI SRAM) and a reset handler in flash with
// the Thumb bit. Random data passes this about once in 10^5 images.
bool looks_like_vector_table(uint32_t stack, uint32_t reset, uint32_t flash_base, uint64_t flash_end) {
    const bool stack_in_sram = (stack >= 0x10000000 && stack <= 0x10100000) ||
                               (stack >= 0x20000000 && stack <= 0x20100000) ||
                               (stack >= 0x24000000 && stack <= 0x24100000);
    const uint32_t handler = reset & ~1u;
    return stack_in_sram && stack % 4 == 0 && (reset & 1) && handler >= flash_base && handler < flash_end;
}

uint32_t le32(std::span<const uint8_t> b) {
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

}  // namespace

void check_link_address(const image::Image& image, const protocol::DeviceInfo& device, const PlanOptions& options) {
    if (options.force_link_address || image.empty()) return;
    const std::string choose = fmt::format("build it with {} in Klipper's menuconfig (or pass --force if you know it is "
                                           "right)",
                                           menuconfig_offset(device.app_start, device.flash_base));
    if (image.entry && (*image.entry < device.app_start || *image.entry >= device.app_end))
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image's entry point {} is outside the application region {}-{}: it was linked "
                                "for another bootloader offset; nothing was written",
                                hex_address(*image.entry), hex_address(device.app_start), hex_address(device.app_end - 1)),
                    choose);
    // A Cortex-M image starts with its vector table: the reset handler must lie in the image itself.
    auto first = image.runs().begin();
    if (first->second.size() < 8) return;
    const uint32_t stack = le32(first->second), reset = le32(std::span(first->second).subspan(4));
    const uint64_t flash_end = uint64_t(device.flash_base) + device.flash_size;
    if (!looks_like_vector_table(stack, reset, device.flash_base, flash_end)) return;
    // Every system exception handler (entries 1 to 15, on every Cortex-M) points into the image itself:
    // a table with one in flash outside it was linked for another start (Klipper's default handler sits
    // just after the table, so an image shifted from where it was linked shows it).
    const auto& table = first->second;
    for (size_t i = 1; i < 16 && (i + 1) * 4 <= table.size(); ++i) {
        const uint32_t vector = le32(std::span(table).subspan(i * 4));
        const uint32_t handler = vector & ~1u;
        if (vector == 0 || !(vector & 1) || handler < device.flash_base || handler >= flash_end) continue;
        if (handler >= image.lowest() && handler < image.end()) continue;
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image's vector table puts its {} at {}, outside the image ({}-{}): it was "
                                "linked for another application start than {}; nothing was written",
                                i == 1 ? "reset handler" : fmt::format("exception handler {}", i), hex_address(handler),
                                hex_address(image.lowest()), hex_address(static_cast<uint32_t>(image.end() - 1)),
                                hex_address(image.lowest())),
                    choose);
    }
    // The code's own pointers into flash (literal pools, tables of handlers, string addresses) point
    // into the image when it sits where it was linked; shifted by a bootloader offset, a few dozen
    // point just outside it, within the shift (at most the largest application offset).
    // Random data (tables, fonts) hits flash anywhere: only a cluster next to the image counts, and
    // only in an image with many pointers of its own. Counted only where flash lies far above small
    // constants (STM32, RP2040).
    if (device.flash_base >= 0x01000000) {
        uint64_t inside = 0, outside = 0, next_to_it = 0;
        for (const auto& [address, bytes] : image.runs())
            for (size_t i = (4 - address % 4) % 4; i + 4 <= bytes.size(); i += 4) {
                const uint32_t word = le32(std::span(bytes).subspan(i));
                if (word < device.flash_base || word >= flash_end) continue;
                if (word >= image.lowest() && word < image.end()) {
                    ++inside;
                    continue;
                }
                ++outside;
                if ((word < image.lowest() && image.lowest() - word <= kLargestApplicationOffset) ||
                    (word >= image.end() && word - image.end() < kLargestApplicationOffset))
                    ++next_to_it;
            }
        if (inside >= 64 && next_to_it >= 8 && next_to_it * 4 >= outside * 3 && outside * 64 >= inside)
            throw Error(ErrorKind::Unsafe,
                        fmt::format("{} of the image's {} pointers into flash point outside it ({}-{}): it was linked "
                                    "for another application start than {}; nothing was written",
                                    outside, inside + outside, hex_address(image.lowest()),
                                    hex_address(static_cast<uint32_t>(image.end() - 1)), hex_address(image.lowest())),
                        choose);
    }
    // A bootloader in flash starts the vector table at its application start, and only that one: an
    // image linked above it (for a larger bootloader) would sit behind stale or erased flash.
    if (device.app_start > device.flash_base && image.lowest() != device.app_start)
        throw Error(ErrorKind::Unsafe,
                    fmt::format("the image's vector table is at {}, but the bootloader starts the application at {}: "
                                "it was linked for another bootloader offset and would not start; nothing was written",
                                hex_address(image.lowest()), hex_address(device.app_start)),
                    choose);
}

// A UF2 file names the family of chips it is for (microsoft/uf2): a file for another family does not
// run on this one. A chip may belong to several (an STM32F407 is STM32F4 and STM32F407).
void check_uf2_family(const image::Image& image, const std::string& chip) {
    if (!image.family_id || chip.empty()) return;
    std::string lower = chip;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::vector<const storage::Uf2Family*> chip_families;
    const storage::Uf2Family* file_family = nullptr;
    for (const auto& family : storage::uf2_families()) {
        if (family.id == *image.family_id) file_family = &family;
        for (const auto& prefix : family.chips)
            if (lower.rfind(prefix, 0) == 0) chip_families.push_back(&family);
    }
    if (chip_families.empty()) return;  // no family known for this chip: nothing to check against
    for (const auto* family : chip_families)
        if (family->id == *image.family_id) return;
    throw Error(ErrorKind::BadInput,
                fmt::format("this UF2 file is for {} chips (family 0x{:08X}), but the device is an {} ({} family 0x{:08X})",
                            file_family ? file_family->name : "other", *image.family_id, chip,
                            chip_families.front()->name, chip_families.front()->id),
                "build Klipper for this board's micro-controller (make menuconfig), or use the firmware built for it");
}

FlashPlan make_plan(const image::Image& image, const protocol::DeviceInfo& device, const protocol::Capabilities& caps,
                    const PlanOptions& options) {
    if (image.empty()) throw Error(ErrorKind::BadInput, "the image holds no data");
    check_uf2_family(image, device.chip);
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
    check_link_address(image, device, options);

    FlashPlan plan;
    plan.image_bytes = image.total_bytes();
    plan.flash_base = device.flash_base;
    plan.flash_end = uint64_t(device.flash_base) + device.flash_size;
    plan.app_start = device.app_start;
    plan.app_end = device.app_end;
    if (device.boot_area_end && !options.write_boot_area)
        plan.boot_area_end = device.boot_area_end;  // what is there decides, before anything is written
    if (caps.whole_image) {
        plan.whole = WholeImage{image.lowest(), image.flatten(image.lowest(), image.end(), 0xFF)};
        return plan;
    }
    const uint32_t unit = std::max<uint32_t>(caps.write_unit, 1);
    // Every write unit the image touches, in address order.
    std::vector<uint32_t> starts;
    for (const auto& [address, bytes] : image.runs()) {
        uint64_t first = address / unit * unit;
        for (uint64_t at = first; at < uint64_t{address} + bytes.size(); at += unit)
            if (starts.empty() || starts.back() != at) starts.push_back(static_cast<uint32_t>(at));
    }
    for (uint32_t at : starts) plan.pages.push_back({at, image.flatten(at, uint64_t{at} + unit, 0xFF)});

    // The erase units the pages touch; one reaching outside the application region would erase
    // part of the bootloader (or what lies beyond the application).
    for (const auto& unit_range : caps.erase_units) {
        bool touched = std::any_of(plan.pages.begin(), plan.pages.end(), [&](const PageWrite& p) {
            return p.address < unit_range.end() && uint64_t{p.address} + p.data.size() > unit_range.address;
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

// The unit of the skip and rewrite decisions: an erase unit (or, where nothing needs a separate
// erase, one page) and the planned pages inside it.
struct Group {
    protocol::EraseUnit range;
    std::vector<const PageWrite*> pages;
};

std::vector<Group> groups_of(const FlashPlan& plan) {
    std::vector<Group> groups;
    if (plan.erases.empty()) {
        for (const auto& p : plan.pages) groups.push_back({{p.address, static_cast<uint32_t>(p.data.size())}, {&p}});
        return groups;
    }
    for (const auto& unit : plan.erases) {
        Group group{unit, {}};
        for (const auto& p : plan.pages)
            if (p.address >= unit.address && p.address < unit.end()) group.pages.push_back(&p);
        groups.push_back(std::move(group));
    }
    return groups;
}

// What flashing leaves in a group: its pages, and erased bytes where no page lands.
std::vector<uint8_t> content_after(const Group& group) {
    std::vector<uint8_t> after(group.range.size, 0xFF);
    for (const auto* p : group.pages)
        std::copy(p->data.begin(), p->data.end(), after.begin() + (p->address - group.range.address));
    return after;
}

uint64_t bytes_of(const std::vector<const PageWrite*>& pages) {
    uint64_t total = 0;
    for (const auto* p : pages) total += p->data.size();
    return total;
}

// Whether the device's checksum of `bytes` at `address` matches; nullopt when it gave none.
std::optional<bool> checksum_matches(protocol::Bootloader& device, const protocol::Capabilities& caps,
                                     uint32_t address, std::span<const uint8_t> bytes) {
    if (!caps.can_checksum || !caps.local_checksum) return std::nullopt;
    auto on_device = device.checksum(address, static_cast<uint32_t>(bytes.size()));
    if (!on_device) return std::nullopt;
    return *on_device == caps.local_checksum(bytes);
}

// A page that read back different is read again before it counts as different: a reply damaged on
// a line without checksums (SAM-BA, STK500v1) looks like wrong flash, while no damage turns wrong
// flash into exactly the right bytes.
bool reads_back_equal(protocol::Bootloader& device, const PageWrite& page) {
    constexpr int kRereads = 2;
    for (int i = 0; i < kRereads; ++i) {
        auto back = device.read(page.address, static_cast<uint32_t>(page.data.size()));
        if (std::equal(page.data.begin(), page.data.end(), back.begin(), back.end())) return true;
    }
    return false;
}

// Whether a comparison with the device can prove that it holds the bytes.
bool can_prove(const protocol::Capabilities& caps) { return caps.can_read || caps.checksum_proves_sameness; }

std::string checksum_words(const protocol::Capabilities& caps) {
    return caps.checksum_name.empty() ? std::string("checksum") : caps.checksum_name;
}

// Contiguous pages taken together, each run up to about `limit` bytes: the unit of one read-back or
// one checksum exchange. `first` and `last` index the pages.
struct PageRun {
    size_t first, last;
};

std::vector<PageRun> runs_of(const std::vector<const PageWrite*>& pages, uint64_t limit) {
    std::vector<PageRun> runs;
    for (size_t i = 0; i < pages.size();) {
        size_t j = i;
        uint64_t end = pages[i]->address + pages[i]->data.size();
        while (j + 1 < pages.size() && pages[j + 1]->address == end && end - pages[i]->address < limit) {
            ++j;
            end += pages[j]->data.size();
        }
        runs.push_back({i, j});
        i = j + 1;
    }
    return runs;
}

// What a run should hold: its pages' bytes, one after another.
std::vector<uint8_t> content_of(const std::vector<const PageWrite*>& pages, const PageRun& run) {
    std::vector<uint8_t> bytes;
    for (size_t k = run.first; k <= run.last; ++k)
        bytes.insert(bytes.end(), pages[k]->data.begin(), pages[k]->data.end());
    return bytes;
}

// The pages (in address order) that the device does not hold, compared in runs of about kVerifyChunk
// (or the device's verify_read_size). A device that can neither read nor prove sameness by its
// checksum has the checksum mark differences and nothing else.
std::vector<uint32_t> find_differences(protocol::Bootloader& device, const protocol::Capabilities& caps,
                                       const std::vector<const PageWrite*>& pages, const core::Progress& progress,
                                       const std::string& message = {}) {
    std::vector<uint32_t> bad;
    const uint64_t total = bytes_of(pages);
    uint64_t done = 0;
    progress.started(Stage::Verify, total, message);
    for (const auto& run : runs_of(pages, caps.verify_read_size ? caps.verify_read_size : kVerifyChunk)) {
        const uint32_t from = pages[run.first]->address;
        const auto expected = content_of(pages, run);
        std::optional<bool> same;
        if (caps.checksum_proves_sameness || !caps.can_read) same = checksum_matches(device, caps, from, expected);
        if (same == true && caps.checksum_proves_sameness) {
            // proved: nothing to read
        } else if (caps.can_read) {
            auto back = device.read(from, static_cast<uint32_t>(expected.size()));
            size_t offset = 0;
            for (size_t k = run.first; k <= run.last; ++k) {
                if (!std::equal(pages[k]->data.begin(), pages[k]->data.end(), back.begin() + static_cast<long>(offset)) &&
                    !reads_back_equal(device, *pages[k]))
                    bad.push_back(pages[k]->address);
                offset += pages[k]->data.size();
            }
        } else if (same != true) {
            for (size_t k = run.first; k <= run.last; ++k) bad.push_back(pages[k]->address);
        }
        done += expected.size();
        progress.advanced(Stage::Verify, done, total);
    }
    progress.finished(Stage::Verify, done, bad.empty() ? "" : fmt::format("{} pages differ", bad.size()));
    return bad;
}

std::vector<const PageWrite*> pointers(const std::vector<PageWrite>& pages) {
    std::vector<const PageWrite*> out;
    for (const auto& p : pages) out.push_back(&p);
    return out;
}

// The flash outside the plan's groups (the bootloader's region included), by the device's checksum,
// so that a command damaged on the line and executed somewhere else is found.
struct OutsideSnapshot {
    struct Region {
        protocol::EraseUnit range;
        uint32_t checksum = 0;
    };
    std::vector<Region> regions;
};

std::optional<OutsideSnapshot> snapshot_outside(protocol::Bootloader& device, const FlashPlan& plan,
                                                const std::vector<Group>& groups, const core::Progress& progress,
                                                const char* message) {
    std::vector<protocol::EraseUnit> ranges;
    uint64_t at = plan.flash_base;
    for (const auto& g : groups) {  // in address order
        if (g.range.address > at) ranges.push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(g.range.address - at)});
        at = std::max<uint64_t>(at, g.range.end());
    }
    if (plan.flash_end > at) ranges.push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(plan.flash_end - at)});
    std::vector<protocol::EraseUnit> pieces;
    for (const auto& r : ranges)
        for (uint64_t from = r.address; from < r.end();) {
            uint64_t to = std::min<uint64_t>(r.end(), (from / kOutsideChunk + 1) * kOutsideChunk);
            pieces.push_back({static_cast<uint32_t>(from), static_cast<uint32_t>(to - from)});
            from = to;
        }
    ranges = std::move(pieces);
    uint64_t total = 0, done = 0;
    for (const auto& r : ranges) total += r.size;
    progress.started(Stage::Verify, total, message);
    OutsideSnapshot snapshot;
    for (const auto& r : ranges) {
        auto sum = device.checksum(r.address, r.size);
        if (!sum) return std::nullopt;
        snapshot.regions.push_back({r, *sum});
        done += r.size;
        progress.advanced(Stage::Verify, done, total);
    }
    progress.finished(Stage::Verify, done);
    return snapshot;
}

void check_outside_unchanged(protocol::Bootloader& device, const FlashPlan& plan, const std::vector<Group>& groups,
                             const OutsideSnapshot& before, const core::Progress& progress, FlashReport& report) {
    auto after = snapshot_outside(device, plan, groups, progress, "checking that nothing outside the image changed");
    if (!after || after->regions.size() != before.regions.size()) return;
    std::vector<protocol::EraseUnit> changed;  // adjacent pieces merged
    bool bootloader_changed = false;
    for (size_t i = 0; i < before.regions.size(); ++i) {
        const auto& r = before.regions[i].range;
        if (after->regions[i].checksum == before.regions[i].checksum) continue;
        if (!changed.empty() && changed.back().end() == r.address) changed.back().size += r.size;
        else changed.push_back(r);
        if (r.address < plan.app_start || r.end() > plan.app_end) bootloader_changed = true;
    }
    if (changed.empty()) {
        report.outside_checked = true;
        return;
    }
    std::string where;
    for (const auto& c : changed)
        where += fmt::format("{}{}-{}", where.empty() ? "" : ", ", hex_address(c.address),
                             hex_address(static_cast<uint32_t>(c.end() - 1)));
    throw Error(ErrorKind::VerifyMismatch,
                fmt::format("flash outside the image changed while flashing ({} no longer hold what they held "
                            "before): a command damaged on the line was carried out at the wrong address{}",
                            where,
                            bootloader_changed ? "; this includes the bootloader's region, so the board may no "
                                                 "longer start its bootloader"
                                               : ""),
                bootloader_changed
                    ? "do not reset or unplug the board: flash again now while the bootloader still runs, over a "
                      "shorter cable or another USB port; if it no longer answers, the bootloader must be installed "
                      "again (mcuflash bootloader install, or through SWD)"
                    : "the image itself is in place; flash again over a shorter cable or another USB port to be sure "
                      "nothing else was damaged");
}

class Executor {
public:
    Executor(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
             const core::Progress& progress, FlashReport& report)
        : device_(device), plan_(plan), options_(options), progress_(progress), report_(report),
          caps_(device.capabilities()), groups_(groups_of(plan)) {}

    void run() {
        if (plan_.boot_area_end) refuse_replacing_a_bootloader();
        if (plan_.whole) return run_whole_image();
        std::optional<OutsideSnapshot> outside;
        if (options_.check_outside && caps_.can_checksum)
            outside = snapshot_outside(device_, plan_, groups_, progress_,
                                       fmt::format("{} of the flash outside the image", checksum_words(caps_)).c_str());
        std::vector<const Group*> todo = options_.skip_unchanged ? changed_groups() : all_groups();
        auto t_erase = std::chrono::steady_clock::now();
        erase(todo);
        report_.seconds_erase = seconds_since(t_erase);
        auto t_write = std::chrono::steady_clock::now();
        auto pages = pages_of(todo);
        write(pages);
        report_.pages_written = pages.size();
        report_.seconds_write = seconds_since(t_write);
        const uint64_t failures_before_verify = device_.failed_exchanges();
        if (options_.verify) {
            auto t_verify = std::chrono::steady_clock::now();
            if (todo.empty() && unchanged_proved_) {
                // Every unit was just compared as strongly as a verify, and nothing was written since.
                report_.verified = true;
                report_.verify_method = method();
            } else {
                verify_and_repair();
            }
            report_.seconds_verify = seconds_since(t_verify);
        }
        const uint64_t failures_before_outside = device_.failed_exchanges();
        if (outside) check_outside_unchanged(device_, plan_, groups_, *outside, progress_, report_);
        if (report_.verified) check_again_after_failed_exchanges(failures_before_verify, failures_before_outside, outside);
        if (options_.start_application) start();
    }

private:
    // The lowest address the plan erases or writes.
    uint32_t lowest_touched() const {
        if (plan_.whole) return plan_.whole->address;
        uint32_t lowest = plan_.pages.empty() ? plan_.app_start : plan_.pages.front().address;
        if (!plan_.erases.empty()) lowest = std::min(lowest, plan_.erases.front().address);
        return lowest;
    }

    // The image goes where the chip boots (a ROM bootloader chip: no flag needed for that alone).
    // Refused when the flash starts with a bootloader now that the image would reach: a vector table
    // at the start, and another at an application offset above it linked for there (stm32duino, HID,
    // Katapult, a vendor one), which is above where the image starts.
    void refuse_replacing_a_bootloader() {
        const uint32_t base = plan_.flash_base;
        const uint32_t lowest = lowest_touched();
        const bool where_the_chip_boots = lowest < *plan_.boot_area_end;
        if (!where_the_chip_boots && uint64_t{lowest} >= uint64_t{base} + kLargestApplicationOffset) return;
        auto vector_at = [&](uint32_t at) -> std::optional<uint32_t> {
            auto b = device_.read(at, 8);
            const uint32_t stack = le32(b), reset = le32(std::span(b).subspan(4));
            if (!looks_like_vector_table(stack, reset, plan_.flash_base, plan_.flash_end)) return std::nullopt;
            return reset & ~1u;
        };
        if (!caps_.can_read) {
            if (!where_the_chip_boots) return;  // cannot look; the start of flash is not written
            throw Error(ErrorKind::Unsafe,
                        fmt::format("the image starts where the chip boots ({}), and this bootloader cannot read the flash "
                                    "to tell whether another bootloader is installed there; nothing was written",
                                    hex_address(base)),
                        "add --write-boot-area to write there anyway");
        }
        if (!vector_at(base)) return;  // erased, or no Cortex-M program: nothing to replace
        for (uint32_t offset : kApplicationOffsets) {
            if (base + uint64_t(offset) + 8 > plan_.flash_end) break;
            auto handler = vector_at(base + offset);
            if (!handler || *handler < base + offset || *handler >= plan_.flash_end) continue;
            if (lowest >= base + offset) return;  // the image goes above the bootloader, as it should
            const bool erases_below_image = !plan_.pages.empty() && lowest < plan_.pages.front().address;
            throw Error(ErrorKind::Unsafe,
                        fmt::format("the flash starts with a bootloader ({}-{}, with its application at {}): {} and "
                                    "would {} it; nothing was written",
                                    hex_address(base), hex_address(base + offset - 1), hex_address(base + offset),
                                    erases_below_image ? fmt::format("the image needs the flash erased from {}",
                                                                     hex_address(lowest))
                                                       : fmt::format("the image starts at {}", hex_address(lowest)),
                                    where_the_chip_boots ? "replace" : "overwrite part of"),
                        fmt::format("to keep that bootloader, build Klipper with the {}KiB bootloader offset and flash "
                                    "above it; to replace it (installing another bootloader, or running with none), "
                                    "add --write-boot-area",
                                    offset / 1024));
        }
    }

    // A device that takes the image as one file: hand it over, read it back where the device can.
    void run_whole_image() {
        const auto& whole = *plan_.whole;
        auto t_write = std::chrono::steady_clock::now();
        progress_.started(Stage::Write, whole.bytes.size());
        struct ProgressHook {  // the device must not keep a callback into this plan once it returns
            protocol::Bootloader& device;
            ~ProgressHook() { device.set_write_progress({}); }
        } hook{device_};
        device_.set_write_progress([&](size_t done) { progress_.advanced(Stage::Write, done, whole.bytes.size()); });
        device_.write_image(whole.address, whole.bytes);
        report_.bytes_written = whole.bytes.size();
        progress_.finished(Stage::Write, whole.bytes.size());
        report_.seconds_write = seconds_since(t_write);
        if (options_.verify) {
            auto t_verify = std::chrono::steady_clock::now();
            if (!caps_.can_read) {
                report_.not_verified = "this device takes the image as a file and cannot give it back: written, not verified";
            } else {
                const PageWrite all{whole.address, whole.bytes};
                if (!find_differences(device_, caps_, {&all}, progress_).empty())
                    throw Error(ErrorKind::VerifyMismatch,
                                fmt::format("the image read back from the device differs from what was written at {}",
                                            hex_address(whole.address)),
                                "the card or drive may be failing: try another one");
                report_.verified = true;
                report_.verify_method = method();
            }
            report_.seconds_verify = seconds_since(t_verify);
        }
        if (options_.start_application) start();
    }

    void start() {
        progress_.started(Stage::Start, 0);
        device_.start_application();
        progress_.finished(Stage::Start, 0);
        report_.started = true;
    }

    // An exchange that failed during the verify or after it may have been a damaged command carried
    // out as another (SAM-BA's X erases from its address to the end of the flash, BOOTPROT keeping
    // only the bootloader), after the pages it changed were read back right. So the image is checked
    // again, by the device's checksum where it has one (a few exchanges, which a line that damages
    // some of them still lets through), else by reading it back, until a round in which no exchange
    // failed; a checksum that differs means a full verify again, and the check outside the image
    // again. Flash outside the image is not checked in every round (hundreds of exchanges): where
    // exchanges failed after its last check, the report no longer says it was unchanged.
    void check_again_after_failed_exchanges(uint64_t failures_before, uint64_t failures_before_outside,
                                            const std::optional<OutsideSnapshot>& outside) {
        constexpr int kRounds = 4;
        for (int round = 0; device_.failed_exchanges() != failures_before; ++round) {
            const uint64_t failed = device_.failed_exchanges() - failures_before;
            if (round >= kRounds)
                throw Error(ErrorKind::Io,
                            fmt::format("the image was verified, but exchanges kept failing in the {} checks after "
                                        "it ({} in the last): a command damaged on the line could have changed the "
                                        "flash since, so it is not reported as verified",
                                        kRounds, failed),
                            "the line to the board damages too much: flash again over a shorter cable or another "
                            "USB port, or with a lower --baud");
            failures_before = device_.failed_exchanges();
            progress_.note(Stage::Verify,
                           fmt::format("{} exchange(s) failed during the verify: checking the image again, since a "
                                       "damaged command could have changed the flash after it was read back",
                                       failed));
            const bool same = caps_.can_checksum && caps_.local_checksum
                                  ? image_checksums_match()
                                  : find_differences(device_, caps_, pointers(plan_.pages), progress_).empty();
            if (same) continue;
            verify_and_repair();
            failures_before_outside = device_.failed_exchanges();
            if (outside) check_outside_unchanged(device_, plan_, groups_, *outside, progress_, report_);
        }
        if (device_.failed_exchanges() != failures_before_outside) report_.outside_checked = false;
    }

    // Whether the device's checksum of each run of the image's pages (up to 64 KiB) matches.
    bool image_checksums_match() {
        const auto all = pointers(plan_.pages);
        for (const auto& run : runs_of(all, 64 * 1024)) {
            const auto expected = content_of(all, run);
            const auto sum = device_.checksum(all[run.first]->address, static_cast<uint32_t>(expected.size()));
            if (!sum || *sum != caps_.local_checksum(expected)) return false;
        }
        return true;
    }

    std::string method() const {
        return caps_.can_read && !caps_.checksum_proves_sameness ? "read back" : "device " + checksum_words(caps_);
    }

    std::vector<const Group*> all_groups() const {
        std::vector<const Group*> out;
        for (const auto& g : groups_) out.push_back(&g);
        return out;
    }

    static std::vector<const PageWrite*> pages_of(const std::vector<const Group*>& groups) {
        std::vector<const PageWrite*> out;
        for (const auto* g : groups) out.insert(out.end(), g->pages.begin(), g->pages.end());
        return out;
    }

    // The groups that do not hold what flashing would leave there. The device's checksum finds
    // differences quickly; where it matches, only a proof leaves the unit alone: a checksum that
    // proves sameness, or reading the unit's pages back. A device that can do neither rewrites all.
    std::vector<const Group*> changed_groups() {
        unchanged_proved_ = false;
        if (!caps_.can_checksum || !caps_.local_checksum || !can_prove(caps_)) return all_groups();
        std::vector<const Group*> todo;
        progress_.started(Stage::Verify, groups_.size(), "comparing with what is on the device");
        size_t compared = 0;
        for (const auto& group : groups_) {
            bool unchanged = checksum_matches(device_, caps_, group.range.address, content_after(group)) == true;
            if (unchanged && !caps_.checksum_proves_sameness)
                unchanged = find_differences(device_, caps_, group.pages, core::Progress()).empty();
            if (unchanged) report_.bytes_unchanged += group.range.size;
            else todo.push_back(&group);
            progress_.advanced(Stage::Verify, ++compared, groups_.size());
        }
        progress_.finished(Stage::Verify, compared,
                           fmt::format("{} bytes already hold the image and are left alone", report_.bytes_unchanged));
        unchanged_proved_ = true;
        return todo;
    }

    void erase(const std::vector<const Group*>& groups) {
        if (plan_.erases.empty() || groups.empty()) return;
        uint64_t total = 0, done = 0;
        for (const auto* g : groups) total += g->range.size;
        progress_.started(Stage::Erase, total);
        // Adjacent units go in one call: the device can erase them in one command.
        for (size_t i = 0; i < groups.size();) {
            size_t j = i;
            while (j + 1 < groups.size() && groups[j + 1]->range.address == groups[j]->range.end()) ++j;
            const auto length = static_cast<uint32_t>(groups[j]->range.end() - groups[i]->range.address);
            device_.erase(groups[i]->range.address, length);
            done += length;
            report_.bytes_erased += length;
            progress_.advanced(Stage::Erase, done, total);
            i = j + 1;
        }
        progress_.finished(Stage::Erase, done);
    }

    void write(const std::vector<const PageWrite*>& pages) {
        if (pages.empty()) return;
        // Pages come in address order, rewrites too: devices that need it (writes_in_address_order)
        // then never step back within one call.
        if (!std::is_sorted(pages.begin(), pages.end(),
                            [](const PageWrite* a, const PageWrite* b) { return a->address < b->address; }))
            throw std::logic_error("the plan's pages are not in address order");
        const uint64_t total = bytes_of(pages);
        std::vector<protocol::EraseUnit> ranges;
        for (const auto* p : pages) {
            if (!ranges.empty() && ranges.back().end() == p->address)
                ranges.back().size += static_cast<uint32_t>(p->data.size());
            else
                ranges.push_back({p->address, static_cast<uint32_t>(p->data.size())});
        }
        device_.will_write(ranges);
        uint64_t done = 0;
        progress_.started(Stage::Write, total);
        for (const auto* p : pages) {
            device_.write(p->address, p->data);
            done += p->data.size();
            report_.bytes_written += p->data.size();
            progress_.advanced(Stage::Write, done, total);
        }
        progress_.finished(Stage::Write, done);
    }

    // Compares every page of the image; rewrites the units holding pages that differ, then compares
    // every page again: a write sent to the wrong address can land anywhere in the image.
    void verify_and_repair() {
        const auto all = pointers(plan_.pages);
        const bool proves = can_prove(caps_);
        if (!proves && !caps_.can_checksum) {
            report_.not_verified =
                "this bootloader can neither read its flash back nor compute a checksum: written, not verified";
            return;
        }
        for (int round = 0;; ++round) {
            auto bad = find_differences(device_, caps_, all, progress_);
            if (bad.empty()) break;
            if (round >= options_.max_rewrites)
                throw Error(ErrorKind::VerifyMismatch,
                            fmt::format("verify failed: {} page(s) still differ after {} rewrites, first at {}",
                                        bad.size(), options_.max_rewrites, hex_address(bad.front())),
                            "the flash may be worn, or the link is unreliable: try a lower --baud or another cable")
                    .at_address(bad.front());
            if (plan_.erases.empty() && !caps_.erases_on_write)
                throw Error(ErrorKind::VerifyMismatch,
                            fmt::format("verify failed: {} page(s) differ, first at {}, and this device cannot write a "
                                        "page twice without an erase it does not have",
                                        bad.size(), hex_address(bad.front())))
                    .at_address(bad.front());
            progress_.note(Stage::Verify, fmt::format("{} page(s) differ, first at {}: writing them again", bad.size(),
                                                      hex_address(bad.front())));
            std::vector<const Group*> again;
            for (const auto& g : groups_)
                if (std::any_of(g.pages.begin(), g.pages.end(), [&](const PageWrite* p) {
                        return std::find(bad.begin(), bad.end(), p->address) != bad.end();
                    }))
                    again.push_back(&g);
            if (caps_.writes_in_address_order) {
                // A step back restarts the device's sequence from its start: write everything again
                // from the first unit up to the last one that differs, in order.
                const Group* last = again.back();
                again.clear();
                for (const auto& g : groups_) {
                    again.push_back(&g);
                    if (&g == last) break;
                }
            }
            erase(again);
            auto pages = pages_of(again);
            write(pages);
            report_.pages_rewritten += pages.size();
        }
        if (proves) {
            report_.verified = true;
            report_.verify_method = method();
        } else {
            report_.not_verified = fmt::format(
                "the device's {} matches the image, but that finds differences without proving sameness, and this "
                "bootloader cannot read its flash back: not verified",
                checksum_words(caps_));
        }
    }

    protocol::Bootloader& device_;
    const FlashPlan& plan_;
    const PlanOptions& options_;
    const core::Progress& progress_;
    FlashReport& report_;
    const protocol::Capabilities caps_;
    const std::vector<Group> groups_;
    bool unchanged_proved_ = false;  // changed_groups() compared every unit as strongly as a verify
};

}  // namespace

std::vector<uint32_t> verify_pages(protocol::Bootloader& device, const std::vector<PageWrite>& pages,
                                   const core::Progress& progress) {
    const auto caps = device.capabilities();
    if (!can_prove(caps))
        throw Error(ErrorKind::Usage,
                    caps.can_checksum
                        ? fmt::format("this bootloader cannot read its flash back, and its {} cannot prove that the "
                                      "device holds the image: mcuflash cannot verify it",
                                      checksum_words(caps))
                        : "this bootloader cannot read its flash back: mcuflash cannot verify it");
    return find_differences(device, caps, pointers(pages), progress);
}

void execute(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
             const core::Progress& progress, FlashReport& report) {
    report = {};
    Executor(device, plan, options, progress, report).run();
}

FlashReport execute(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
                    const core::Progress& progress) {
    FlashReport report;
    execute(device, plan, options, progress, report);
    return report;
}

}  // namespace mcuflash::plan

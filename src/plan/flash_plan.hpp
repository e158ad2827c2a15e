#pragma once
// FlashPlan: image + device facts -> the pages to write, after the safety checks.
// Executing a plan writes, verifies (rewriting pages that fail, a bounded number of times)
// and starts the application, reporting progress as events.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.hpp"
#include "image/image.hpp"
#include "protocol/bootloader.hpp"

namespace mcuflash::plan {

struct PlanOptions {
    bool verify = true;
    bool start_application = true;
    bool force_link_address = false;  // accept an entry point outside the application region
    bool write_boot_area = false;     // allow replacing a flash bootloader on a ROM-bootloader chip
    bool skip_unchanged = true;       // where the device can checksum: leave units that already match
    bool check_outside = true;        // where the device can checksum: prove nothing outside the image changed
    int max_rewrites = 2;             // rounds of rewriting pages that failed verification
};

struct PageWrite {
    uint32_t address = 0;
    std::vector<uint8_t> data;  // exactly one write unit, gaps filled with 0xFF
};

// A device that takes the image as one file: its bytes from the lowest address, gaps as 0xFF.
struct WholeImage {
    uint32_t address = 0;
    std::vector<uint8_t> bytes;
};

struct FlashPlan {
    std::vector<protocol::EraseUnit> erases;  // erased before writing, in address order
    std::vector<PageWrite> pages;
    std::optional<WholeImage> whole;  // whole-image devices: instead of erases and pages
    uint64_t image_bytes = 0;
    // The device's flash and where its application may go (the rest is the bootloader's).
    uint32_t flash_base = 0;
    uint64_t flash_end = 0;
    uint32_t app_start = 0, app_end = 0;
    // A ROM-bootloader chip's first erase unit (where it boots), without --write-boot-area: execute()
    // then looks at what the flash starts with before writing anything, and refuses an image that
    // reaches a flash bootloader installed there.
    std::optional<uint32_t> boot_area_end;
    uint64_t bytes_to_write() const {
        if (whole) return whole->bytes.size();
        return pages.size() * (pages.empty() ? 0 : pages.front().data.size());
    }
};

// Refuses (core::Error(Unsafe), naming both addresses and the menuconfig choice) an image linked for
// another application start: an ELF/HEX entry point outside the application region, or a Cortex-M
// vector table whose reset handler lies outside the image. PlanOptions::force_link_address skips it.
void check_link_address(const image::Image& image, const protocol::DeviceInfo& device, const PlanOptions& options);

// Throws core::Error(Unsafe) naming the addresses when the image reaches outside the application region,
// or would need an erase unit that reaches outside it erased; checks the link address.
FlashPlan make_plan(const image::Image& image, const protocol::DeviceInfo& device,
                    const protocol::Capabilities& caps, const PlanOptions& options);

// A bound on how long flashing may take, far above what it should: it ends an operation that would
// otherwise go on for ever, not a slow one. Five minutes plus ten times what the link needs to carry
// the whole flash three times (writing, verifying, and the rewinds some bootloaders need).
std::chrono::seconds time_limit(const FlashPlan& plan, uint32_t bytes_per_second);

// Checks that need no device: an image past the end of the chip's flash (known from --chip).
void check_fits_flash(const image::Image& image, uint32_t flash_base, uint32_t flash_size, const std::string& chip);
// Throws core::Error(BadInput) when a UF2 image names a chip family `chip` is not in.
void check_uf2_family(const image::Image& image, const std::string& chip);

struct FlashReport {
    uint64_t bytes_unchanged = 0;  // skipped: they already held the image (checked as strongly as a verify)
    uint64_t bytes_erased = 0;
    uint64_t bytes_written = 0;
    size_t pages_written = 0;
    size_t pages_rewritten = 0;  // pages written again after a failed verify
    bool verified = false;       // every page of the image compared after the last write
    std::string verify_method;   // how: "read back", "device SHA-256"
    std::string not_verified;    // why not, in words, when !verified
    // The flash outside the image (the bootloader included) was compared, by the device's checksum,
    // before and after: nothing there changed.
    bool outside_checked = false;
    bool started = false;
    double seconds_erase = 0, seconds_write = 0, seconds_verify = 0;
};

// Compares device flash with `pages` (by reading back, or by the device's checksum only where that
// proves sameness); returns the addresses of the pages that differ. Throws Usage when the device
// can neither read nor prove.
std::vector<uint32_t> verify_pages(protocol::Bootloader& device, const std::vector<PageWrite>& pages,
                                   const core::Progress& progress);

// Skips erase units that already hold the image, erases, writes, verifies every page of the image
// (rewriting what differs, then verifying everything again, a bounded number of rounds), checks that
// nothing outside the image changed where the device can tell, and starts the application.
// `report` holds what was done even when this throws.
void execute(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
             const core::Progress& progress, FlashReport& report);
FlashReport execute(protocol::Bootloader& device, const FlashPlan& plan, const PlanOptions& options,
                    const core::Progress& progress);

}  // namespace mcuflash::plan

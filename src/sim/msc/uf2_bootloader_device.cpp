#include "sim/msc/uf2_bootloader_device.hpp"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "storage/fat.hpp"

namespace mcuflash::sim::msc {

namespace {

using namespace std::chrono_literals;

// The UF2 format (microsoft/uf2 README), the device side's own constants.
constexpr uint32_t kMagicStart0 = 0x0A324655, kMagicStart1 = 0x9E5D5157, kMagicEnd = 0x0AB16F30;
constexpr uint32_t kFlagNotMainFlash = 0x00000001, kFlagFamilyId = 0x00002000;
constexpr size_t kBlock = 512, kDataAt = 32, kPayload = 256;

uint32_t le32(std::span<const uint8_t> b, size_t at) {
    return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}
void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

std::string redirect_page(const std::string& url) {
    return fmt::format("<html><head><meta http-equiv=\"refresh\" content=\"0;URL='{0}'\"/></head>"
                       "<body>Redirecting to <a href='{0}'>{0}</a></body></html>\n",
                       url);
}

}  // namespace

const std::vector<Uf2Personality>& uf2_personalities() {
    static const std::vector<Uf2Personality> all = [] {
        Uf2Personality rp2040;
        rp2040.chip = "rp2040";
        rp2040.identity = {0x2E8A, 0x0003, 0x0100, "Raspberry Pi", "RP2 Boot", "E0C912D24340",
                           "RPI", "RP2", "1", false};
        rp2040.label = "RPI-RP2";
        rp2040.info_text = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n";
        rp2040.index_html = redirect_page("https://raspberrypi.com/device/RP2?version=E0C912D24340");
        rp2040.disk_sectors = 128ull * 1024 * 1024 / 512;
        rp2040.partition_table = true;
        rp2040.cluster_bytes = 4096;
        rp2040.family_id = 0xE48BFF56;
        rp2040.family_required = true;
        rp2040.app_start = 0x10000000;
        rp2040.current_uf2 = false;
        rp2040.reset_delay = 1000ms;
        rp2040.erase_unit = 4096;
        rp2040.write_unit = 256;
        rp2040.timing = FlashTiming{45ms, {}, 800us};  // W25Q16JV typicals, as the picoboot simulator
        Uf2Personality samd51;
        samd51.chip = "samd51j19a";
        samd51.identity = {0x239A, 0x0022, 0x4201, "Adafruit Industries", "Feather M4 Express", "7A9E1B3F50524B4E",
                           "Adafruit", "UF2 Bootloader", "1.0", true};
        samd51.label = "FEATHERBOOT";
        samd51.info_text =
            "UF2 Bootloader v3.14.0 SFHWRO\nModel: Adafruit Feather M4 Express\nBoard-ID: SAMD51J19A-Feather-v0\n";
        samd51.index_html = redirect_page("https://www.adafruit.com/product/3857");
        samd51.disk_sectors = 8192;
        samd51.partition_table = false;
        samd51.cluster_bytes = 512;
        samd51.family_id = 0x55114460;
        samd51.family_required = false;
        samd51.app_start = 0x4000;
        samd51.current_uf2 = true;
        samd51.reset_delay = 30ms;
        samd51.erase_unit = 8192;
        samd51.write_unit = 16;
        samd51.timing = FlashTiming{2ms, {}, 30us};  // SAMD51 datasheet: block erase, quad-word write
        return std::vector<Uf2Personality>{rp2040, samd51};
    }();
    return all;
}

Uf2BootloaderDevice::Uf2BootloaderDevice(const targets::Chip& chip, Uf2Personality personality,
                                         const DeviceOptions& options)
    : BulkOnlyDevice(personality.identity),
      chip_(chip),
      personality_(std::move(personality)),
      flash_(FlashLayout::uniform(chip.flash_base, chip.flash_size, personality_.erase_unit, personality_.write_unit),
             options.timing ? personality_.timing : FlashTiming{}),
      writer_(flash_),
      timing_(options.timing),
      disk_(personality_.disk_sectors, personality_.label + " drive") {
    if (personality_.app_start > chip.flash_base) {
        flash_.protect({chip.flash_base, personality_.app_start - chip.flash_base, "uf2 bootloader"});
        flash_.fill_protected_with_placeholder();
    }
    if (options.flash_file) flash_.attach_file(*options.flash_file);

    uint64_t first = 0;
    storage::BlockDevice* volume = &disk_;
    if (personality_.partition_table) {
        // One FAT16 partition (type 0x0E, LBA) from sector 1, as the RP2040 ROM's MBR has it.
        std::vector<uint8_t> mbr(512, 0);
        mbr[446 + 4] = 0x0E;
        put32(&mbr[446 + 8], 1);
        put32(&mbr[446 + 12], uint32_t(disk_.sector_count() - 1));
        mbr[510] = 0x55, mbr[511] = 0xAA;
        disk_.write(0, mbr);
        first = 1;
        volume_ = std::make_unique<storage::PartitionDevice>(disk_, 1, disk_.sector_count() - 1, 1);
        volume = volume_.get();
    }
    storage::FatFormat format;
    format.label = personality_.label;
    format.cluster_bytes = personality_.cluster_bytes;
    format.media = personality_.identity.removable ? 0xF0 : 0xF8;
    format.hidden_sectors = uint32_t(first);
    storage::format_fat(*volume, format);
    storage::FatVolume fat(*volume);
    auto text = [](const std::string& s) { return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
    fat.write_file("INFO_UF2.TXT", text(personality_.info_text));
    fat.write_file("INDEX.HTM", text(personality_.index_html));
    if (personality_.current_uf2) {
        // Its sectors are made from the flash when read; the FAT only gives the file its place.
        const std::vector<uint8_t> placeholder(uint64_t(chip.flash_size) / kPayload * kBlock, 0);
        fat.write_file("CURRENT.UF2", placeholder);
        uint64_t index = 0;
        for (uint64_t s : fat.file_sectors("CURRENT.UF2")) current_uf2_sectors_[first + s] = index++;
    }
}

std::string Uf2BootloaderDevice::describe() const {
    return fmt::format("UF2 bootloader {} on a {}", personality_.label, chip_.name);
}

void Uf2BootloaderDevice::current_uf2_block(uint64_t index, std::span<uint8_t> out) const {
    std::memset(out.data(), 0, kBlock);
    const uint32_t address = chip_.flash_base + uint32_t(index * kPayload);
    put32(&out[0], kMagicStart0);
    put32(&out[4], kMagicStart1);
    put32(&out[8], kFlagFamilyId);
    put32(&out[12], address);
    put32(&out[16], kPayload);
    put32(&out[20], uint32_t(index));
    put32(&out[24], chip_.flash_size / kPayload);
    put32(&out[28], personality_.family_id);
    flash_.read(address, out.subspan(kDataAt, kPayload));
    put32(&out[508], kMagicEnd);
}

void Uf2BootloaderDevice::medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point) {
    disk_.read(lba, out);
    for (uint64_t i = 0; i < out.size() / kBlock; ++i)
        if (auto it = current_uf2_sectors_.find(lba + i); it != current_uf2_sectors_.end())
            current_uf2_block(it->second, out.subspan(i * kBlock, kBlock));
}

void Uf2BootloaderDevice::take_block(std::span<const uint8_t> b, Clock::duration& busy, Clock::time_point now) {
    if (le32(b, 0) != kMagicStart0 || le32(b, 4) != kMagicStart1 || le32(b, 508) != kMagicEnd) return;  // not UF2
    const uint32_t flags = le32(b, 8), address = le32(b, 12), payload = le32(b, 16);
    const uint32_t block_no = le32(b, 20), num_blocks = le32(b, 24), family = le32(b, 28);
    const bool has_family = flags & kFlagFamilyId;
    const bool mine = has_family ? family == personality_.family_id : !personality_.family_required;
    if (!mine) {
        ++uf2_counters_.foreign;
        trace(fmt::format("UF2 block {} for family 0x{:08X}{}: ignored", block_no, family, has_family ? "" : " (none)"));
        return;
    }
    const bool in_flash = address % kPayload == 0 && flash_.contains(address, kPayload);
    const bool writable = !(flags & kFlagNotMainFlash) && payload == kPayload && in_flash &&
                          address >= personality_.app_start;
    if (personality_.family_required && !writable) {
        // The RP2040 ROM ignores such a block altogether (SRAM blocks: running from RAM is not simulated).
        ++uf2_counters_.refused;
        trace(fmt::format("UF2 block {} at 0x{:08X} ({} bytes, flags 0x{:X}): ignored", block_no, address, payload, flags));
        return;
    }
    if (num_blocks == 0 || block_no >= num_blocks) return;
    if (num_blocks != num_blocks_) {
        num_blocks_ = num_blocks;
        seen_blocks_.clear();
        writer_.restart();
        trace(fmt::format("a new UF2 file: {} blocks", num_blocks));
    }
    if (seen_blocks_.count(block_no)) {
        ++uf2_counters_.duplicates;
        return;
    }
    if (!writable) {
        ++uf2_counters_.refused;  // counted toward the file, never written (uf2-samdx1)
        trace(fmt::format("UF2 block {} at 0x{:08X}: inside the bootloader or not flash: not written", block_no, address));
    } else if (!writer_.write(address, b.subspan(kDataAt, kPayload), busy)) {
        ++uf2_counters_.refused;
        trace(fmt::format("UF2 block {} at 0x{:08X}: the flash refused it", block_no, address));
    } else {
        ++uf2_counters_.programmed;
    }
    seen_blocks_.insert(block_no);
    ++uf2_counters_.counted;
    if (seen_blocks_.size() == num_blocks_ && !leave_at_) {
        leave_at_ = now + (timing_ ? busy : Clock::duration{}) + personality_.reset_delay;
        trace(fmt::format("all {} UF2 blocks arrived: resetting into the application", num_blocks_));
    }
}

MediumWrite Uf2BootloaderDevice::medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) {
    disk_.write(lba, data);
    Clock::duration busy{};
    for (size_t at = 0; at + kBlock <= data.size(); at += kBlock) take_block(data.subspan(at, kBlock), busy, now);
    return {true, now + (timing_ ? busy : Clock::duration{})};
}

void Uf2BootloaderDevice::tick(Clock::time_point now) {
    if (attached_ && leave_at_ && now >= *leave_at_) {
        attached_ = false;
        trace(describe() + ": reset: the drive leaves the bus");
    }
}

std::vector<std::string> uf2_bootloader_chips() {
    std::vector<std::string> out;
    for (const auto& p : uf2_personalities()) out.push_back(p.chip);
    return out;
}

std::unique_ptr<usb::UsbDeviceModel> make_uf2_bootloader(const std::string& chip_name, const DeviceOptions& options) {
    const std::string wanted = chip_name.empty() ? "rp2040" : chip_name;
    const targets::Chip* chip = targets::Knowledge::builtin().find_chip(wanted);
    for (const auto& p : uf2_personalities())
        if (chip && p.chip == chip->name) {
            auto device = std::make_unique<Uf2BootloaderDevice>(*chip, p, options);
            if (options.trace) device->set_trace(options.trace);
            return device;
        }
    throw core::Error(core::ErrorKind::Usage, fmt::format("no UF2 bootloader simulator for '{}' (chips: {})", wanted,
                                                          fmt::join(uf2_bootloader_chips(), ", ")));
}

}  // namespace mcuflash::sim::msc

// The USB mass-storage simulators (src/sim/msc) driven as a host's usb-storage driver drives them:
// CBWs and CSWs byte by byte, stalls and reset recovery, SCSI sense; the MSC bootloader's "file
// complete" rule; UF2 blocks programmed wherever they are written; and mcuflash's UF2 drive client.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/image.hpp"
#include "image/loader.hpp"
#include "protocol/uf2drive/client.hpp"
#include "sim/msc/card_reader.hpp"
#include "sim/msc/msc_bootloader_device.hpp"
#include "sim/msc/uf2_bootloader_device.hpp"
#include "storage/fat.hpp"
#include "storage/volume_link.hpp"

namespace mcuflash::sim::msc {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;

uint32_t le32(const Bytes& b, size_t at) {
    return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}

DeviceOptions quiet() {
    DeviceOptions o;
    o.timing = false;
    return o;
}

// A host side of the Bulk-Only Transport, written from the spec, with the simulated clock.
struct Host {
    usb::UsbDeviceModel& device;
    Clock::time_point now{};
    uint32_t tag = 0x100;

    struct Result {
        Bytes data;
        bool data_stalled = false;
        uint8_t status = 0xFF;
        uint32_t residue = 0;
        uint32_t csw_tag = 0;
    };
    static Bytes cbw(uint32_t tag, uint32_t length, bool in, const Bytes& cdb) {
        Bytes b{0x55, 0x53, 0x42, 0x43};
        for (int i = 0; i < 4; ++i) b.push_back(uint8_t(tag >> (8 * i)));
        for (int i = 0; i < 4; ++i) b.push_back(uint8_t(length >> (8 * i)));
        b.push_back(in ? 0x80 : 0x00);
        b.push_back(0);
        b.push_back(uint8_t(cdb.size()));
        b.insert(b.end(), cdb.begin(), cdb.end());
        b.resize(31, 0);
        return b;
    }
    usb::EndpointIn in(size_t length) {
        for (int i = 0; i < 100000; ++i) {
            auto answer = device.bulk_in(0x81, length, now);
            if (answer.state != usb::EndpointIn::State::Nak) return answer;
            now += 1ms;
        }
        ADD_FAILURE() << "the IN endpoint NAKs for ever";
        return usb::EndpointIn::stalled();
    }
    void clear_halt(uint8_t endpoint) { device.control({0x02, 0x01, 0, endpoint, 0}, {}, now); }
    Result command(const Bytes& cdb, uint32_t length, bool read, const Bytes& out = {}) {
        Result r;
        EXPECT_TRUE(device.bulk_out(0x02, cbw(++tag, length, read, cdb), now));
        if (length && read) {
            auto answer = in(length);
            if (answer.state == usb::EndpointIn::State::Stall) {
                r.data_stalled = true;
                clear_halt(0x81);
            } else {
                r.data = answer.data;
            }
        } else if (length) {
            if (!device.bulk_out(0x02, out, now)) {
                r.data_stalled = true;
                clear_halt(0x02);
            }
        }
        auto csw = in(13);
        EXPECT_EQ(csw.state, usb::EndpointIn::State::Data);
        if (csw.data.size() == 13 && le32(csw.data, 0) == 0x53425355) {
            r.csw_tag = le32(csw.data, 4);
            r.residue = le32(csw.data, 8);
            r.status = csw.data[12];
        }
        return r;
    }
    Result read10(uint32_t lba, uint16_t count) {
        return command({0x28, 0, uint8_t(lba >> 24), uint8_t(lba >> 16), uint8_t(lba >> 8), uint8_t(lba), 0,
                        uint8_t(count >> 8), uint8_t(count), 0},
                       count * 512u, true);
    }
    Result write10(uint32_t lba, const Bytes& data) {
        const uint16_t count = uint16_t(data.size() / 512);
        return command({0x2A, 0, uint8_t(lba >> 24), uint8_t(lba >> 16), uint8_t(lba >> 8), uint8_t(lba), 0,
                        uint8_t(count >> 8), uint8_t(count), 0},
                       uint32_t(data.size()), false, data);
    }
    Bytes sense() { return command({0x03, 0, 0, 0, 18, 0}, 18, true).data; }
};

// The drive as a block device through the host: mcuflash's own FAT code reads and writes files on
// it with READ(10) and WRITE(10), as a host's file system would.
class DriveThroughHost : public storage::BlockDevice {
public:
    DriveThroughHost(Host& host, uint64_t sectors, uint64_t first = 0) : host_(host), sectors_(sectors), first_(first) {}
    uint64_t sector_count() const override { return sectors_; }
    void read(uint64_t sector, std::span<uint8_t> out) override {
        for (size_t done = 0; done < out.size(); done += 64 * 512) {
            const size_t n = std::min<size_t>(64 * 512, out.size() - done);
            auto r = host_.read10(uint32_t(first_ + sector + done / 512), uint16_t(n / 512));
            ASSERT_EQ(r.status, 0);
            std::copy(r.data.begin(), r.data.end(), out.begin() + long(done));
        }
    }
    void write(uint64_t sector, std::span<const uint8_t> data) override {
        for (size_t done = 0; done < data.size(); done += 64 * 512) {
            const size_t n = std::min<size_t>(64 * 512, data.size() - done);
            auto r = host_.write10(uint32_t(first_ + sector + done / 512), Bytes(data.begin() + long(done), data.begin() + long(done + n)));
            ASSERT_EQ(r.status, 0);
        }
    }
    void flush() override {}
    std::string describe() const override { return "the simulated drive"; }

private:
    Host& host_;
    uint64_t sectors_, first_;
};

Bytes random_bytes(size_t n, uint32_t seed) {
    Bytes out(n);
    for (auto& b : out) b = uint8_t((seed = seed * 1103515245 + 12345) >> 16);
    return out;
}

uint64_t capacity(Host& host) {
    auto r = host.command({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8, true);
    EXPECT_EQ(r.status, 0);
    return (uint64_t(r.data[0]) << 24 | r.data[1] << 16 | r.data[2] << 8 | r.data[3]) + 1;
}

TEST(MscSimulator, DescribesItselfAsABulkOnlyScsiDisk) {
    auto device = make_msc_bootloader("stm32f103xb", quiet());
    auto config = device->configuration_descriptor();
    EXPECT_EQ(config[9 + 5], 0x08);  // mass storage
    EXPECT_EQ(config[9 + 6], 0x06);  // SCSI transparent
    EXPECT_EQ(config[9 + 7], 0x50);  // bulk-only
    auto max_lun = device->control({0xA1, 0xFE, 0, 0, 1}, {}, {});
    ASSERT_FALSE(max_lun.stall);
    EXPECT_EQ(max_lun.data, Bytes{0});
    Host host{*device};
    auto inquiry = host.command({0x12, 0, 0, 0, 36, 0}, 36, true);
    EXPECT_EQ(inquiry.status, 0);
    EXPECT_EQ(inquiry.csw_tag, host.tag);
    ASSERT_EQ(inquiry.data.size(), 36u);
    EXPECT_EQ(inquiry.data[1], 0x80);  // removable
    EXPECT_EQ(std::string(inquiry.data.begin() + 8, inquiry.data.begin() + 16), "STM32   ");
    EXPECT_EQ(host.command({0x00, 0, 0, 0, 0, 0}, 0, false).status, 0);  // TEST UNIT READY
    EXPECT_EQ(capacity(host), 8192u);
    auto mode = host.command({0x1A, 0, 0x3F, 0, 192, 0}, 192, true);
    EXPECT_EQ(mode.status, 0);
    EXPECT_EQ(mode.residue, 192u - mode.data.size());
    EXPECT_EQ(mode.data[0] + 1u, mode.data.size());
    auto formats = host.command({0x23, 0, 0, 0, 0, 0, 0, 0, 12, 0}, 12, true);
    EXPECT_EQ(formats.status, 0);
    EXPECT_EQ(formats.data[8], 0x02);  // formatted media
}

TEST(MscSimulator, AnUnknownCommandStallsAndReportsInvalidOpcodeInTheSense) {
    auto device = make_msc_bootloader("", quiet());
    Host host{*device};
    auto r = host.command({0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32, true);  // READ CAPACITY(16)
    EXPECT_TRUE(r.data_stalled);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.residue, 32u);
    auto sense = host.sense();
    ASSERT_EQ(sense.size(), 18u);
    EXPECT_EQ(sense[0], 0x70);
    EXPECT_EQ(sense[2], 0x05);   // ILLEGAL REQUEST
    EXPECT_EQ(sense[12], 0x20);  // INVALID COMMAND OPERATION CODE
    EXPECT_EQ(host.sense()[2], 0x00);  // reported once
    auto out_of_range = host.read10(8192, 1);
    EXPECT_EQ(out_of_range.status, 1);
    EXPECT_EQ(host.sense()[12], 0x21);  // LOGICAL BLOCK ADDRESS OUT OF RANGE
}

TEST(MscSimulator, AnInvalidCbwStallsBothEndpointsUntilResetRecovery) {
    auto device = make_msc_bootloader("", quiet());
    Host host{*device};
    EXPECT_FALSE(device->bulk_out(0x02, Bytes(30, 0x55), host.now));  // 30 bytes: no CBW
    EXPECT_EQ(device->bulk_in(0x81, 13, host.now).state, usb::EndpointIn::State::Stall);
    host.clear_halt(0x81);
    host.clear_halt(0x02);
    EXPECT_EQ(device->bulk_in(0x81, 13, host.now).state, usb::EndpointIn::State::Stall);  // not before the reset
    EXPECT_FALSE(device->control({0x21, 0xFF, 0, 0, 0}, {}, host.now).stall);  // Bulk-Only Mass Storage Reset
    EXPECT_EQ(device->bulk_in(0x81, 13, host.now).state, usb::EndpointIn::State::Stall);  // halts kept
    host.clear_halt(0x81);
    host.clear_halt(0x02);
    EXPECT_EQ(host.command({0x00, 0, 0, 0, 0, 0}, 0, false).status, 0);
}

TEST(MscSimulator, ReadsBackWhatWasWrittenAndAPhaseErrorIsReported) {
    auto device = make_msc_bootloader("", quiet());
    Host host{*device};
    const Bytes data = random_bytes(3 * 512, 7);
    EXPECT_EQ(host.write10(4000, data).status, 0);
    EXPECT_EQ(host.read10(4000, 3).data, data);
    // A WRITE(10) of 2 sectors whose CBW announces 512 bytes: phase error.
    auto r = host.command({0x2A, 0, 0, 0, 0x0F, 0xA0, 0, 0, 2, 0}, 512, false, Bytes(512, 0));
    EXPECT_EQ(r.status, 2);
}

TEST(MscBootloader, InstallsACompleteBinAfterAQuietMomentAndLeaves) {
    auto model = make_msc_bootloader("stm32f103xb", quiet());
    auto& device = dynamic_cast<MscBootloaderDevice&>(*model);
    Host host{device};
    DriveThroughHost drive(host, capacity(host));
    storage::FatVolume fat(drive);
    EXPECT_EQ(fat.info().label, "MSC-BOOT");
    const Bytes firmware = random_bytes(20000, 3);
    fat.write_file("klipper.bin", firmware);
    device.tick(host.now + 100ms);
    EXPECT_TRUE(device.attached());  // not quiet long enough yet
    EXPECT_TRUE(device.installed_file().empty());
    host.now += 250ms;
    device.tick(host.now);
    EXPECT_EQ(device.installed_file(), "klipper.bin");
    host.now += 50ms;
    device.tick(host.now);
    EXPECT_FALSE(device.attached());
    std::vector<uint8_t> flash(firmware.size());
    device.flash().read(0x08002000, flash);
    EXPECT_EQ(flash, firmware);
    EXPECT_TRUE(device.flash().protected_ranges_intact());
    EXPECT_EQ(device.flash().counters().violations, 0u);
}

TEST(MscBootloader, AFileWhoseClustersAreNotAllWrittenIsNotComplete) {
    auto model = make_msc_bootloader("", quiet());
    auto& device = dynamic_cast<MscBootloaderDevice&>(*model);
    // The directory entry and FAT written, a data sector not (written behind the device's back):
    // the file is not complete, however long the drive stays quiet.
    storage::FatVolume fat(device.disk());
    fat.write_file("klipper.bin", random_bytes(5000, 9));
    Host host{device};
    EXPECT_EQ(host.write10(0, host.read10(0, 1).data).status, 0);  // some write, then quiet
    host.now += 2s;
    device.tick(host.now);
    EXPECT_TRUE(device.attached());
    EXPECT_TRUE(device.installed_file().empty());
}

TEST(MscBootloader, SynchronizeCacheCompletesAtOnceAndTooLargeIsRefused) {
    auto model = make_msc_bootloader("stm32f103xb", quiet());
    auto& device = dynamic_cast<MscBootloaderDevice&>(*model);
    Host host{device};
    DriveThroughHost drive(host, capacity(host));
    storage::FatVolume fat(drive);
    fat.write_file("big.bin", random_bytes(130 * 1024, 1));  // larger than 128 KiB - 8 KiB
    EXPECT_EQ(host.command({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, false).status, 0);
    EXPECT_NE(device.refusal().find("application region"), std::string::npos);
    EXPECT_TRUE(device.attached());
    EXPECT_EQ(device.flash().counters().programs, 0u);
}

// UF2 blocks of an image, as mcuflash's image writer makes them.
Bytes uf2_of(uint32_t address, const Bytes& data, std::optional<uint32_t> family) {
    image::Image img;
    img.add(address, data, "test");
    img.family_id = family;
    std::ostringstream out;
    image::write_image(img, out, image::Format::Uf2);
    const std::string s = out.str();
    return Bytes(s.begin(), s.end());
}

TEST(Uf2Bootloader, Rp2040ProgramsEachBlockWrittenAnywhereAndResetsWhenAllArrived) {
    auto model = make_uf2_bootloader("rp2040", quiet());
    auto& device = dynamic_cast<Uf2BootloaderDevice&>(*model);
    Host host{device};
    const uint64_t sectors = capacity(host);
    EXPECT_EQ(sectors, 262144u);  // 128 MiB
    // The MBR's one partition from sector 1 holds FAT16 with INFO_UF2.TXT.
    DriveThroughHost volume(host, sectors - 1, 1);
    storage::FatVolume fat(volume);
    EXPECT_EQ(fat.type(), storage::FatType::Fat16);
    const auto info = fat.read_file("INFO_UF2.TXT");
    EXPECT_NE(std::string(info.begin(), info.end()).find("Board-ID: RPI-RP2"), std::string::npos);
    EXPECT_TRUE(fat.find("INDEX.HTM"));
    EXPECT_FALSE(fat.find("CURRENT.UF2"));

    const Bytes app = random_bytes(3000, 5);
    const Bytes uf2 = uf2_of(0x10000000, app, 0xE48BFF56);
    ASSERT_EQ(uf2.size(), 12u * 512);
    // Another family's file first: ignored.
    EXPECT_EQ(host.write10(50000, uf2_of(0x10000000, Bytes(512, 0), 0x55114460)).status, 0);
    EXPECT_EQ(device.uf2_counters().foreign, 2u);
    // The blocks out of order, scattered over the disk, one twice.
    for (size_t i = 12; i-- > 0;) {
        Bytes block(uf2.begin() + long(i * 512), uf2.begin() + long(i * 512 + 512));
        EXPECT_EQ(host.write10(uint32_t(1000 + 37 * i), block).status, 0);
        if (i == 5) {
            EXPECT_EQ(host.write10(9, block).status, 0);
        }
    }
    EXPECT_EQ(device.uf2_counters().programmed, 12u);
    EXPECT_EQ(device.uf2_counters().duplicates, 1u);
    EXPECT_TRUE(device.resetting());
    EXPECT_TRUE(device.attached());  // 1 s later
    host.now += 1001ms;
    device.tick(host.now);
    EXPECT_FALSE(device.attached());
    Bytes flash(12 * 256);
    device.flash().read(0x10000000, flash);
    EXPECT_TRUE(std::equal(app.begin(), app.end(), flash.begin()));
    EXPECT_TRUE(std::all_of(flash.begin() + long(app.size()), flash.end(), [](uint8_t b) { return b == 0xFF; }));
}

TEST(Uf2Bootloader, Rp2040IgnoresBlocksWithoutTheFamilyFlag) {
    auto model = make_uf2_bootloader("rp2040", quiet());
    auto& device = dynamic_cast<Uf2BootloaderDevice&>(*model);
    Host host{device};
    EXPECT_EQ(host.write10(100, uf2_of(0x10000000, Bytes(256, 1), std::nullopt)).status, 0);
    EXPECT_EQ(device.uf2_counters().programmed, 0u);
    EXPECT_FALSE(device.resetting());
}

TEST(Uf2Bootloader, Samd51CountsButNeverWritesBlocksForItsOwnRegionAndShowsCurrentUf2) {
    auto model = make_uf2_bootloader("samd51j19a", quiet());
    auto& device = dynamic_cast<Uf2BootloaderDevice&>(*model);
    Host host{device};
    // An image from 0x3F00: its first block is the bootloader's (below 0x4000).
    const Bytes app = random_bytes(1024, 11);
    const Bytes uf2 = uf2_of(0x3F00, app, std::nullopt);  // no family: uf2-samdx1 takes it
    ASSERT_EQ(uf2.size(), 4u * 512);
    EXPECT_EQ(host.write10(7000, uf2).status, 0);
    EXPECT_EQ(device.uf2_counters().refused, 1u);
    EXPECT_EQ(device.uf2_counters().programmed, 3u);
    EXPECT_TRUE(device.resetting());  // all 4 counted
    EXPECT_TRUE(device.flash().protected_ranges_intact());
    Bytes flash(768);
    device.flash().read(0x4000, flash);
    EXPECT_TRUE(std::equal(flash.begin(), flash.end(), app.begin() + 256));
    // CURRENT.UF2: the whole flash, made from the flash model when read.
    DriveThroughHost drive(host, capacity(host));
    storage::FatVolume fat(drive);
    auto current = fat.read_file("CURRENT.UF2");
    ASSERT_EQ(current.size(), 524288u * 2);
    const size_t block = 0x4000 / 256;
    EXPECT_EQ(le32(current, block * 512 + 12), 0x4000u);
    EXPECT_EQ(le32(current, block * 512 + 28), 0x55114460u);
    EXPECT_TRUE(std::equal(flash.begin(), flash.begin() + 256, current.begin() + long(block * 512 + 32)));
}

// A card image holding what a UF2 drive shows, for the client (img: has no drive that leaves).
std::string uf2_drive_image(const std::string& info) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("mcuflash-uf2-" + std::to_string(::getpid()) + ".img")).string();
    { std::ofstream(path, std::ios::binary).write(std::string(8 << 20, '\0').data(), 8 << 20); }
    storage::FileBlockDevice file(path, true);
    storage::FatFormat format;
    format.label = "RPI-RP2";
    format.cluster_bytes = 4096;
    storage::format_fat(file, format);
    storage::FatVolume fat(file);
    fat.write_file("INFO_UF2.TXT", std::span(reinterpret_cast<const uint8_t*>(info.data()), info.size()));
    return path;
}

TEST(Uf2DriveClient, ReadsInfoUf2AndWritesBlocksTheRp2040RomTakes) {
    const std::string path = uf2_drive_image("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n");
    auto drive = storage::VolumeLink::open_unmounted(path);
    protocol::ConnectOptions options;
    protocol::uf2drive::Client client(*drive, options);
    auto info = client.connect();
    EXPECT_EQ(info.chip, "rp2040");
    EXPECT_EQ(info.app_start, 0x10000000u);
    EXPECT_EQ(client.drive_info().board_id, "RPI-RP2");
    EXPECT_FALSE(client.capabilities().can_read);
    const Bytes app = random_bytes(5000, 2);
    client.write_image(0x10000000, app);
    client.start_application();  // an image file: nothing to wait for
    const auto uf2 = drive->read_file(protocol::uf2drive::kUf2FileName);
    ASSERT_EQ(uf2.size(), 20u * 512);
    // What the simulated ROM makes of that file.
    auto model = make_uf2_bootloader("rp2040", quiet());
    auto& rom = dynamic_cast<Uf2BootloaderDevice&>(*model);
    Host host{rom};
    EXPECT_EQ(host.write10(300, Bytes(uf2.begin(), uf2.end())).status, 0);
    EXPECT_EQ(rom.uf2_counters().programmed, 20u);
    EXPECT_TRUE(rom.resetting());
    Bytes flash(app.size());
    rom.flash().read(0x10000000, flash);
    EXPECT_EQ(flash, app);
    std::filesystem::remove(path);
}

TEST(Uf2DriveClient, RefusesADriveOfAnotherChip) {
    const std::string path =
        uf2_drive_image("UF2 Bootloader v3.14.0 SFHWRO\nModel: Adafruit Feather M4 Express\nBoard-ID: SAMD51J19A-Feather-v0\n");
    auto drive = storage::VolumeLink::open_unmounted(path);
    protocol::ConnectOptions options;
    options.chip = "rp2040";
    protocol::uf2drive::Client client(*drive, options);
    EXPECT_THROW(client.connect(), core::Error);
    protocol::ConnectOptions by_drive;
    protocol::uf2drive::Client samd(*drive, by_drive);
    auto info = samd.connect();
    EXPECT_EQ(info.chip, "samd51j19a");
    EXPECT_EQ(info.app_start, 0x4000u);  // adafruit_samd51: 16 KiB
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace mcuflash::sim::msc

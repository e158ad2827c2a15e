// The STM32 ROM bootloader simulator driven with raw AN3155 bytes at chosen instants, as stm32flash
// would drive it.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "device_test_support.hpp"
#include "sim/registry.hpp"
#include "sim/stm32uart/stm32_rom_device.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using stm32uart::Stm32RomDevice;
using test::Bytes;
using test::cat;

// Protocol bytes, written out here from AN3155.
constexpr uint8_t kAck = 0x79, kNack = 0x1F;
constexpr uint32_t kFlash = 0x08000000;

Bytes pattern(size_t length, uint8_t seed) {
    Bytes out(length);
    for (size_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 8));
    return out;
}

uint8_t xor_all(const Bytes& data) {
    uint8_t x = 0;
    for (uint8_t b : data) x ^= b;
    return x;
}

Bytes command(uint8_t code) { return {code, static_cast<uint8_t>(code ^ 0xFF)}; }
Bytes address(uint32_t a) {
    Bytes out{uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
    out.push_back(xor_all(out));
    return out;
}
Bytes read_count(size_t n) { return {uint8_t(n - 1), uint8_t((n - 1) ^ 0xFF)}; }
Bytes data_block(const Bytes& data) {
    Bytes out = cat({{uint8_t(data.size() - 1)}, data});
    out.push_back(xor_all(out));
    return out;
}
Bytes erase_list(const Bytes& pages) {
    Bytes out = cat({{uint8_t(pages.size() - 1)}, pages});
    out.push_back(xor_all(out));
    return out;
}
Bytes extended_erase_list(const std::vector<uint16_t>& units) {
    Bytes out{uint8_t((units.size() - 1) >> 8), uint8_t(units.size() - 1)};
    for (uint16_t u : units) {
        out.push_back(uint8_t(u >> 8));
        out.push_back(uint8_t(u));
    }
    out.push_back(xor_all(out));
    return out;
}

DeviceOptions bench_options(bool timing, std::optional<std::filesystem::path> file) {
    DeviceOptions options;
    options.timing = timing;
    options.flash_file = std::move(file);
    return options;
}

class Bench : public test::DeviceBench {
public:
    explicit Bench(const std::string& chip, bool timing = false, std::optional<std::filesystem::path> file = {})
        : DeviceBench(make_device("stm32-uart", chip, bench_options(timing, std::move(file))),
                      Clock::time_point(std::chrono::seconds(1000))) {}
    void sync() { ASSERT_EQ(exchange({0x7F}), Bytes{kAck}); }

    Bytes read(uint32_t at, size_t n) {
        EXPECT_EQ(exchange(command(0x11)), Bytes{kAck});
        EXPECT_EQ(exchange(address(at)), Bytes{kAck});
        Bytes answer = exchange(read_count(n));
        EXPECT_EQ(answer.size(), n + 1);
        EXPECT_EQ(answer.front(), kAck);
        return Bytes(answer.begin() + 1, answer.end());
    }
    // Write Memory; returns the final answer (ACK, NACK).
    Bytes write(uint32_t at, const Bytes& data) {
        EXPECT_EQ(exchange(command(0x31)), Bytes{kAck});
        EXPECT_EQ(exchange(address(at)), Bytes{kAck});
        return exchange(data_block(data));
    }

    Stm32RomDevice& rom() { return as<Stm32RomDevice>(); }
};

TEST(Stm32RomDevice, SynchronisesOnceThenNacksAFurther0x7F) {
    Bench bench("stm32f103xb");
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange({0x00, 0xFF}), Bytes{}) << "commands before 0x7F are noise to the autobaud";
    EXPECT_EQ(bench.exchange({0x7F}), Bytes{kAck});
    EXPECT_EQ(bench.exchange({0x7F}), Bytes{kNack});
    EXPECT_TRUE(bench.rom().synchronised());
    EXPECT_EQ(bench.device().line_settings().parity, link::Parity::Even);
    EXPECT_EQ(bench.device().line_settings().baud, 115200u);
}

TEST(Stm32RomDevice, NacksABadComplementAndUnknownCommands) {
    Bench bench("stm32f103xb");
    bench.sync();
    EXPECT_EQ(bench.exchange({0x00, 0xFE}), Bytes{kNack});
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kNack}) << "the F1 ROM has no Extended Erase";
    EXPECT_EQ(bench.exchange(command(0x55)), Bytes{kNack});
    // Still in step: Get works afterwards.
    EXPECT_EQ(bench.exchange(command(0x00)).front(), kAck);
}

TEST(Stm32RomDevice, GetListsTheF1CommandSetWithErase) {
    Bench bench("stm32f103xb");
    bench.sync();
    Bytes expected{kAck, 11, 0x22, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, kAck};
    EXPECT_EQ(bench.exchange(command(0x00)), expected);
    EXPECT_EQ(bench.exchange(command(0x01)), (Bytes{kAck, 0x22, 0x00, 0x00, kAck}));
}

TEST(Stm32RomDevice, GetListsExtendedEraseOnF0AndF4) {
    for (const char* chip : {"stm32f072xb", "stm32f407xg"}) {
        Bench bench(chip);
        bench.sync();
        Bytes expected{kAck, 11, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x44, 0x63, 0x73, 0x82, 0x92, kAck};
        EXPECT_EQ(bench.exchange(command(0x00)), expected) << chip;
        EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kNack}) << chip;
    }
}

TEST(Stm32RomDevice, GetIdReportsEachChipsProductId) {
    const std::pair<const char*, uint16_t> chips[] = {
        {"stm32f103x6", 0x412}, {"stm32f103xb", 0x410}, {"stm32f103xe", 0x414}, {"stm32f042x6", 0x445},
        {"stm32f072xb", 0x448}, {"stm32f407xg", 0x413}, {"stm32f401xc", 0x423}, {"stm32f446xe", 0x421},
    };
    for (const auto& [chip, pid] : chips) {
        Bench bench(chip);
        bench.sync();
        EXPECT_EQ(bench.exchange(command(0x02)), (Bytes{kAck, 0x01, uint8_t(pid >> 8), uint8_t(pid), kAck})) << chip;
    }
}

TEST(Stm32RomDevice, ReadsFlashTheFlashSizeRegisterAndSram) {
    Bench f1("stm32f103xb");
    f1.sync();
    f1.device().flash().load(kFlash + 0x100, pattern(64, 3));
    EXPECT_EQ(f1.read(kFlash + 0x100, 64), pattern(64, 3));
    EXPECT_EQ(f1.read(0x1FFFF7E0, 2), (Bytes{128, 0}));  // 128 KiB, little-endian
    EXPECT_EQ(f1.read(0x20000000, 16), Bytes(16, 0x00));

    Bench f4("stm32f407xg");
    f4.sync();
    EXPECT_EQ(f4.read(0x1FFF7A22, 2), (Bytes{0x00, 0x04}));  // 1024 KiB
    EXPECT_EQ(f4.read(kFlash + 0xFFF00, 256), Bytes(256, 0xFF));
}

TEST(Stm32RomDevice, NacksUnmappedAddressesAndReadsPastTheEnd) {
    Bench bench("stm32f103xb");
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x11)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(0x40000000)), Bytes{kNack}) << "a peripheral address";
    EXPECT_EQ(bench.exchange(command(0x11)), Bytes{kAck});
    Bytes bad_checksum = address(kFlash);
    bad_checksum.back() ^= 1;
    EXPECT_EQ(bench.exchange(bad_checksum), Bytes{kNack});
    // The last 16 bytes of flash, then 256 bytes from there: past the end.
    EXPECT_EQ(bench.exchange(command(0x11)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(kFlash + 0x20000 - 16)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(read_count(256)), Bytes{kNack});
    // A bad count complement.
    EXPECT_EQ(bench.exchange(command(0x11)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(kFlash)), Bytes{kAck});
    EXPECT_EQ(bench.exchange({0x0F, 0x0F}), Bytes{kNack});
    EXPECT_EQ(bench.read(kFlash, 4), Bytes(4, 0xFF)) << "back in step";
}

TEST(Stm32RomDevice, WritesProgramFlashWithAndSemantics) {
    Bench bench("stm32f103xb");
    bench.sync();
    Bytes block = pattern(256, 7);
    EXPECT_EQ(bench.write(kFlash + 0x400, block), Bytes{kAck});
    EXPECT_EQ(bench.read(kFlash + 0x400, 256), block);
    // Writing again without erasing can only clear bits: the result is the AND, as on the chip.
    Bytes other = pattern(256, 99);
    EXPECT_EQ(bench.write(kFlash + 0x400, other), Bytes{kAck});
    Bytes anded(256);
    for (size_t i = 0; i < 256; ++i) anded[i] = block[i] & other[i];
    EXPECT_EQ(bench.read(kFlash + 0x400, 256), anded);
    EXPECT_GT(bench.device().flash().counters().programs_over_unerased, 0u);
    // Unaligned address and bad checksum.
    EXPECT_EQ(bench.exchange(command(0x31)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(kFlash + 2)), Bytes{kNack});
    EXPECT_EQ(bench.exchange(command(0x31)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(kFlash + 0x800)), Bytes{kAck});
    Bytes corrupted = data_block(pattern(16, 1));
    corrupted.back() ^= 0x40;
    EXPECT_EQ(bench.exchange(corrupted), Bytes{kNack});
    EXPECT_EQ(bench.read(kFlash + 0x800, 16), Bytes(16, 0xFF)) << "a block with a bad checksum is not written";
}

TEST(Stm32RomDevice, WritesIntoSram) {
    Bench bench("stm32f407xg");
    bench.sync();
    EXPECT_EQ(bench.write(0x20000100, pattern(32, 5)), Bytes{kAck});
    EXPECT_EQ(bench.read(0x20000100, 32), pattern(32, 5));
    EXPECT_EQ(bench.exchange(command(0x31)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(0x20000000 + stm32uart::kSramSize)), Bytes{kNack});
}

TEST(Stm32RomDevice, ErasesF1PagesByListAndGlobally) {
    Bench bench("stm32f103xb");
    bench.sync();
    for (uint32_t page : {0u, 1u, 2u, 5u}) EXPECT_EQ(bench.write(kFlash + page * 1024, Bytes(64, 0x00)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(erase_list({1, 5})), Bytes{kAck});
    EXPECT_EQ(bench.read(kFlash + 0 * 1024, 4), Bytes(4, 0x00));
    EXPECT_EQ(bench.read(kFlash + 1 * 1024, 4), Bytes(4, 0xFF));
    EXPECT_EQ(bench.read(kFlash + 2 * 1024, 4), Bytes(4, 0x00));
    EXPECT_EQ(bench.read(kFlash + 5 * 1024, 4), Bytes(4, 0xFF));
    EXPECT_EQ(bench.device().flash().counters().erases, 2u);
    // A page beyond the 128 pages, and a bad checksum: NACK, nothing erased.
    EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(erase_list({0, 200})), Bytes{kNack});
    EXPECT_EQ(bench.read(kFlash, 4), Bytes(4, 0x00));
    Bytes corrupted = erase_list({0});
    corrupted.back() ^= 1;
    EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(corrupted), Bytes{kNack});
    // Global erase: FF 00.
    EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(bench.exchange({0xFF, 0x00}), Bytes{kAck});
    for (uint32_t page : {0u, 2u}) EXPECT_EQ(bench.read(kFlash + page * 1024, 4), Bytes(4, 0xFF));
}

TEST(Stm32RomDevice, ExtendedEraseWorksOnF4Sectors) {
    Bench bench("stm32f407xg");
    bench.sync();
    // Sector 4 is the 64K one at 0x08010000, sector 5 the first 128K one at 0x08020000.
    for (uint32_t at : {0x08000000u, 0x0800C000u, 0x08010000u, 0x0801FF00u, 0x08020000u})
        EXPECT_EQ(bench.write(at, Bytes(16, 0x00)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(extended_erase_list({4})), Bytes{kAck});
    EXPECT_EQ(bench.read(0x08010000, 4), Bytes(4, 0xFF));
    EXPECT_EQ(bench.read(0x0801FF00, 4), Bytes(4, 0xFF)) << "the whole 64K sector";
    EXPECT_EQ(bench.read(0x0800C000, 4), Bytes(4, 0x00)) << "sector 3 untouched";
    EXPECT_EQ(bench.read(0x08020000, 4), Bytes(4, 0x00)) << "sector 5 untouched";
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(extended_erase_list({0, 3})), Bytes{kAck});
    EXPECT_EQ(bench.read(0x08000000, 4), Bytes(4, 0xFF));
    EXPECT_EQ(bench.read(0x0800C000, 4), Bytes(4, 0xFF));
    // Sector 12 does not exist on a single-bank 1 MiB part.
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(extended_erase_list({12})), Bytes{kNack});
    // Bank erase codes are refused on this single-bank model; FF FF 00 is the mass erase.
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange({0xFF, 0xFE, 0x01}), Bytes{kNack});
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange({0xFF, 0xFF, 0x00}), Bytes{kAck});
    EXPECT_EQ(bench.read(0x08020000, 4), Bytes(4, 0xFF));
}

TEST(Stm32RomDevice, EraseAnswersOnlyAfterTheBusyTime) {
    Bench bench("stm32f407xg", /*timing=*/true);
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    // Sectors 0 (16K, ~300 ms) and 5 (128K, ~1 s).
    EXPECT_EQ(bench.exchange(extended_erase_list({0, 5})), Bytes{});
    ASSERT_TRUE(bench.device().next_deadline().has_value());
    EXPECT_NEAR(std::chrono::duration<double>(*bench.device().next_deadline() - bench.now()).count(), 1.3, 0.01);
    bench.wait(1200ms);
    EXPECT_EQ(bench.take(), Bytes{});
    bench.wait(200ms);
    EXPECT_EQ(bench.take(), Bytes{kAck});

    Bench f1("stm32f103xb", true);
    f1.sync();
    EXPECT_EQ(f1.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(f1.exchange(erase_list({0, 1, 2})), Bytes{});
    f1.wait(59ms);
    EXPECT_EQ(f1.take(), Bytes{});
    f1.wait(2ms);
    EXPECT_EQ(f1.take(), Bytes{kAck}) << "3 pages of 20 ms";
}

TEST(Stm32RomDevice, GoLeavesTheBootloaderUntilReset) {
    Bench bench("stm32f103xb");
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x21)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(0x40000000)), Bytes{kNack});
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange(command(0x21)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(address(kFlash)), Bytes{kAck});
    EXPECT_FALSE(bench.device().in_bootloader());
    EXPECT_EQ(bench.rom().jumped_to(), kFlash);
    EXPECT_EQ(bench.exchange({0x7F}), Bytes{}) << "the application ignores the bootloader";
    EXPECT_EQ(bench.exchange(command(0x00)), Bytes{});
    bench.device().hardware_reset(bench.now());
    EXPECT_TRUE(bench.device().in_bootloader());
    EXPECT_EQ(bench.exchange({0x7F}), Bytes{kAck});
}

TEST(Stm32RomDevice, ReadoutProtectionRefusesAccessUntilUnprotectMassErases) {
    Bench bench("stm32f103xb");
    bench.sync();
    EXPECT_EQ(bench.write(kFlash, pattern(64, 9)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(command(0x82)), (Bytes{kAck, kAck}));
    EXPECT_FALSE(bench.rom().synchronised()) << "the device resets itself";
    EXPECT_EQ(bench.exchange(command(0x00)), Bytes{}) << "and needs 0x7F again";
    bench.sync();
    EXPECT_TRUE(bench.rom().readout_protected());
    for (uint8_t refused : {0x11, 0x31, 0x21, 0x43}) EXPECT_EQ(bench.exchange(command(refused)), Bytes{kNack}) << +refused;
    EXPECT_EQ(bench.exchange(command(0x02)), (Bytes{kAck, 0x01, 0x04, 0x10, kAck})) << "identification still works";
    // Survives a pin reset (option bytes).
    bench.device().hardware_reset(bench.now());
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x11)), Bytes{kNack});
    EXPECT_EQ(bench.exchange(command(0x92)), (Bytes{kAck, kAck}));
    EXPECT_FALSE(bench.rom().synchronised());
    bench.sync();
    EXPECT_FALSE(bench.rom().readout_protected());
    EXPECT_EQ(bench.read(kFlash, 64), Bytes(64, 0xFF)) << "unprotecting mass-erased the flash";
}

TEST(Stm32RomDevice, WriteProtectionRefusesEraseAndWriteUntilUnprotect) {
    Bench bench("stm32f072xb");
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x63)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(erase_list({2})), Bytes{kAck});
    EXPECT_FALSE(bench.rom().synchronised());
    bench.sync();
    EXPECT_EQ(bench.write(kFlash + 2 * 2048 + 16, Bytes(16, 0)), Bytes{kNack});
    EXPECT_EQ(bench.write(kFlash + 3 * 2048, Bytes(16, 0)), Bytes{kAck}) << "other pages stay writable";
    EXPECT_EQ(bench.exchange(command(0x44)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(extended_erase_list({2})), Bytes{kNack});
    EXPECT_EQ(bench.exchange(command(0x73)), (Bytes{kAck, kAck}));
    bench.sync();
    EXPECT_EQ(bench.write(kFlash + 2 * 2048 + 16, Bytes(16, 0)), Bytes{kAck});
}

TEST(Stm32RomDevice, BytesSentWhileBusyWaitInTheUsartOrOverrun) {
    Bench bench("stm32f103xb", true);
    bench.sync();
    EXPECT_EQ(bench.exchange(command(0x43)), Bytes{kAck});
    EXPECT_EQ(bench.exchange(erase_list({0})), Bytes{});
    // Get's two bytes fit in the USART; a third one is lost.
    EXPECT_EQ(bench.exchange({0x00, 0xFF, 0x02}), Bytes{});
    EXPECT_EQ(bench.rom().stats().overruns, 1u);
    bench.wait(25ms);
    Bytes answer = bench.take();
    ASSERT_GE(answer.size(), 3u);
    EXPECT_EQ(answer[0], kAck) << "the erase";
    EXPECT_EQ(answer[1], kAck) << "then Get, read from the USART";
    EXPECT_EQ(answer[2], 11);
}

TEST(Stm32RomDevice, KeepsTheFlashFileCurrent) {
    auto path = std::filesystem::temp_directory_path() / ("stm32rom-" + std::to_string(::getpid()) + ".bin");
    std::filesystem::remove(path);
    {
        Bench bench("stm32f103x8", false, path);
        bench.sync();
        EXPECT_EQ(bench.write(kFlash + 0x10, pattern(32, 4)), Bytes{kAck});
        EXPECT_EQ(bench.read(0x1FFFF7E0, 2), (Bytes{64, 0}));
    }
    EXPECT_EQ(std::filesystem::file_size(path), 65536u);
    Bench again("stm32f103x8", false, path);
    again.sync();
    EXPECT_EQ(again.read(kFlash + 0x10, 32), pattern(32, 4));
    std::filesystem::remove(path);
}

TEST(Stm32RomDevice, RegistryKnowsTheSimulator) {
    const auto& info = find_simulator("stm32-uart");
    EXPECT_EQ(info.default_chip, "stm32f103xb");
    ASSERT_EQ(info.personalities.size(), 1u);
    EXPECT_EQ(info.personalities.front().bootloader, "stm32_rom");
    EXPECT_THROW(make_device("stm32-uart", "atmega328p", {}), core::Error);
    auto device = make_device("stm32-uart", "", {});
    EXPECT_EQ(device->describe(), "STM32 ROM bootloader 2.2 on stm32f103xb");
}

}  // namespace
}  // namespace mcuflash::sim

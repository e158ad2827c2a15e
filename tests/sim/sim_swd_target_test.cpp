// The simulated SWD target (sim/swd) driven through DebugTarget only, one packet at a time, as a
// probe drives the wire.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "core/error.hpp"
#include "sim/swd/debug_target.hpp"

namespace mcuflash::sim::swd {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr uint32_t kCsw = 0x00, kTar = 0x04, kDrw = 0x0C, kBd0 = 0x10, kBase = 0xF8, kIdr = 0xFC;
constexpr uint32_t kCswWord = 0x03000012, kCswHalf = 0x03000011, kCswByte = 0x03000010, kCswWordNoInc = 0x03000002;
constexpr uint32_t kDhcsr = 0xE000EDF0, kDcrsr = 0xE000EDF4, kDcrdr = 0xE000EDF8, kDemcr = 0xE000EDFC,
                   kAircr = 0xE000ED0C, kDfsr = 0xE000ED30;
constexpr uint32_t kStickyErr = 1u << 5, kWDataErr = 1u << 7, kStickyOrun = 1u << 1;

// A probe's view: bit sequences, DP and AP registers, MEM-AP memory accesses.
class Probe {
public:
    explicit Probe(DebugTarget& target) : target_(target) {}

    Clock::time_point now{};

    void sequence(const std::vector<uint8_t>& bytes, unsigned bits) { target_.swj_sequence(bytes, bits, now); }
    void line_reset() { sequence({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00}, 64); }  // 56 ones, 8 idle
    void jtag_to_swd() {
        // OpenOCD's sequence: line reset, 0xE79E (LSB first), line reset, idle.
        sequence({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x9E, 0xE7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00},
                 136);
    }

    SwdAck dp_read(uint8_t address, uint32_t& value) { return target_.transfer(false, true, address, value, now); }
    SwdAck dp_write(uint8_t address, uint32_t value) { return target_.transfer(false, false, address, value, now); }
    SwdAck ap_read_raw(uint8_t address, uint32_t& value) { return target_.transfer(true, true, address, value, now); }
    SwdAck ap_write_raw(uint8_t address, uint32_t value) { return target_.transfer(true, false, address, value, now); }

    uint32_t dp(uint8_t address) {
        uint32_t value = 0;
        EXPECT_EQ(dp_read(address, value), SwdAck::Ok) << "DP read " << int(address);
        return value;
    }

    void select(uint32_t ap_register) {
        const uint32_t bank = ap_register & 0xF0;
        if (selected_bank_ != bank) {
            EXPECT_EQ(dp_write(0x8, bank), SwdAck::Ok);
            selected_bank_ = bank;
        }
    }
    void ap_write(uint32_t reg, uint32_t value) {
        select(reg);
        EXPECT_EQ(ap_write_raw(reg & 0xC, value), SwdAck::Ok) << "AP write " << reg;
    }
    uint32_t ap_read(uint32_t reg) {
        select(reg);
        uint32_t ignored = 0;
        EXPECT_EQ(ap_read_raw(reg & 0xC, ignored), SwdAck::Ok) << "AP read " << reg;
        return dp(0xC);  // RDBUFF
    }

    // OpenOCD/pyOCD's connect: select SWD, read DPIDR, clear errors, power up.
    uint32_t connect() {
        jtag_to_swd();
        const uint32_t dpidr = dp(0x0);
        EXPECT_EQ(dp_write(0x0, 0x1E), SwdAck::Ok);
        EXPECT_EQ(dp_write(0x4, 0x50000000), SwdAck::Ok);
        EXPECT_EQ(dp(0x4) & 0xF0000000, 0xF0000000u);
        selected_bank_ = 0xFFFFFFFF;
        select(0);
        return dpidr;
    }

    void write32(uint32_t address, uint32_t value) { write(address, value, kCswWord); }
    void write16(uint32_t address, uint16_t value) { write(address, uint32_t(value) << (8 * (address & 2)), kCswHalf); }
    void write8(uint32_t address, uint8_t value) { write(address, uint32_t(value) << (8 * (address & 3)), kCswByte); }
    void write(uint32_t address, uint32_t drw, uint32_t csw) {
        ap_write(kCsw, csw);
        ap_write(kTar, address);
        ap_write(kDrw, drw);
    }
    uint32_t read32(uint32_t address) {
        ap_write(kCsw, kCswWord);
        ap_write(kTar, address);
        return ap_read(kDrw);
    }
    uint16_t read16(uint32_t address) {
        ap_write(kCsw, kCswHalf);
        ap_write(kTar, address);
        return static_cast<uint16_t>(ap_read(kDrw) >> (8 * (address & 2)));
    }
    uint8_t read8(uint32_t address) {
        ap_write(kCsw, kCswByte);
        ap_write(kTar, address);
        return static_cast<uint8_t>(ap_read(kDrw) >> (8 * (address & 3)));
    }

    uint32_t core_register(uint32_t regsel) {
        write32(kDcrsr, regsel);
        EXPECT_TRUE(read32(kDhcsr) & (1u << 16)) << "S_REGRDY";
        return read32(kDcrdr);
    }
    void set_core_register(uint32_t regsel, uint32_t value) {
        write32(kDcrdr, value);
        write32(kDcrsr, regsel | 1u << 16);
    }

private:
    DebugTarget& target_;
    uint32_t selected_bank_ = 0xFFFFFFFF;
};

DeviceOptions untimed() {
    DeviceOptions options;
    options.timing = false;
    return options;
}

std::vector<uint8_t> words_le(std::initializer_list<uint32_t> words) {
    std::vector<uint8_t> bytes;
    for (uint32_t w : words)
        for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(w >> (8 * i)));
    return bytes;
}

// ------------------------------------------------------------------------------------ the SW-DP

TEST(SwdTargetDp, SilentUntilSelectedThenOnlyDpidrAfterLineReset) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::NoResponse);  // still in JTAG state

    probe.jtag_to_swd();
    EXPECT_EQ(probe.dp_read(0x4, value), SwdAck::NoResponse);  // CTRL/STAT before DPIDR: no answer
    ASSERT_EQ(probe.dp_read(0x0, value), SwdAck::Ok);
    EXPECT_EQ(value, 0x1BA01477u);
    EXPECT_EQ(probe.dp_read(0x4, value), SwdAck::Ok);

    // The select sequence without the line reset after it leaves the DP unusable.
    probe.sequence({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x9E, 0xE7}, 72);
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::NoResponse);
    probe.line_reset();
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Ok);
}

TEST(SwdTargetDp, PlainLineResetSelectsSwdAndDpidrIsPerChip) {
    auto target = make_debug_target("samd21g18a", untimed());
    Probe probe(*target);
    probe.line_reset();
    EXPECT_EQ(probe.dp(0x0), 0x0BC11477u);
    auto f4 = make_debug_target("stm32f407xg", untimed());
    Probe f4_probe(*f4);
    f4_probe.line_reset();
    EXPECT_EQ(f4_probe.dp(0x0), 0x2BA01477u);
}

TEST(SwdTargetDp, PowerUpHandshake) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.jtag_to_swd();
    probe.dp(0x0);
    EXPECT_EQ(probe.dp(0x4) & 0xF0000000, 0u);
    ASSERT_EQ(probe.dp_write(0x4, 0x50000000), SwdAck::Ok);  // CSYSPWRUPREQ | CDBGPWRUPREQ
    EXPECT_EQ(probe.dp(0x4) & 0xF0000000, 0xF0000000u);     // both ACKs
    ASSERT_EQ(probe.dp_write(0x4, 0x00000000), SwdAck::Ok);
    EXPECT_EQ(probe.dp(0x4) & 0xF0000000, 0u);

    // An AP access with the power domains off fails: the next packet gets FAULT.
    uint32_t value = 0;
    EXPECT_EQ(probe.ap_read_raw(0xC, value), SwdAck::Ok);
    EXPECT_EQ(probe.ap_read_raw(0xC, value), SwdAck::Fault);
}

TEST(SwdTargetDp, AccessPortIdentityAndRomTable) {
    auto m3 = make_debug_target("stm32f103xb", untimed());
    Probe probe(*m3);
    probe.connect();
    EXPECT_EQ(probe.ap_read(kIdr), 0x24770011u);
    const uint32_t base = probe.ap_read(kBase);
    EXPECT_EQ(base, 0xE00FF003u);
    const uint32_t rom = base & ~0xFFFu;
    EXPECT_EQ(probe.read32(rom + 0xFF4) & 0xF0, 0x10u);  // CIDR1: a ROM table
    EXPECT_EQ(probe.read32(rom + 0xFF0), 0x0Du);
    EXPECT_EQ(probe.read32(rom + 0xFFC), 0xB1u);
    // Entry 0: the SCS at 0xE000E000 (offset 0xFFF0F000), present.
    const uint32_t entry0 = probe.read32(rom);
    EXPECT_EQ(entry0 & 3, 3u);
    EXPECT_EQ(rom + (entry0 & ~0xFFFu), 0xE000E000u);
    EXPECT_EQ(probe.read32(0xE000EFE0), 0x00u);  // M3 SCS part 0x000
    EXPECT_EQ(probe.read32(0xE000EFF4), 0xE0u);
    EXPECT_EQ(probe.read32(0xE000ED00), 0x411FC231u);  // CPUID
    EXPECT_EQ(probe.read32(0xE0042000), 0x20036410u);  // DBGMCU_IDCODE: F103 medium density rev X

    auto m0 = make_debug_target("samd21g18a", untimed());
    Probe samd(*m0);
    samd.connect();
    EXPECT_EQ(samd.ap_read(kIdr), 0x04770031u);
    const uint32_t dsu_rom = samd.ap_read(kBase) & ~0xFFFu;
    EXPECT_EQ(dsu_rom, 0x41003000u);
    EXPECT_EQ(dsu_rom + (samd.read32(dsu_rom) & ~0xFFFu), 0xE00FF000u);  // on to the M0+ ROM table
    EXPECT_EQ(samd.read32(0xE000EFE0), 0x08u);                              // M0+ SCS
    EXPECT_EQ(samd.read32(0x41002018), 0x10010305u);                        // DSU DID (revision D)
}

TEST(SwdTargetDp, PostedReadsAndRdbuff) {
    auto target = make_debug_target("stm32f103xb", untimed());
    target->flash().load(0x08000000, words_le({0x11111111, 0x22222222, 0x33333333}));
    Probe probe(*target);
    probe.connect();
    probe.ap_write(kCsw, kCswWord);
    probe.ap_write(kTar, 0x08000000);
    uint32_t value = 0;
    ASSERT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Ok);  // starts the read of word 0
    ASSERT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Ok);  // returns word 0, starts word 1
    EXPECT_EQ(value, 0x11111111u);
    ASSERT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Ok);
    EXPECT_EQ(value, 0x22222222u);
    EXPECT_EQ(probe.dp(0xC), 0x33333333u);  // RDBUFF: the last one, no new access
    EXPECT_EQ(probe.dp(0xC), 0x33333333u);
    EXPECT_EQ(probe.ap_read(kTar), 0x0800000Cu);  // three increments; RDBUFF did not add one
}

TEST(SwdTargetDp, ByteAndHalfWordLanes) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.connect();
    probe.write32(0x20000100, 0x44332211);
    EXPECT_EQ(probe.read8(0x20000102), 0x33);
    EXPECT_EQ(probe.read16(0x20000102), 0x4433);
    // A byte write to address 1 takes DRW bits 15:8.
    probe.write(0x20000101, 0x0000AA00, kCswByte);
    probe.write(0x20000102, 0xBBCC0000, kCswHalf);
    EXPECT_EQ(probe.read32(0x20000100), 0xBBCCAA11u);
}

TEST(SwdTargetDp, TarAutoIncrementWrapsWithinTheBlock) {
    // Cortex-M0+ AHB-AP: TAR[9:0] wraps, the upper bits stay.
    auto target = make_debug_target("samd21g18a", untimed());
    Probe probe(*target);
    probe.connect();
    probe.write32(0x20000400, 0xDEADBEEF);
    probe.ap_write(kCsw, kCswWord);
    probe.ap_write(kTar, 0x200003FC);
    probe.ap_write(kDrw, 0x11111111);
    EXPECT_EQ(probe.ap_read(kTar), 0x20000000u);
    probe.ap_write(kDrw, 0x22222222);
    EXPECT_EQ(probe.read32(0x200003FC), 0x11111111u);
    EXPECT_EQ(probe.read32(0x20000000), 0x22222222u);
    EXPECT_EQ(probe.read32(0x20000400), 0xDEADBEEFu);  // not reached

    // Cortex-M3 AHB-AP (IDR 0x24770011): over 4 KiB, as its TRM says and pyOCD expects.
    auto m3 = make_debug_target("stm32f103xb", untimed());
    Probe m3_probe(*m3);
    m3_probe.connect();
    m3_probe.ap_write(kCsw, kCswWord);
    m3_probe.ap_write(kTar, 0x200003FC);
    m3_probe.ap_write(kDrw, 1);
    EXPECT_EQ(m3_probe.ap_read(kTar), 0x20000400u);
    m3_probe.ap_write(kTar, 0x20000FFC);
    m3_probe.ap_write(kDrw, 2);
    EXPECT_EQ(m3_probe.ap_read(kTar), 0x20000000u);
}

TEST(SwdTargetDp, BankedDataRegisters) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.connect();
    probe.ap_write(kCsw, kCswWordNoInc);
    probe.ap_write(kTar, 0x20000010);
    probe.ap_write(kBd0 + 8, 0xCAFEF00D);  // BD2: TAR[31:4] + 8
    EXPECT_EQ(probe.read32(0x20000018), 0xCAFEF00Du);
}

TEST(SwdTargetDp, StickyErrorOnUndecodedAddressUntilAbort) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.connect();
    probe.ap_write(kCsw, kCswWord);
    probe.ap_write(kTar, 0x30000000);  // nothing there on an F103
    uint32_t value = 0;
    ASSERT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Ok);  // posted: the error shows on the next packet
    EXPECT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Fault);
    EXPECT_EQ(probe.dp_write(0x8, 0), SwdAck::Fault);  // SELECT too
    EXPECT_TRUE(probe.dp(0x4) & kStickyErr);           // CTRL/STAT still answers
    EXPECT_EQ(probe.dp(0x0), 0x1BA01477u);              // so does DPIDR
    ASSERT_EQ(probe.dp_write(0x0, 1u << 2), SwdAck::Ok);  // ABORT.STKERRCLR
    EXPECT_FALSE(probe.dp(0x4) & kStickyErr);
    EXPECT_EQ(probe.read32(0x20000000), 0u);  // works again
}

TEST(SwdTargetDp, WriteDataParityErrorSetsWdataerr) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.connect();
    probe.write32(0x20000000, 0x12345678);
    probe.ap_write(kTar, 0x20000000);
    uint32_t data = 0xFFFFFFFF;
    EXPECT_EQ(target->transfer(true, false, kDrw, data, probe.now, false), SwdAck::Ok);
    EXPECT_TRUE(probe.dp(0x4) & kWDataErr);
    uint32_t value = 0;
    EXPECT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Fault);
    ASSERT_EQ(probe.dp_write(0x0, 1u << 3), SwdAck::Ok);  // WDERRCLR
    EXPECT_EQ(probe.read32(0x20000000), 0x12345678u);     // the bad write was dropped
}

// ------------------------------------------------------------------------------------ STM32F1

constexpr uint32_t kF1Keyr = 0x40022004, kF1Sr = 0x4002200C, kF1Cr = 0x40022010, kF1Ar = 0x40022014,
                   kF1Obr = 0x4002201C;
constexpr uint32_t kF1Pg = 1, kF1Per = 2, kF1Mer = 4, kF1Strt = 0x40, kF1Lock = 0x80;
constexpr uint32_t kF1Bsy = 1, kF1PgErr = 4, kF1Eop = 0x20;

void f1_unlock(Probe& probe) {
    probe.write32(kF1Keyr, 0x45670123);
    probe.write32(kF1Keyr, 0xCDEF89AB);
    ASSERT_EQ(probe.read32(kF1Cr) & kF1Lock, 0u);
}

TEST(SwdTargetStm32F1, IdentityFlashSizeAndOptionBytes) {
    auto target = make_debug_target("stm32f103xe", untimed());
    Probe probe(*target);
    probe.connect();
    EXPECT_EQ(probe.read32(0xE0042000) & 0xFFF, 0x414u);
    EXPECT_EQ(probe.read16(0x1FFFF7E0), 512);
    EXPECT_EQ(probe.read16(0x1FFFF800), 0x5AA5);           // RDP 0xA5 and its complement
    EXPECT_EQ(probe.read32(kF1Obr) & 2, 0u);                // RDPRT clear
    EXPECT_EQ(probe.read32(kF1Cr), kF1Lock);                // locked after reset
    EXPECT_EQ(probe.read32(0x00000000), probe.read32(0x08000000));  // boot alias
}

TEST(SwdTargetStm32F1, UnlockPageEraseProgramAndPgerr) {
    auto target = make_debug_target("stm32f103xb", untimed());
    target->flash().load(0x08000400, words_le({0x12345678, 0x9ABCDEF0}));
    Probe probe(*target);
    probe.connect();

    // Locked: CR ignores writes, programming does nothing.
    probe.write32(kF1Cr, kF1Pg);
    EXPECT_EQ(probe.read32(kF1Cr), kF1Lock);

    f1_unlock(probe);
    probe.write32(kF1Cr, kF1Per);
    probe.write32(kF1Ar, 0x08000400);
    probe.write32(kF1Cr, kF1Per | kF1Strt);
    EXPECT_EQ(probe.read32(kF1Sr) & (kF1Bsy | kF1Eop), kF1Eop);
    EXPECT_EQ(probe.read32(0x08000400), 0xFFFFFFFFu);
    EXPECT_EQ(probe.read32(0x08000404), 0xFFFFFFFFu);
    probe.write32(kF1Sr, kF1Eop);  // write one to clear
    EXPECT_EQ(probe.read32(kF1Sr), 0u);

    probe.write32(kF1Cr, kF1Pg);
    probe.write16(0x08000400, 0xBEEF);
    probe.write16(0x08000402, 0xDEAD);
    probe.write32(0x08000404, 0x55667788);  // a word: two half-word programs
    EXPECT_EQ(probe.read32(0x08000400), 0xDEADBEEFu);
    EXPECT_EQ(probe.read32(0x08000404), 0x55667788u);
    EXPECT_EQ(probe.read32(kF1Sr) & kF1PgErr, 0u);

    // Programming over a programmed half-word: PGERR, nothing written (0x0000 is the exception).
    probe.write16(0x08000400, 0x1234);
    EXPECT_TRUE(probe.read32(kF1Sr) & kF1PgErr);
    EXPECT_EQ(probe.read16(0x08000400), 0xBEEF);
    probe.write32(kF1Sr, kF1PgErr);
    probe.write16(0x08000402, 0x0000);
    EXPECT_EQ(probe.read32(kF1Sr) & kF1PgErr, 0u);
    EXPECT_EQ(probe.read16(0x08000402), 0x0000);

    // Byte writes are not something the flash interface takes: bus error.
    probe.write8(0x08000408, 0x00);
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);
    probe.dp_write(0x0, 1u << 2);

    probe.write32(kF1Cr, kF1Lock);
    EXPECT_EQ(probe.read32(kF1Cr) & kF1Lock, kF1Lock);
}

TEST(SwdTargetStm32F1, WrongKeyLocksUntilReset) {
    auto target = make_debug_target("stm32f103xb", untimed());
    Probe probe(*target);
    probe.connect();
    probe.write32(kF1Keyr, 0x11111111);
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);  // bus error
    probe.dp_write(0x0, 1u << 2);
    probe.write32(kF1Keyr, 0x45670123);
    probe.dp_write(0x0, 1u << 2);
    probe.write32(kF1Keyr, 0xCDEF89AB);
    probe.dp_write(0x0, 1u << 2);
    EXPECT_EQ(probe.read32(kF1Cr) & kF1Lock, kF1Lock);
    probe.write32(kAircr, 0x05FA0004);  // system reset
    f1_unlock(probe);
}

TEST(SwdTargetStm32F1, MassErase) {
    auto target = make_debug_target("stm32f103x8", untimed());
    target->flash().load(0x08000000, words_le({1, 2, 3}));
    target->flash().load(0x0800FFF0, words_le({4, 5, 6, 7}));
    Probe probe(*target);
    probe.connect();
    f1_unlock(probe);
    probe.write32(kF1Cr, kF1Mer);
    probe.write32(kF1Cr, kF1Mer | kF1Strt);
    EXPECT_TRUE(probe.read32(kF1Sr) & kF1Eop);
    for (uint8_t byte : target->flash().contents()) ASSERT_EQ(byte, 0xFF);
}

TEST(SwdTargetStm32F1, WaitWhileFlashBusy) {
    DeviceOptions options;  // real timing
    auto target = make_debug_target("stm32f103xb", options);
    Probe probe(*target);
    probe.connect();
    f1_unlock(probe);
    probe.write32(kF1Cr, kF1Pg);
    probe.write16(0x08000000, 0x1234);
    EXPECT_TRUE(probe.read32(kF1Sr) & kF1Bsy);  // the flash interface's registers do not stall

    // A flash read while BSY stalls the bus: the AP answers WAIT until the program time is over.
    probe.ap_write(kCsw, kCswHalf);
    probe.ap_write(kTar, 0x08000000);
    uint32_t value = 0;
    ASSERT_EQ(probe.ap_read_raw(kDrw, value), SwdAck::Ok);  // accepted, the AHB access stalls
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Wait);
    EXPECT_EQ(probe.ap_read_raw(kCsw, value), SwdAck::Wait);
    EXPECT_EQ(probe.dp_read(0x4, value), SwdAck::Ok);  // DP registers still answer
    probe.now += milliseconds(1);
    ASSERT_EQ(probe.dp_read(0xC, value), SwdAck::Ok);
    EXPECT_EQ(value & 0xFFFF, 0x1234u);
    EXPECT_EQ(probe.read32(kF1Sr) & (kF1Bsy | kF1Eop), kF1Eop);

    // A page erase keeps it busy for milliseconds.
    probe.write32(kF1Cr, kF1Per);
    probe.write32(kF1Ar, 0x08000000);
    probe.write32(kF1Cr, kF1Per | kF1Strt);
    EXPECT_TRUE(probe.read32(kF1Sr) & kF1Bsy);
    EXPECT_TRUE(probe.read32(kF1Cr) & kF1Strt);
    probe.now += milliseconds(25);
    EXPECT_EQ(probe.read32(kF1Sr) & kF1Bsy, 0u);
    EXPECT_EQ(probe.read16(0x08000000), 0xFFFF);
}

TEST(SwdTargetStm32F1, ReadoutProtectionMakesFlashReadsFail) {
    auto target = make_debug_target("stm32f103xb", untimed());
    target->flash().load(0x08000000, words_le({0x20005000, 0x08000101}));
    Probe probe(*target);
    probe.connect();
    f1_unlock(probe);
    probe.write32(0x40022008, 0x45670123);  // OPTKEYR
    probe.write32(0x40022008, 0xCDEF89AB);
    ASSERT_TRUE(probe.read32(kF1Cr) & (1u << 9));  // OPTWRE
    probe.write32(kF1Cr, (1u << 5) | (1u << 9));        // OPTER
    probe.write32(kF1Cr, (1u << 5) | (1u << 9) | kF1Strt);
    EXPECT_EQ(probe.read16(0x1FFFF800), 0xFFFF);
    probe.write32(kAircr, 0x05FA0004);  // reload the option bytes: RDP 0xFF is "protected"
    EXPECT_TRUE(probe.read32(kF1Obr) & 2);
    probe.ap_write(kCsw, kCswWord);
    probe.ap_write(kTar, 0x08000000);
    uint32_t value = 0;
    probe.ap_read_raw(kDrw, value);
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);
}

// ------------------------------------------------------------------------------------ STM32F4

constexpr uint32_t kF4Keyr = 0x40023C04, kF4Sr = 0x40023C0C, kF4Cr = 0x40023C10, kF4OptCr = 0x40023C14;
constexpr uint32_t kF4Pg = 1, kF4Ser = 2, kF4Strt = 1u << 16, kF4Lock = 1u << 31, kF4Psize32 = 2u << 8,
                   kF4Psize16 = 1u << 8, kF4Bsy = 1u << 16, kF4PgpErr = 1u << 6, kF4PgsErr = 1u << 7,
                   kF4EopIe = 1u << 24;

TEST(SwdTargetStm32F4, SectorEraseAndWordProgram) {
    auto target = make_debug_target("stm32f407xg", untimed());
    target->flash().load(0x08004000, words_le({1, 2}));
    target->flash().load(0x08008000, words_le({3}));
    Probe probe(*target);
    EXPECT_EQ(probe.connect(), 0x2BA01477u);
    EXPECT_EQ(probe.read32(0xE0042000) & 0xFFF, 0x413u);
    EXPECT_EQ(probe.read16(0x1FFF7A22), 1024);
    EXPECT_EQ(probe.read32(kF4OptCr), 0x0FFFAAEDu);
    EXPECT_EQ(probe.read32(kF4Cr), kF4Lock);

    probe.write32(kF4Keyr, 0x45670123);
    probe.write32(kF4Keyr, 0xCDEF89AB);
    ASSERT_EQ(probe.read32(kF4Cr) & kF4Lock, 0u);

    // Sector 1 (0x08004000, 16 KiB) only.
    probe.write32(kF4Cr, kF4Ser | 1u << 3 | kF4Psize32 | kF4EopIe);
    probe.write32(kF4Cr, kF4Ser | 1u << 3 | kF4Psize32 | kF4EopIe | kF4Strt);
    EXPECT_EQ(probe.read32(kF4Sr) & (kF4Bsy | 1), 1u);  // EOP (EOPIE set)
    EXPECT_EQ(probe.read32(0x08004000), 0xFFFFFFFFu);
    EXPECT_EQ(probe.read32(0x08008000), 3u);  // sector 2 untouched
    probe.write32(kF4Sr, 1);

    probe.write32(kF4Cr, kF4Pg | kF4Psize32);
    probe.write32(0x08004000, 0xA1B2C3D4);
    probe.write32(0x08004004, 0x0F1E2D3C);
    EXPECT_EQ(probe.read32(0x08004000), 0xA1B2C3D4u);
    EXPECT_EQ(probe.read32(0x08004004), 0x0F1E2D3Cu);
    EXPECT_EQ(probe.read32(kF4Sr) & 0xF2, 0u);

    // A half-word with PSIZE x32: parallelism error, nothing written.
    probe.write16(0x08004008, 0x1111);
    EXPECT_TRUE(probe.read32(kF4Sr) & kF4PgpErr);
    EXPECT_EQ(probe.read32(0x08004008), 0xFFFFFFFFu);
    probe.write32(kF4Sr, kF4PgpErr);
    probe.write32(kF4Cr, kF4Pg | kF4Psize16);
    probe.write16(0x08004008, 0x1111);
    EXPECT_EQ(probe.read32(0x08004008), 0xFFFF1111u);

    // Without PG: a programming sequence error.
    probe.write32(kF4Cr, 0);
    probe.write32(0x0800400C, 0);
    EXPECT_TRUE(probe.read32(kF4Sr) & kF4PgsErr);
    EXPECT_EQ(probe.read32(0x0800400C), 0xFFFFFFFFu);

    // Writing a key while unlocked is a wrong sequence: bus error, locked until reset.
    probe.write32(kF4Keyr, 0x45670123);
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);
    probe.dp_write(0x0, 1u << 2);
    EXPECT_TRUE(probe.read32(kF4Cr) & kF4Lock);
}

TEST(SwdTargetStm32F4, SectorEraseTakesTime) {
    auto target = make_debug_target("stm32f401xc", DeviceOptions{});
    Probe probe(*target);
    probe.connect();
    EXPECT_EQ(probe.read16(0x1FFF7A22), 256);
    probe.write32(kF4Keyr, 0x45670123);
    probe.write32(kF4Keyr, 0xCDEF89AB);
    probe.write32(kF4Cr, kF4Ser | 5u << 3 | kF4Psize32);  // sector 5: 128 KiB
    probe.write32(kF4Cr, kF4Ser | 5u << 3 | kF4Psize32 | kF4Strt);
    EXPECT_TRUE(probe.read32(kF4Sr) & kF4Bsy);
    probe.now += milliseconds(500);
    EXPECT_TRUE(probe.read32(kF4Sr) & kF4Bsy);
    probe.now += milliseconds(1000);
    EXPECT_FALSE(probe.read32(kF4Sr) & kF4Bsy);
}

// ------------------------------------------------------------------------------------ SAMD21 / SAMD51

constexpr uint32_t kNvmCtrlA = 0x41004000, kNvmCtrlB = 0x41004004, kNvmIntFlag = 0x41004014,
                   kNvmStatus = 0x41004018, kNvmAddr = 0x4100401C;
constexpr uint32_t kNvmLockE = 1u << 3;
constexpr uint32_t kUserRow = 0x00804000;

void nvm_command(Probe& probe, uint32_t command, uint32_t address) {
    probe.write32(kNvmAddr, address / 2);
    probe.write32(kNvmCtrlA, 0xA500 | command);
}

TEST(SwdTargetSamd21, BootprotRefusesNvmctrlEraseButNotChipErase) {
    auto target = make_debug_target("samd21g18a", DeviceOptions{});
    const auto placeholder = FlashMemory::placeholder("arduino_zero", 16);
    ASSERT_TRUE(std::equal(placeholder.begin(), placeholder.end(), target->flash().contents().begin()));
    target->flash().load(0x4000, words_le({0x12345678}));
    Probe probe(*target);
    probe.connect();
    EXPECT_EQ(probe.read32(kUserRow) & 7, 2u);  // BOOTPROT 2: 8 KiB

    nvm_command(probe, 0x02, 0x0000);  // ER inside the bootloader
    probe.now += milliseconds(10);
    EXPECT_TRUE(probe.read16(kNvmStatus) & kNvmLockE);
    EXPECT_TRUE(std::equal(placeholder.begin(), placeholder.end(), target->flash().contents().begin()));
    probe.write16(kNvmStatus, kNvmLockE);
    EXPECT_EQ(probe.read16(kNvmStatus) & kNvmLockE, 0);

    nvm_command(probe, 0x02, 0x4000);  // ER of an application row works
    EXPECT_EQ(probe.read8(kNvmIntFlag) & 1, 0);  // busy
    probe.now += milliseconds(10);
    EXPECT_EQ(probe.read8(kNvmIntFlag) & 1, 1);
    EXPECT_EQ(probe.read16(kNvmStatus) & 0x1C, 0);
    EXPECT_EQ(probe.read32(0x4000), 0xFFFFFFFFu);

    // DSU chip erase (through the external register view OpenOCD uses): the whole flash.
    probe.write8(0x41002100, 1u << 4);
    EXPECT_EQ(probe.read8(0x41002101) & 1, 0);  // not DONE yet
    probe.now += milliseconds(300);
    EXPECT_EQ(probe.read8(0x41002101) & 1, 1);
    EXPECT_EQ(probe.read32(0x0000), 0xFFFFFFFFu);
    for (uint8_t byte : target->flash().contents()) ASSERT_EQ(byte, 0xFF);
    EXPECT_EQ(probe.read32(kUserRow) & 7, 2u);  // the user row survives a chip erase
}

TEST(SwdTargetSamd21, PageBufferWriteAndBootprotChangeThroughTheUserRow) {
    auto target = make_debug_target("samd21g18a", untimed());
    Probe probe(*target);
    probe.connect();
    const uint32_t word0 = probe.read32(kUserRow), word1 = probe.read32(kUserRow + 4);

    // OpenOCD's page write: manual mode, page buffer clear, fill (ADDR follows the stores), WP.
    probe.write32(kNvmCtrlB, 1u << 7);
    probe.write32(kNvmCtrlA, 0xA544);
    for (uint32_t i = 0; i < 64; i += 4) probe.write32(0x2000 + i, 0xA0000000 | i);
    EXPECT_EQ(probe.read32(kNvmAddr), 0x203Cu / 2);
    probe.write32(kNvmCtrlA, 0xA504);
    EXPECT_EQ(probe.read16(kNvmStatus) & 0x1C, 0);
    EXPECT_EQ(probe.read32(0x2000), 0xA0000000u);
    EXPECT_EQ(probe.read32(0x203C), 0xA000003Cu);

    // A page write into the bootloader: LOCKE, nothing written.
    for (uint32_t i = 0; i < 64; i += 4) probe.write32(0x1000 + i, 0);
    probe.write32(kNvmCtrlA, 0xA504);
    EXPECT_TRUE(probe.read16(kNvmStatus) & kNvmLockE);
    EXPECT_NE(probe.read32(0x1000), 0u);
    probe.write16(kNvmStatus, 0x1C);

    // at91samd bootloader 0: erase the user row (EAR), write it back with BOOTPROT 7 (WAP).
    nvm_command(probe, 0x05, kUserRow);
    EXPECT_EQ(probe.read32(kUserRow), 0xFFFFFFFFu);
    probe.write32(kNvmCtrlA, 0xA544);
    probe.write32(kUserRow, word0 | 7);
    probe.write32(kUserRow + 4, word1);
    probe.write32(kNvmCtrlA, 0xA506);
    EXPECT_EQ(probe.read16(kNvmStatus) & 0x1C, 0);
    EXPECT_EQ(probe.read32(kUserRow), word0 | 7);
    EXPECT_EQ(probe.read32(kUserRow + 4), word1);

    // BOOTPROT takes effect at the next reset: still refused now, allowed after it.
    nvm_command(probe, 0x02, 0x0000);
    EXPECT_TRUE(probe.read16(kNvmStatus) & kNvmLockE);
    probe.write16(kNvmStatus, 0x1C);
    probe.write32(kAircr, 0x05FA0004);
    nvm_command(probe, 0x02, 0x0000);
    EXPECT_EQ(probe.read16(kNvmStatus) & 0x1C, 0);
    EXPECT_EQ(probe.read32(0x0000), 0xFFFFFFFFu);
}

TEST(SwdTargetSamd51, DoneOnlyWhenTheEraseHasFinished) {
    auto target = make_debug_target("samd51j19a", DeviceOptions{});
    Probe probe(*target);
    probe.connect();
    probe.write32(0x41004014, 0x10000);
    probe.write32(kNvmCtrlB, 0xA501);  // EB: a block erase takes milliseconds
    EXPECT_EQ(probe.read16(0x41004010) & 1, 0);
    EXPECT_EQ(probe.read32(0x41004010) & (1u << 16), 0u);  // STATUS.READY
    probe.now += milliseconds(60);
    EXPECT_EQ(probe.read16(0x41004010) & 1, 1);
    probe.write16(0x41004010, 0xFFFF);
    probe.write32(0x41004014, kUserRow);
    probe.write32(kNvmCtrlB, 0xA500);  // EP on the user page
    EXPECT_EQ(probe.read16(0x41004010) & 1, 0);
    probe.now += milliseconds(60);
    EXPECT_EQ(probe.read16(0x41004010) & 1, 1);
    EXPECT_EQ(probe.read32(kUserRow), 0xFFFFFFFFu);
}

TEST(SwdTargetSamd51, IdentityAndUserPageThroughNvmctrl) {
    auto target = make_debug_target("samd51j19a", untimed());
    Probe probe(*target);
    EXPECT_EQ(probe.connect(), 0x2BA01477u);
    EXPECT_EQ(probe.read32(0x41002018), 0x60060305u);
    EXPECT_EQ(probe.read32(0xE000ED00), 0x410FC241u);
    EXPECT_EQ(probe.read32(kUserRow) >> 26 & 0xF, 13u);  // BOOTPROT: 16 KiB
    // A block erase inside the bootloader: LOCKE in INTFLAG.
    probe.write32(0x41004014, 0x0000);
    probe.write32(kNvmCtrlB, 0xA501);
    EXPECT_TRUE(probe.read16(0x41004010) & kNvmLockE);
    probe.write16(0x41004010, 0xFFFF);
    // atsame5's user page write: EP, then quad words.
    const uint32_t word0 = probe.read32(kUserRow);
    probe.write32(0x41004014, kUserRow);
    probe.write32(kNvmCtrlB, 0xA500);
    EXPECT_EQ(probe.read32(kUserRow), 0xFFFFFFFFu);
    probe.write32(kUserRow, (word0 & ~(0xFu << 26)) | 15u << 26);
    for (uint32_t i = 4; i < 16; i += 4) probe.write32(kUserRow + i, 0xFFFFFFFF);
    probe.write32(kNvmCtrlB, 0xA504);
    EXPECT_EQ(probe.read16(0x41004010) & 0xE, 0);
    EXPECT_EQ(probe.read32(kUserRow) >> 26 & 0xF, 15u);
    probe.write32(kAircr, 0x05FA0004);
    probe.write32(0x41004014, 0x0000);
    probe.write32(kNvmCtrlB, 0xA501);
    EXPECT_EQ(probe.read16(0x41004010) & 0xE, 0);
    EXPECT_EQ(probe.read32(0x0000), 0xFFFFFFFFu);
}

// ------------------------------------------------------------------------------------ Cortex-M debug

TEST(SwdTargetCore, ResetHaltThroughVectorCatchLoadsTheVectorTable) {
    auto target = make_debug_target("stm32f103xb", untimed());
    target->flash().load(0x08000000, words_le({0x20005000, 0x08000131}));
    target->flash().load(0x08000130, std::vector<uint8_t>{0xFE, 0xE7});  // b . (so the core can run)
    Probe probe(*target);
    probe.connect();
    probe.write32(kDhcsr, 0xA05F0001);          // C_DEBUGEN
    probe.write32(kDemcr, 0x01000001);          // TRCENA | VC_CORERESET
    probe.write32(kAircr, 0x05FA0004);          // SYSRESETREQ
    const uint32_t dhcsr = probe.read32(kDhcsr);
    EXPECT_TRUE(dhcsr & (1u << 17)) << std::hex << dhcsr;  // S_HALT
    EXPECT_TRUE(dhcsr & (1u << 25));                        // S_RESET_ST
    EXPECT_FALSE(probe.read32(kDhcsr) & (1u << 25));        // sticky: cleared by the read
    EXPECT_TRUE(probe.read32(kDfsr) & (1u << 3));           // VCATCH
    EXPECT_EQ(probe.core_register(15), 0x08000130u);
    EXPECT_EQ(probe.core_register(13), 0x20005000u);
    EXPECT_EQ(probe.core_register(16), 0x01000000u);  // Thumb
    EXPECT_EQ(probe.read32(kDemcr), 0x01000001u);     // debug registers survive the system reset

    // Without the vector catch (and with C_HALT cleared, as OpenOCD's "reset run" does) the core runs
    // after the reset.
    probe.write32(kDemcr, 0x01000000);
    probe.write32(kDhcsr, 0xA05F0001);
    probe.write32(kAircr, 0x05FA0004);
    const uint32_t running = probe.read32(kDhcsr);
    EXPECT_FALSE(running & (1u << 17));
    EXPECT_TRUE(running & (1u << 24));  // S_RETIRE_ST
}

TEST(SwdTargetCore, ErasedFlashLocksUpAndAHaltClearsIt) {
    DeviceOptions options = untimed();
    options.bootloader = "none";
    auto target = make_debug_target("samd21g18a", options);
    Probe probe(*target);
    probe.connect();
    EXPECT_TRUE(probe.read32(kDhcsr) & (1u << 19));  // S_LOCKUP: PC 0xFFFFFFFE
    probe.write32(kDhcsr, 0xA05F0003);
    const uint32_t dhcsr = probe.read32(kDhcsr);
    EXPECT_TRUE(dhcsr & (1u << 17));
    EXPECT_FALSE(dhcsr & (1u << 19));
    EXPECT_EQ(probe.core_register(15), 0xFFFFFFFEu);
}

TEST(SwdTargetCore, HaltResumeAndRegisterAccess) {
    auto target = make_debug_target("samd21g18a", untimed());
    Probe probe(*target);
    probe.connect();
    probe.write32(kDhcsr, 0x00000003);  // no DBGKEY: ignored
    EXPECT_FALSE(probe.read32(kDhcsr) & 1);
    probe.write32(kDhcsr, 0xA05F0003);
    EXPECT_EQ(probe.read32(kDhcsr) & 0x00030003, 0x00030003u);
    EXPECT_TRUE(probe.read32(kDfsr) & 1);  // HALTED

    for (uint32_t r = 0; r <= 12; ++r) probe.set_core_register(r, 0x1000 + r);
    probe.set_core_register(15, 0x00002468);
    probe.set_core_register(17, 0x20007FF0);  // MSP
    probe.set_core_register(18, 0x20006000);  // PSP
    probe.set_core_register(20, 0x00000001);  // PRIMASK
    for (uint32_t r = 0; r <= 12; ++r) EXPECT_EQ(probe.core_register(r), 0x1000 + r);
    EXPECT_EQ(probe.core_register(15), 0x2468u);
    EXPECT_EQ(probe.core_register(13), 0x20007FF0u);  // SP is MSP while CONTROL.SPSEL is 0
    probe.set_core_register(20, 0x02000000);         // CONTROL.SPSEL
    EXPECT_EQ(probe.core_register(13), 0x20006000u);

    probe.write32(kDhcsr, 0xA05F0001);  // resume
    EXPECT_FALSE(probe.read32(kDhcsr) & (1u << 17));
}

TEST(SwdTargetCore, ResetLineHaltsWithVectorCatchOnRelease) {
    auto target = make_debug_target("stm32f407xg", untimed());
    target->flash().load(0x08000000, words_le({0x20020000, 0x080001C5}));
    Probe probe(*target);
    probe.connect();
    target->set_reset_line(true, probe.now);
    EXPECT_TRUE(probe.read32(kDhcsr) & (1u << 25));
    probe.write32(kDhcsr, 0xA05F0001);
    probe.write32(kDemcr, 0x01000001);
    target->set_reset_line(false, probe.now);
    EXPECT_TRUE(probe.read32(kDhcsr) & (1u << 17));
    EXPECT_EQ(probe.core_register(15), 0x080001C4u);
    EXPECT_EQ(probe.read32(0xE000EF40), 0x10110021u);  // MVFR0: the M4's FPU
}

// ------------------------------------------------------------------------------------ faults

TEST(SwdTargetFaults, ParseAndReject) {
    auto faults = SwdFaults::parse("wait@3:5,fault@10,reset@12,noresponse@40");
    ASSERT_EQ(faults.waits.size(), 1u);
    EXPECT_EQ(faults.waits[0], std::make_pair(uint64_t{3}, uint64_t{5}));
    EXPECT_TRUE(faults.fault_at.count(10));
    EXPECT_TRUE(faults.reset_at.count(12));
    EXPECT_EQ(faults.noresponse_at, 40u);
    EXPECT_THROW(SwdFaults::parse("stall@3"), core::Error);
    EXPECT_THROW(SwdFaults::parse("wait@x"), core::Error);
    EXPECT_THROW(make_debug_target("atmega328p", untimed()), core::Error);
}

TEST(SwdTargetFaults, InjectedWaitAndFault) {
    // Transactions: 0 DPIDR, 1 ABORT, 2 CTRL/STAT write, 3 CTRL/STAT read, 4 SELECT, then ours.
    auto target = make_debug_target("stm32f103xb", untimed(), SwdFaults::parse("wait@5:2,fault@8"));
    Probe probe(*target);
    probe.connect();
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Wait);   // 5
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Wait);   // 6
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Ok);     // 7
    EXPECT_EQ(probe.dp_read(0x4, value), SwdAck::Fault);  // 8
    EXPECT_EQ(probe.dp_write(0x8, 0), SwdAck::Fault);     // 9: STICKYERR holds
    EXPECT_TRUE(probe.dp(0x4) & kStickyErr);
    EXPECT_EQ(probe.dp_write(0x0, 1u << 2), SwdAck::Ok);
    EXPECT_EQ(probe.dp_write(0x8, 0), SwdAck::Ok);
}

TEST(SwdTargetFaults, WaitWithOverrunDetectionSetsStickyOrun) {
    auto target = make_debug_target("stm32f103xb", untimed(), SwdFaults::parse("wait@6"));
    Probe probe(*target);
    probe.connect();
    ASSERT_EQ(probe.dp_write(0x4, 0x50000001), SwdAck::Ok);  // 5: ORUNDETECT
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Wait);  // 6
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);
    EXPECT_TRUE(probe.dp(0x4) & kStickyOrun);
    EXPECT_EQ(probe.dp_write(0x0, 1u << 4), SwdAck::Ok);  // ORUNERRCLR
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Ok);
}

TEST(SwdTargetFaults, InjectedResetRestartsTheCoreButNotTheDp) {
    auto target = make_debug_target("stm32f103xb", untimed(), SwdFaults::parse("reset@40"));
    target->flash().load(0x08000000, words_le({0x20005000, 0x08000101}));
    Probe probe(*target);
    probe.connect();
    probe.write32(kDhcsr, 0xA05F0003);  // halt
    probe.write32(kF1Keyr, 0x45670123);
    probe.write32(kF1Keyr, 0xCDEF89AB);
    EXPECT_EQ(probe.read32(kF1Cr) & kF1Lock, 0u);
    probe.set_core_register(15, 0x08000200);
    probe.read32(kDhcsr);  // clears S_RESET_ST
    while (true) {  // run past transaction 20
        const uint32_t dhcsr = probe.read32(kDhcsr);
        if (dhcsr & (1u << 25)) break;
        ASSERT_LT(probe.now.time_since_epoch().count(), 100);
        probe.now += Clock::duration(1);
    }
    EXPECT_TRUE(probe.dp(0x4) & (1u << 29));        // the DP kept its power-up state
    EXPECT_TRUE(probe.read32(kF1Cr) & kF1Lock);       // the flash interface reset
    EXPECT_EQ(probe.core_register(15), 0x08000100u);  // the core restarted (C_HALT still set: halted)
}

TEST(SwdTargetFaults, NoResponseFromTransactionOn) {
    auto target = make_debug_target("stm32f103xb", untimed(), SwdFaults::parse("noresponse@7"));
    Probe probe(*target);
    probe.connect();
    uint32_t value = 0;
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Ok);  // 5
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::Ok);  // 6
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::NoResponse);
    probe.line_reset();
    EXPECT_EQ(probe.dp_read(0x0, value), SwdAck::NoResponse);
}

TEST(SwdTargetTrace, TracesPackets) {
    std::vector<std::string> lines;
    DeviceOptions options = untimed();
    options.trace = [&](const std::string& line) { lines.push_back(line); };
    auto target = make_debug_target("stm32f103xb", options);
    Probe probe(*target);
    probe.connect();
    probe.ap_write(kTar, 0x30000000);
    uint32_t value = 0;
    probe.ap_read_raw(kDrw, value);
    EXPECT_EQ(probe.dp_read(0xC, value), SwdAck::Fault);
    bool saw_dpidr = false, saw_bus_error = false;
    for (const auto& line : lines) {
        saw_dpidr |= line.find("DPIDR -> 0x1BA01477: OK") != std::string::npos;
        saw_bus_error |= line.find("bus error at 0x30000000") != std::string::npos;
    }
    EXPECT_TRUE(saw_dpidr);
    EXPECT_TRUE(saw_bus_error);
}

}  // namespace
}  // namespace mcuflash::sim::swd

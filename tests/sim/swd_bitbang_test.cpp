// SWD bit-banged on pins (link/swd/bitbang_probe: what `--probe gpio:...` does on a Raspberry Pi):
// the bits of single packets against vectors worked by hand from ADIv5 chapter B4; the simulated wire
// end (sim/swd/swd_wire) decoding them; then the whole stack, SwdTarget over BitbangProbe over
// SimulatedSwdPins over the simulated chips, with faults on the wire and in the target.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <functional>
#include <random>

#include "core/error.hpp"
#include "link/swd/adiv5.hpp"
#include "link/swd/bitbang_probe.hpp"
#include "link/swd/gpiod_pins.hpp"
#include "protocol/swd/swd_target.hpp"
#include "sim/swd/debug_target.hpp"
#include "swd_test_support.hpp"
#include "sim/swd/swd_wire.hpp"

using namespace mcuflash;
using core::ErrorKind;
using swd_test::failure_of;
using swd_test::flash_bytes;
using swd_test::random_bytes;
using link::swd::BitbangProbe;
using link::swd::Transfer;
using protocol::swd::SwdTarget;
using sim::swd::SimulatedSwdPins;

namespace {

// Pins that record what the host drives at each rising SWCLK edge (-1: released) and answer reads
// from a script: reply(n) is the level the target shows before rising edge n (nullopt: nobody
// drives, the pull-up reads 1).
class RecordingPins : public link::swd::SwdPins {
public:
    std::function<std::optional<bool>(size_t edge)> reply = [](size_t) { return std::nullopt; };
    std::vector<int> edges;

    std::string describe() const override { return "recording pins"; }
    void set_swclk(bool high) override {
        if (high && !clock_) edges.push_back(driving_ ? int{level_} : -1);
        clock_ = high;
    }
    void drive_swdio(bool level) override { driving_ = true, level_ = level; }
    void release_swdio() override { driving_ = false; }
    bool read_swdio() override {
        EXPECT_FALSE(clock_) << "SWDIO read with SWCLK high, before edge " << edges.size();
        if (driving_) ADD_FAILURE() << "SWDIO read while the host drives it, before edge " << edges.size();
        return reply(edges.size()).value_or(true);
    }
    bool has_reset_line() const override { return false; }
    void set_reset_line(bool) override {}
    void delay(std::chrono::nanoseconds) override {}
    void release_all() override { driving_ = false; }

private:
    bool clock_ = false, driving_ = false, level_ = false;
};

// "10100101" -> the levels, -1 for an 'x' (released).
std::vector<int> levels(const std::string& text) {
    std::vector<int> out;
    for (char c : text)
        if (c == '0' || c == '1') out.push_back(c - '0');
        else if (c == 'x') out.push_back(-1);
    return out;
}

std::vector<int> lsb_first(uint32_t value, unsigned bits) {
    std::vector<int> out;
    for (unsigned i = 0; i < bits; ++i) out.push_back(value >> i & 1);
    return out;
}

std::vector<int> concat(std::initializer_list<std::vector<int>> parts) {
    std::vector<int> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::unique_ptr<BitbangProbe> simulated(const std::string& chip, const std::string& faults = "", bool timing = false) {
    sim::DeviceOptions options;
    options.timing = timing;
    return sim::swd::make_simulated_gpio_probe(chip, options, sim::swd::SwdFaults::parse(faults));
}

SimulatedSwdPins& wire(BitbangProbe& probe) { return static_cast<SimulatedSwdPins&>(probe.pins()); }

// The SWD transaction in the middle of writing 1 KiB at the application start after a connect (the
// packets the wire saw, counted in a run without faults): where the fault tests put their faults.
uint64_t transaction_mid_write(const std::string& chip) {
    auto probe = simulated(chip);
    SwdTarget target(*probe);
    const auto& info = target.connect();
    const uint64_t before = wire(*probe).packets();
    target.write_flash(info.application_start, random_bytes(1024, 20));
    const uint64_t after = wire(*probe).packets();
    EXPECT_GT(after - before, 100u);
    return before + (after - before) / 2;
}

}  // namespace

// ---- request bytes and parity, worked by hand ----

TEST(SwdBitbangWire, RequestBytesFromTheSpec) {
    using link::swd::swd_request;
    // start 1, APnDP, RnW, A2, A3, parity of the four, stop 0, park 1 (bit 0 first).
    EXPECT_EQ(swd_request(false, true, 0x0), 0xA5);   // DPIDR read: 1 0 1 0 0 1 0 1
    EXPECT_EQ(swd_request(false, false, 0x0), 0x81);  // ABORT write: 1 0 0 0 0 0 0 1
    EXPECT_EQ(swd_request(false, false, 0x8), 0xB1);  // SELECT write: 1 0 0 0 1 1 0 1
    EXPECT_EQ(swd_request(false, true, 0x4), 0x8D);   // CTRL/STAT read: 1 0 1 1 0 0 0 1
    EXPECT_EQ(swd_request(false, false, 0x4), 0xA9);  // CTRL/STAT write: 1 0 0 1 0 1 0 1
    EXPECT_EQ(swd_request(true, true, 0xC), 0x9F);    // AP DRW read: 1 1 1 1 1 0 0 1
    EXPECT_EQ(swd_request(false, true, 0xC), 0xBD);   // RDBUFF read: 1 0 1 1 1 1 0 1
    EXPECT_FALSE(link::swd::swd_parity(0));
    EXPECT_FALSE(link::swd::swd_parity(0x1BA01477));  // 1+3+2+0+1+1+3+3 = 14 ones: even
    EXPECT_TRUE(link::swd::swd_parity(0x2BA01476));   // 1+3+2+0+1+1+3+2 = 13 ones: odd
    EXPECT_FALSE(link::swd::swd_parity(0x50000000));
}

TEST(SwdBitbangWire, ADpidrReadOnTheWire) {
    auto pins = std::make_unique<RecordingPins>();
    auto& p = *pins;
    // The target: ACK OK (1 0 0) before edges 9..11, 0x1BA01477 before edges 12..43, parity 0 before 44.
    const uint32_t dpidr = 0x1BA01477;
    p.reply = [&](size_t edge) -> std::optional<bool> {
        if (edge >= 9 && edge <= 11) return edge == 9;
        if (edge >= 12 && edge <= 43) return bool(dpidr >> (edge - 12) & 1);
        if (edge == 44) return false;
        return std::nullopt;
    };
    BitbangProbe probe(std::move(pins));
    uint32_t data = 0;
    bool parity_error = true;
    EXPECT_EQ(probe.packet(false, true, 0x0, data, parity_error), link::swd::dap::kAckOk);
    EXPECT_EQ(data, dpidr);
    EXPECT_FALSE(parity_error);
    // The host: 0xA5, then lets go for the turnaround, ACK, data, parity and the turnaround back, then
    // drives idle (low) clocks.
    const auto expected = concat({levels("10100101"), levels("x xxx"), std::vector<int>(33, -1), levels("x"), levels("00")});
    EXPECT_EQ(p.edges, expected);
}

TEST(SwdBitbangWire, ADpWriteOnTheWire) {
    auto pins = std::make_unique<RecordingPins>();
    auto& p = *pins;
    p.reply = [](size_t edge) -> std::optional<bool> {
        if (edge >= 9 && edge <= 11) return edge == 9;  // OK
        return std::nullopt;
    };
    BitbangProbe probe(std::move(pins));
    uint32_t data = 0x50000000;  // CSYSPWRUPREQ | CDBGPWRUPREQ: two ones, parity 0
    bool parity_error = false;
    EXPECT_EQ(probe.packet(false, false, 0x4, data, parity_error), link::swd::dap::kAckOk);
    const auto expected = concat({levels("10010101"), levels("x xxx"), levels("x"), lsb_first(0x50000000, 32), levels("0"),
                                  levels("00")});
    EXPECT_EQ(p.edges, expected);
}

TEST(SwdBitbangWire, WaitAndFaultHaveNoDataPhaseAndABadParityIsReported) {
    for (const bool wait : {true, false}) {
        auto pins = std::make_unique<RecordingPins>();
        auto& p = *pins;
        p.reply = [wait](size_t edge) -> std::optional<bool> {
            if (edge >= 9 && edge <= 11) return wait ? edge == 10 : edge == 11;  // WAIT 0 1 0, FAULT 0 0 1
            return std::nullopt;
        };
        BitbangProbe probe(std::move(pins));
        uint32_t data = 0x12345678;
        bool parity_error = false;
        EXPECT_EQ(probe.packet(false, false, 0x8, data, parity_error),
                  wait ? link::swd::dap::kAckWait : link::swd::dap::kAckFault);
        EXPECT_EQ(p.edges, concat({levels("10001101"), levels("x xxx x"), levels("00")}));
    }
    auto pins = std::make_unique<RecordingPins>();
    pins->reply = [](size_t edge) -> std::optional<bool> {
        if (edge >= 9 && edge <= 11) return edge == 9;
        if (edge >= 12 && edge <= 43) return edge == 12;  // data 1: one 1, parity must be 1
        if (edge == 44) return false;                     // ... but 0 comes
        return std::nullopt;
    };
    BitbangProbe probe(std::move(pins));
    uint32_t data = 0;
    bool parity_error = false;
    EXPECT_EQ(probe.packet(false, true, 0x4, data, parity_error), link::swd::dap::kAckOk);
    EXPECT_TRUE(parity_error);
    // Nothing drives the line: the pull-up's ones are no acknowledge.
    EXPECT_EQ(probe.packet(false, true, 0x0, data, parity_error), link::swd::dap::kAckNone);
}

// ---- the simulated wire end ----

TEST(SwdBitbangWire, TheSimulatedTargetAnswersOnlyAfterTheSelectSequence) {
    auto probe = simulated("stm32f103xb");
    uint32_t data = 0;
    bool parity_error = false;
    // Before any line reset the DP is not selected: nothing answers.
    EXPECT_EQ(probe->packet(false, true, 0x0, data, parity_error), link::swd::dap::kAckNone);
    probe->select_swd();
    EXPECT_EQ(probe->packet(false, true, 0x0, data, parity_error), link::swd::dap::kAckOk);
    EXPECT_EQ(data, 0x1BA01477u);
    EXPECT_FALSE(parity_error);
    EXPECT_EQ(wire(*probe).contentions(), 0u);
}

TEST(SwdBitbangWire, ABadRequestParityGetsNoAnswerUntilALineReset) {
    auto probe = simulated("stm32f103xb");
    EXPECT_EQ(probe->connect(), 0x1BA01477u);
    auto& pins = probe->pins();
    const uint64_t refused_before = wire(*probe).bad_requests();  // the line resets' ones are no requests either
    const uint8_t bad = 0xA5 ^ 0x20;  // a DPIDR read with its parity bit flipped
    pins.clock_out(std::span(&bad, 1), 8, {});
    uint8_t ack = 0;
    pins.clock_in(std::span(&ack, 1), 4, {});
    EXPECT_EQ(ack >> 1, 0x7) << "the line must stay high (no answer)";
    probe->idle(8);
    EXPECT_EQ(wire(*probe).bad_requests(), refused_before + 1);
    uint32_t data = 0;
    bool parity_error = false;
    EXPECT_EQ(probe->packet(false, true, 0x0, data, parity_error), link::swd::dap::kAckNone);  // locked out
    EXPECT_EQ(probe->connect(), 0x1BA01477u);                                                  // a line reset
}

TEST(SwdBitbangWire, ABadWriteParityIsWdataerrInTheTarget) {
    auto probe = simulated("stm32f103xb");
    probe->connect();
    auto& pins = probe->pins();
    // SELECT write of 0 with parity 1 (wrong: zero ones).
    const uint8_t request = 0xB1;
    pins.clock_out(std::span(&request, 1), 8, {});
    uint8_t ack = 0;
    pins.clock_in(std::span(&ack, 1), 4, {});
    EXPECT_EQ(ack >> 1, link::swd::dap::kAckOk);
    uint8_t turnaround = 0;
    pins.clock_in(std::span(&turnaround, 1), 1, {});
    const uint8_t word[5] = {0, 0, 0, 0, 1};
    pins.clock_out(word, 33, {});
    probe->idle(8);
    EXPECT_EQ(wire(*probe).write_parity_errors(), 1u);
    const Transfer read_status = Transfer::read(false, link::swd::dp::kCtrlStat);
    auto result = probe->execute(std::span(&read_status, 1));
    ASSERT_TRUE(result.ok());
    EXPECT_TRUE(result.reads.at(0) & link::swd::ctrl_stat::kWdataErr) << fmt::format("0x{:08X}", result.reads.at(0));
}

TEST(SwdBitbangWire, PostedApReadsComeBackInOrder) {
    auto probe = simulated("samd21g18a");
    link::swd::Adiv5 dap(*probe);
    dap.connect();
    EXPECT_EQ(dap.ap_idr(), 0x04770031u);  // the Cortex-M0+ AHB-AP
    // Flash words read through the MEM-AP, each its own value, against the simulator's flash.
    auto& flash = wire(*probe).target().flash();
    const auto bytes = dap.read_bytes(0x0, 64);
    EXPECT_EQ(bytes, flash_bytes(flash, 0x0, 64));
}

// ---- the whole stack ----

class SwdBitbangStack : public ::testing::TestWithParam<std::tuple<std::string, uint32_t>> {};

TEST_P(SwdBitbangStack, IdentifiesWritesFourKiBAndReadsThemBack) {
    const auto& [chip, dpidr] = GetParam();
    auto probe = simulated(chip);
    auto& flash = wire(*probe).target().flash();
    SwdTarget target(*probe);
    try {
        const auto& info = target.connect({.expected_chip = chip});
        ASSERT_NE(info.chip, nullptr);
        EXPECT_EQ(info.chip->name, chip);
        EXPECT_EQ(info.dpidr, dpidr);
        EXPECT_NE(info.probe.find("SWD bit-banged on a simulated SWD wire"), std::string::npos) << info.probe;
        const uint32_t start = info.application_start;
        EXPECT_GT(start, info.flash_base);
        const auto bootloader = flash_bytes(flash, info.flash_base, start - info.flash_base);
        const auto image = random_bytes(4096, 21);
        target.write_flash(start, image);
        EXPECT_EQ(flash_bytes(flash, start, image.size()), image);
        EXPECT_EQ(target.read_flash(start, 4096), image);
        EXPECT_EQ(flash_bytes(flash, info.flash_base, start - info.flash_base), bootloader);
        EXPECT_TRUE(flash.violations().empty());
        target.reset_and_run();
    } catch (const core::Error& e) {
        FAIL() << e.full_message();
    }
    EXPECT_GT(wire(*probe).packets(), 2000u);   // it all went over the wire, packet by packet
    EXPECT_EQ(wire(*probe).contentions(), 0u);  // host and target never drove SWDIO at once
    EXPECT_EQ(wire(*probe).write_parity_errors(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Chips, SwdBitbangStack,
                         ::testing::Values(std::make_tuple(std::string("stm32f103xb"), 0x1BA01477u),
                                           std::make_tuple(std::string("samd21g18a"), 0x0BC11477u)),
                         [](const auto& test_info) { return std::get<0>(test_info.param); });

TEST(SwdBitbang, FlashTimesOnTheSimulatedClockAreWaitedOut) {
    // With the chip's real program and erase times the bus stalls while the flash is busy: the target
    // answers WAIT (to writes too, after their data: the wire holds those) and the probe retries.
    for (const std::string chip : {"stm32f103xb", "samd21g18a"}) {
        auto probe = simulated(chip, "", true);
        SwdTarget target(*probe);
        const auto& info = target.connect();
        const auto started = wire(*probe).now();
        const auto image = random_bytes(2048, 25);
        target.write_flash(info.application_start, image);
        EXPECT_EQ(flash_bytes(wire(*probe).target().flash(), info.application_start, image.size()), image) << chip;
        EXPECT_EQ(target.read_flash(info.application_start, 2048), image) << chip;
        EXPECT_GT(wire(*probe).now() - started, std::chrono::milliseconds(1)) << chip;
        if (chip == "stm32f103xb") {  // its bus stalls while a halfword programs (the SAMD21 driver polls instead)
            EXPECT_GT(probe->wait_acks(), 0u);
            EXPECT_GT(wire(*probe).held_writes(), 0u);
        }
    }
}

TEST(SwdBitbang, AShortWaitStormIsRiddenOut) {
    const uint64_t at = transaction_mid_write("stm32f103xb");
    auto probe = simulated("stm32f103xb", fmt::format("wait@{}:40", at));
    SwdTarget target(*probe);
    const auto& info = target.connect();
    const auto image = random_bytes(1024, 22);
    target.write_flash(info.application_start, image);
    EXPECT_EQ(target.read_flash(info.application_start, 1024), image);
    // A write the storm hit after its data is held by the wire, which answers WAIT for it meanwhile.
    EXPECT_GE(probe->wait_acks() + wire(*probe).held_writes(), 40u);
}

TEST(SwdBitbang, AWaitStormPastTheRetriesIsATimeout) {
    const uint64_t at = transaction_mid_write("stm32f103xb");
    auto probe = simulated("stm32f103xb", fmt::format("wait@{}:1000000", at));
    SwdTarget target(*probe);
    const auto& info = target.connect();
    probe->set_retries(200, 0xFFFF);
    std::string message;
    EXPECT_EQ(failure_of([&] { target.write_flash(info.application_start, random_bytes(1024, 23)); }, &message),
              ErrorKind::Timeout);
    EXPECT_NE(message.find("WAIT"), std::string::npos) << message;
}

TEST(SwdBitbang, AFaultIsReportedAndTheNextCommandWorks) {
    for (const std::string chip : {"stm32f103xb", "samd21g18a"}) {
        const uint64_t at = transaction_mid_write(chip);
        auto probe = simulated(chip, fmt::format("fault@{}", at));
        SwdTarget target(*probe);
        const auto& info = target.connect();
        const auto image = random_bytes(1024, 24);
        std::string message;
        EXPECT_EQ(failure_of([&] { target.write_flash(info.application_start, image); }, &message), ErrorKind::Protocol)
            << chip;
        EXPECT_NE(message.find("FAULT"), std::string::npos) << message;
        // The sticky error was cleared: the same write goes through now.
        target.connect();
        target.write_flash(info.application_start, image);
        EXPECT_EQ(target.read_flash(info.application_start, 1024), image) << chip;
    }
}

TEST(SwdBitbang, ABadReadParityIsAnError) {
    auto probe = simulated("stm32f103xb");
    SwdTarget target(*probe);
    const auto& info = target.connect();
    wire(*probe).corrupt_read_parity(1);
    std::string message;
    EXPECT_EQ(failure_of([&] { target.read_flash(info.application_start, 256); }, &message), ErrorKind::Protocol);
    EXPECT_NE(message.find("parity"), std::string::npos) << message;
    // And the next read is fine again.
    EXPECT_EQ(target.read_flash(info.flash_base, 16), flash_bytes(wire(*probe).target().flash(), info.flash_base, 16));
}

TEST(SwdBitbang, NoChipIsNotFoundWithAWiringHint) {
    auto probe = simulated("stm32f103xb", "noresponse@0");
    std::string message;
    EXPECT_EQ(failure_of([&] { probe->connect(); }, &message), ErrorKind::NotFound);
    EXPECT_NE(message.find("wiring"), std::string::npos) << message;
}

TEST(SwdBitbang, ConnectsUnderResetThroughTheResetLine) {
    auto probe = simulated("samd21g18a");
    SwdTarget target(*probe);
    const auto& info = target.connect({.under_reset = true});
    EXPECT_TRUE(target.core().halted());
    const uint32_t reset_vector = target.dap().read32(info.flash_base + 4);
    EXPECT_EQ(target.core().read_core_register(link::swd::cortex_m::kRegPc), reset_vector & ~1u);
}

// ---- the GPIO probe spec ----

TEST(SwdGpioSpec, KlippersWiringAndTheChipForms) {
    auto spec = link::swd::parse_gpio_probe_spec("gpio:swclk=25,swdio=24,srst=18");
    EXPECT_EQ(spec.chip, "0");
    EXPECT_EQ(spec.swclk, 25u);
    EXPECT_EQ(spec.swdio, 24u);
    EXPECT_EQ(spec.srst, 18u);
    spec = link::swd::parse_gpio_probe_spec("gpio:4:swclk=25,swdio=24");
    EXPECT_EQ(spec.chip, "4");
    EXPECT_FALSE(spec.srst.has_value());
    EXPECT_EQ(link::swd::parse_gpio_probe_spec("gpio:pinctrl-rp1:swdio=24,swclk=25").chip, "pinctrl-rp1");
    EXPECT_TRUE(link::swd::is_gpio_probe_spec("gpio:swclk=1,swdio=2"));
    EXPECT_FALSE(link::swd::is_gpio_probe_spec("gpiochip0"));
    EXPECT_FALSE(link::swd::is_gpio_probe_spec("cmsis-dap"));
    for (const char* bad : {"gpio", "gpio:swclk=25", "gpio:swclk=25,swdio=25", "gpio:swclk=x,swdio=24",
                            "gpio:swclk=25,swdio=24,tck=3", "gpio::swclk=25,swdio=24", "gpio:swclk25,swdio=24",
                            "cmsis-dap"})
        EXPECT_EQ(failure_of([&] { link::swd::parse_gpio_probe_spec(bad); }), ErrorKind::Usage) << bad;
}

TEST(SwdGpioSpec, AMissingChipIsNotFoundNamingIt) {
    std::string message;
    EXPECT_EQ(failure_of([&] { link::swd::open_gpio_probe("gpio:97:swclk=25,swdio=24"); }, &message), ErrorKind::NotFound);
    EXPECT_NE(message.find("/dev/gpiochip97"), std::string::npos) << message;
    EXPECT_EQ(failure_of([&] { link::swd::open_gpio_probe("gpio:nosuchchip:swclk=25,swdio=24"); }, &message),
              ErrorKind::NotFound);
    EXPECT_NE(message.find("nosuchchip"), std::string::npos) << message;
}

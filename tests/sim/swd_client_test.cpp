// mcuflash's own SWD (link/swd: CMSIS-DAP, ADIv5, Cortex-M; protocol/swd: flash drivers, SwdTarget)
// against the simulated CMSIS-DAP probe (sim/cmsis_dap, v2 bulk and v1 HID) with a simulated chip on
// its SWD port (sim/swd), in process: identify each chip, write and read back, the bootloader
// installs Klipper's docs do with OpenOCD, the refusals, and faults on the wire and on USB.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>

#include "core/error.hpp"
#include "link/swd/cmsis_dap_probe.hpp"
#include "link/usb_hid_device.hpp"
#include "protocol/swd/swd_target.hpp"
#include "sim/cmsis_dap/cmsis_dap_probe.hpp"
#include "sim/swd/debug_target.hpp"
#include "swd_test_support.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using core::ErrorKind;
using swd_test::failure_of;
using swd_test::flash_bytes;
using swd_test::random_bytes;
using protocol::swd::SwdTarget;
using sim::cmsis_dap::ProbeVersion;

namespace {

// Forwards to the probe model and remembers the latest simulated instant it was given: how long an
// operation took on the simulated clock, without sleeping.
class TimedModel : public sim::usb::UsbDeviceModel {
public:
    explicit TimedModel(std::unique_ptr<sim::cmsis_dap::CmsisDapProbe> inner) : inner_(std::move(inner)) {}
    std::vector<uint8_t> device_descriptor() const override { return inner_->device_descriptor(); }
    std::vector<uint8_t> configuration_descriptor() const override { return inner_->configuration_descriptor(); }
    std::string string_descriptor(uint8_t index) const override { return inner_->string_descriptor(index); }
    std::vector<uint8_t> other_descriptor(uint8_t type, uint8_t index, uint16_t w_index) const override {
        return inner_->other_descriptor(type, index, w_index);
    }
    sim::usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data,
                                          core::Clock::time_point now) override {
        seen(now);
        return inner_->control(setup, data, now);
    }
    void set_interface(uint8_t interface, uint8_t alt, core::Clock::time_point now) override {
        inner_->set_interface(interface, alt, now);
    }
    bool has_endpoint(uint8_t address) const override { return inner_->has_endpoint(address); }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, core::Clock::time_point now) override {
        seen(now);
        return inner_->bulk_out(address, data, now);
    }
    sim::usb::EndpointIn bulk_in(uint8_t address, size_t max_length, core::Clock::time_point now) override {
        seen(now);
        return inner_->bulk_in(address, max_length, now);
    }
    void clear_halt(uint8_t address, core::Clock::time_point now) override { inner_->clear_halt(address, now); }
    void bus_reset(core::Clock::time_point now) override { inner_->bus_reset(now); }
    bool attached() const override { return inner_->attached(); }
    void tick(core::Clock::time_point now) override {
        seen(now);
        inner_->tick(now);
    }
    std::optional<core::Clock::time_point> next_event() const override { return inner_->next_event(); }
    std::string describe() const override { return inner_->describe(); }
    sim::FlashMemory& flash() override { return inner_->flash(); }

    sim::cmsis_dap::CmsisDapProbe& probe() { return *inner_; }
    core::Clock::time_point latest() const { return latest_; }

private:
    void seen(core::Clock::time_point now) { latest_ = std::max(latest_, now); }
    std::unique_ptr<sim::cmsis_dap::CmsisDapProbe> inner_;
    core::Clock::time_point latest_{};
};

struct Setup {
    std::string chip = "stm32f103xb";
    ProbeVersion version = ProbeVersion::V2Bulk;
    std::string swd_faults;  // sim::swd::SwdFaults
    std::string usb_faults;  // sim::usb::UsbFaults
    bool timing = false;     // the chip's flash times and the probe's SWD and USB times, on the simulated clock
    std::string bootloader;  // what the flash holds at start ("" = the board's usual, "none" = erased)
};

struct Rig {
    std::unique_ptr<sim::usb::InProcessUsb> usb;
    std::unique_ptr<link::UsbHidDevice> hid;
    std::unique_ptr<link::swd::CmsisDapProbe> probe;
    std::unique_ptr<SwdTarget> target;
    TimedModel& model() { return static_cast<TimedModel&>(usb->model()); }
    sim::FlashMemory& flash() { return usb->model().flash(); }
};

std::unique_ptr<Rig> rig(const Setup& s = {}) {
    sim::DeviceOptions options;
    options.timing = s.timing;
    options.bootloader = s.bootloader;
    auto target = sim::swd::make_debug_target(s.chip, options, sim::swd::SwdFaults::parse(s.swd_faults));
    auto probe_model = std::make_unique<sim::cmsis_dap::CmsisDapProbe>(std::move(target), s.version, s.timing,
                                                                       "test", s.chip);
    auto r = std::make_unique<Rig>();
    r->usb = std::make_unique<sim::usb::InProcessUsb>(std::make_unique<TimedModel>(std::move(probe_model)), false,
                                                      sim::usb::UsbFaults::parse(s.usb_faults));
    if (s.version == ProbeVersion::V1Hid) {
        r->hid = std::make_unique<link::UsbHidDevice>(*r->usb);
        r->probe = link::swd::CmsisDapProbe::over_hid(*r->hid);
    } else {
        r->probe = link::swd::CmsisDapProbe::over_bulk(*r->usb);
    }
    r->target = std::make_unique<SwdTarget>(*r->probe);
    return r;
}

// The simulated flash holds `bytes` at `address` (read from the model, not through the probe).
::testing::AssertionResult flash_holds(sim::FlashMemory& flash, uint32_t address, const std::vector<uint8_t>& bytes) {
    for (size_t i = 0; i < bytes.size(); ++i)
        if (flash.at(address + static_cast<uint32_t>(i)) != bytes[i])
            return ::testing::AssertionFailure()
                   << fmt::format("flash at 0x{:08X} holds 0x{:02X}, not 0x{:02X}", address + i,
                                  flash.at(address + static_cast<uint32_t>(i)), bytes[i]);
    return ::testing::AssertionSuccess();
}

}  // namespace

// ---- identify ----

struct Identity {
    std::string chip;
    uint32_t dpidr, flash_size;
    const char* core;
    const char* controller;
};

class SwdNativeIdentifies : public ::testing::TestWithParam<std::tuple<Identity, ProbeVersion>> {};

TEST_P(SwdNativeIdentifies, TheChipOnTheProbe) {
    const auto& [want, version] = GetParam();
    auto r = rig({.chip = want.chip, .version = version});
    EXPECT_EQ(r->probe->info().version, version == ProbeVersion::V1Hid ? 1 : 2);
    EXPECT_EQ(r->probe->info().packet_size, 64u);
    const auto& info = r->target->connect();
    ASSERT_NE(info.chip, nullptr);
    EXPECT_EQ(info.chip->name, want.chip);
    EXPECT_EQ(info.dpidr, want.dpidr);
    EXPECT_EQ(info.flash_size, want.flash_size);
    EXPECT_EQ(info.flash_controller, want.controller);
    EXPECT_NE(info.core.find(want.core), std::string::npos) << info.core;
    EXPECT_FALSE(info.protection.active);
    EXPECT_TRUE(r->target->core().halted());
    // And with the chip named: the same chip, checked.
    auto named = rig({.chip = want.chip, .version = version});
    EXPECT_EQ(named->target->connect({.expected_chip = want.chip}).chip->name, want.chip);
}

INSTANTIATE_TEST_SUITE_P(
    Chips, SwdNativeIdentifies,
    ::testing::Combine(::testing::Values(Identity{"stm32f103xb", 0x1BA01477, 128 * 1024, "Cortex-M3", "stm32f1"},
                                         Identity{"stm32f407xg", 0x2BA01477, 1024 * 1024, "Cortex-M4", "stm32f4"},
                                         Identity{"samd21g18a", 0x0BC11477, 256 * 1024, "Cortex-M0+", "samd21"},
                                         Identity{"samd51j19a", 0x2BA01477, 512 * 1024, "Cortex-M4", "samd51"}),
                       ::testing::Values(ProbeVersion::V2Bulk, ProbeVersion::V1Hid)),
    [](const auto& test_info) {
        return std::get<0>(test_info.param).chip + (std::get<1>(test_info.param) == ProbeVersion::V1Hid ? "_v1" : "_v2");
    });

TEST(SwdNative, AChipOtherThanTheOneNamedIsRefused) {
    auto r = rig({.chip = "samd21g18a"});
    std::string message;
    EXPECT_EQ(failure_of([&] { r->target->connect({.expected_chip = "stm32f103xb"}); }, &message), ErrorKind::Unsupported);
    EXPECT_NE(message.find("not a stm32f103xb"), std::string::npos) << message;
}

// ---- write and read back ----

class SwdNativeWrites : public ::testing::TestWithParam<std::tuple<std::string, ProbeVersion>> {};

TEST_P(SwdNativeWrites, SixtyFourKiBAtTheApplicationStartAndReadsThemBack) {
    const auto& [chip, version] = GetParam();
    auto r = rig({.chip = chip, .version = version});
    const auto& info = r->target->connect();
    const uint32_t start = info.application_start;
    EXPECT_GT(start, info.flash_base);  // the bootloader's room is kept
    const auto before = flash_bytes(r->flash(), info.flash_base, start - info.flash_base);
    const auto after_end = flash_bytes(r->flash(), start + 0x10000, 4096);
    const auto image = random_bytes(0x10000, 7);
    std::vector<core::ProgressEvent> events;
    r->target->write_flash(start, image, core::Progress([&](const core::ProgressEvent& e) { events.push_back(e); }));
    EXPECT_TRUE(flash_holds(r->flash(), start, image));
    EXPECT_EQ(flash_bytes(r->flash(), info.flash_base, start - info.flash_base), before);  // the bootloader
    EXPECT_EQ(flash_bytes(r->flash(), start + 0x10000, 4096), after_end);                  // past the image
    EXPECT_EQ(r->target->read_flash(start, 0x10000), image);
    // Progress: erase, write and verify each finished with all bytes (whole erase units: an F4's 64 KiB
    // from 0x08008000 spans two 16 KiB sectors and one of 64 KiB).
    for (auto stage : {core::Stage::Erase, core::Stage::Write, core::Stage::Verify}) {
        auto finished = std::find_if(events.begin(), events.end(), [&](const core::ProgressEvent& e) {
            return e.stage == stage && e.kind == core::ProgressEvent::Kind::Finished;
        });
        ASSERT_NE(finished, events.end()) << core::stage_name(stage);
        EXPECT_EQ(finished->done, chip == "stm32f407xg" ? 0x18000u : 0x10000u) << core::stage_name(stage);
    }
}

INSTANTIATE_TEST_SUITE_P(Chips, SwdNativeWrites,
                         ::testing::Combine(::testing::Values("stm32f103xb", "samd21g18a", "stm32f407xg", "samd51j19a"),
                                            ::testing::Values(ProbeVersion::V2Bulk, ProbeVersion::V1Hid)),
                         [](const auto& test_info) {
                             return std::get<0>(test_info.param) +
                                    (std::get<1>(test_info.param) == ProbeVersion::V1Hid ? "_v1" : "_v2");
                         });

TEST(SwdNative, APartialPageKeepsTheRestOfItsEraseUnit) {
    auto r = rig({.chip = "stm32f103xb"});
    const auto& info = r->target->connect();
    const uint32_t page = info.application_start + 0x400;
    const auto old = random_bytes(1024, 1);
    r->target->write_flash(page, old);
    const auto patch = random_bytes(100, 2);
    r->target->write_flash(page + 10, patch);
    auto expected = old;
    std::copy(patch.begin(), patch.end(), expected.begin() + 10);
    EXPECT_TRUE(flash_holds(r->flash(), page, expected));
}

// ---- bootloader installs ----

TEST(SwdNative, Samd21BootloaderInstallAsKlippersDocs) {
  try {
    auto r = rig({.chip = "samd21g18a"});
    auto info = r->target->connect();
    ASSERT_TRUE(info.bootloader_protection.has_value());
    const auto user_row_rest = r->target->dap().read_bytes(0x00804000, 256);
    const auto bootloader = random_bytes(8192, 11);
    r->target->chip_erase();
    EXPECT_EQ(r->flash().at(0x100), 0xFF);
    r->target->set_bootloader_protection(0);
    EXPECT_EQ(r->target->bootloader_protection(), 0u);
    r->target->write_flash(0x0, bootloader, core::Progress(), {.bootloader_install = true});
    r->target->set_bootloader_protection(8192);
    EXPECT_EQ(r->target->bootloader_protection(), 8192u);
    EXPECT_TRUE(flash_holds(r->flash(), 0x0, bootloader));
    EXPECT_EQ(r->target->read_flash(0x0, 8192), bootloader);
    // Only BOOTPROT (bits 2:0 of the first byte) changed in the user row.
    auto row = r->target->dap().read_bytes(0x00804000, 256);
    EXPECT_EQ(row[0] & 0x7, 2);  // 8 KiB (7: none, 6: 512 bytes, ... 0: 32 KiB)
    EXPECT_EQ(row[0] & ~0x7, user_row_rest[0] & ~0x7);
    EXPECT_TRUE(std::equal(row.begin() + 1, row.end(), user_row_rest.begin() + 1));
    // With BOOTPROT back, the bootloader's rows refuse an install write (before anything is sent).
    std::string message;
    EXPECT_EQ(failure_of([&] { r->target->write_flash(0x0, bootloader, core::Progress(), {.bootloader_install = true}); }, &message),
              ErrorKind::Unsafe);
    EXPECT_NE(message.find("BOOTPROT"), std::string::npos) << message;
    r->target->reset_and_run();
  } catch (const core::Error& e) { FAIL() << e.full_message(); }
}

TEST(SwdNative, Samd51BootprotChangesKeepTheRestOfTheUserPage) {
    auto r = rig({.chip = "samd51j19a"});
    const auto& info = r->target->connect();
    ASSERT_TRUE(info.bootloader_protection.has_value());
    const auto page = r->target->dap().read_bytes(0x00804000, 512);
    r->target->set_bootloader_protection(0);
    EXPECT_EQ(r->target->bootloader_protection(), 0u);
    r->target->set_bootloader_protection(16384);
    EXPECT_EQ(r->target->bootloader_protection(), 16384u);
    auto after = r->target->dap().read_bytes(0x00804000, 512);
    const uint32_t word0 = static_cast<uint32_t>(after[0] | after[1] << 8 | after[2] << 16) | uint32_t{after[3]} << 24;
    EXPECT_EQ(word0 >> 26 & 0xF, 13u);  // 15 - 16 KiB / 8 KiB
    const uint32_t old0 = static_cast<uint32_t>(page[0] | page[1] << 8 | page[2] << 16) | uint32_t{page[3]} << 24;
    EXPECT_EQ(word0 & ~(0xFu << 26), old0 & ~(0xFu << 26));
    EXPECT_TRUE(std::equal(after.begin() + 4, after.end(), page.begin() + 4));
    // 12 KiB is no size BOOTPROT can express.
    EXPECT_EQ(failure_of([&] { r->target->set_bootloader_protection(12288); }), ErrorKind::Usage);
}

TEST(SwdNative, Stm32f1MassEraseAndBootloaderAtTheFlashBase) {
    auto r = rig({.chip = "stm32f103xb"});
    r->target->connect();
    const auto app = random_bytes(4096, 3);
    r->target->write_flash(0x08008000, app);
    r->target->chip_erase();
    for (uint32_t a : {0x08000000u, 0x08008000u, 0x0801FFFFu}) EXPECT_EQ(r->flash().at(a), 0xFF) << a;
    const auto bootloader = random_bytes(0x2000, 4);
    r->target->write_flash(0x08000000, bootloader, core::Progress(), {.bootloader_install = true});
    EXPECT_TRUE(flash_holds(r->flash(), 0x08000000, bootloader));
    r->target->reset_and_run();
    EXPECT_FALSE(r->target->core().halted());
}

TEST(SwdNative, ConnectsUnderResetAndHaltsAtTheResetVector) {
    for (const std::string chip : {"stm32f103xb", "samd21g18a"}) {
        auto r = rig({.chip = chip});
        const auto& info = r->target->connect({.under_reset = true});
        EXPECT_EQ(info.chip->name, chip);
        EXPECT_TRUE(r->target->core().halted());
        const uint32_t reset_vector = r->target->dap().read32(info.flash_base + 4);
        EXPECT_EQ(r->target->core().read_core_register(link::swd::cortex_m::kRegPc), reset_vector & ~1u) << chip;
    }
}

TEST(SwdNative, ResetThroughTheResetLineHaltsAndRuns) {
    auto r = rig({.chip = "stm32f103xb"});
    r->target->connect({.reset = link::swd::ResetMethod::ResetLine});
    r->target->core().reset_and_halt(link::swd::ResetMethod::ResetLine);
    EXPECT_TRUE(r->target->core().halted());
    // Halted at the reset vector: PC is where the vector table's second word points (Thumb bit off).
    const uint32_t reset_vector = r->target->dap().read32(0x08000004);
    EXPECT_EQ(r->target->core().read_core_register(link::swd::cortex_m::kRegPc), reset_vector & ~1u);
    r->target->core().write_core_register(0, 0x12345678);
    EXPECT_EQ(r->target->core().read_core_register(0), 0x12345678u);
    const auto image = random_bytes(2048, 8);
    r->target->write_flash(0x08004000, image);
    EXPECT_TRUE(flash_holds(r->flash(), 0x08004000, image));
    r->target->reset_and_run();
    EXPECT_FALSE(r->target->core().halted());
}

TEST(SwdNative, Stm32f1ReadoutProtectionIsReportedAndItsRemovalErasesTheChip) {
    auto r = rig({.chip = "stm32f103xb"});
    r->target->connect();
    const auto app = random_bytes(1024, 12);
    r->target->write_flash(0x08004000, app);
    // Protect it as a vendor tool would: erase the option bytes (RDP becomes 0xFF), then reset.
    auto& dap = r->target->dap();
    dap.write32(0x40022004, 0x45670123);
    dap.write32(0x40022004, 0xCDEF89AB);
    dap.write32(0x40022008, 0x45670123);
    dap.write32(0x40022008, 0xCDEF89AB);
    dap.write32(0x40022010, 0x220);  // OPTER | OPTWRE
    dap.write32(0x40022010, 0x260);  // | STRT
    while (dap.read32(0x4002200C) & 1) r->probe->pause(std::chrono::milliseconds(1));
    dap.write32(0x40022010, 0x80);   // LOCK
    r->target->core().reset_and_halt();

    const auto& info = r->target->connect();
    ASSERT_TRUE(info.protection.active);
    EXPECT_NE(info.protection.detail.find("RDPRT"), std::string::npos) << info.protection.detail;
    EXPECT_NE(info.protection.way_out.find("erases"), std::string::npos) << info.protection.way_out;
    try {
        r->target->read_flash(0x08004000, 1024);
        ADD_FAILURE() << "read a protected chip";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
        EXPECT_EQ(e.hint(), info.protection.way_out);
    }
    EXPECT_EQ(failure_of([&] { r->target->write_flash(0x08004000, app); }), ErrorKind::Unsupported);
    EXPECT_TRUE(flash_holds(r->flash(), 0x08004000, app));  // nothing touched

    r->target->remove_readout_protection();
    EXPECT_FALSE(r->target->info().protection.active);
    EXPECT_EQ(r->flash().at(0x08004000), 0xFF);  // the way out erased it
    r->target->write_flash(0x08004000, app);
    EXPECT_EQ(r->target->read_flash(0x08004000, 1024), app);
}

TEST(SwdNative, AWriteBelowTheApplicationStartIsRefusedByDefault) {
    for (const std::string chip : {"stm32f103xb", "samd21g18a", "stm32f407xg"}) {
        auto r = rig({.chip = chip});
        const auto info = r->target->connect();  // a copy: the start is changed below
        std::string message;
        EXPECT_EQ(failure_of([&] { r->target->write_flash(info.flash_base, random_bytes(256, 5)); }, &message),
                  ErrorKind::Unsafe)
            << chip;
        EXPECT_NE(message.find("below the application start"), std::string::npos) << message;
        EXPECT_EQ(failure_of([&] { r->target->erase_flash(info.flash_base, info.application_start - info.flash_base); }),
                  ErrorKind::Unsafe);
        // A write that starts at the application start but whose erase unit begins below it, too.
        r->target->set_application_start(info.application_start + 4);
        EXPECT_EQ(failure_of([&] { r->target->write_flash(info.application_start + 4, random_bytes(4, 5)); }),
                  ErrorKind::Unsafe);
        // An erase of part of a unit is refused whatever the start.
        EXPECT_EQ(failure_of([&] { r->target->erase_flash(info.application_start + 4, 4); }), ErrorKind::Usage);
        EXPECT_TRUE(r->flash().violations().empty());
        EXPECT_TRUE(r->flash().protected_ranges_intact());
    }
}

// ---- faults ----

TEST(SwdNativeFaults, EachGivesAClearErrorNeverASilentSuccess) {
    struct Case {
        std::string chip, swd, usb;
        std::vector<ErrorKind> kinds;
    };
    const std::vector<Case> cases = {
        {"stm32f103xb", "wait@2000:200000", "", {ErrorKind::Timeout}},
        {"samd21g18a", "wait@2000:200000", "", {ErrorKind::Timeout}},
        {"stm32f103xb", "fault@2500", "", {ErrorKind::Protocol}},
        {"samd21g18a", "fault@2500", "", {ErrorKind::Protocol}},
        {"stm32f103xb", "reset@3000", "", {ErrorKind::Io}},
        {"samd21g18a", "reset@3000", "", {ErrorKind::Io}},
        {"stm32f103xb", "noresponse@2500", "", {ErrorKind::Io}},
        {"samd21g18a", "", "vanish@120", {ErrorKind::Io}},
        {"stm32f103xb", "", "vanish@150", {ErrorKind::Io}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.chip + " " + c.swd + c.usb);
        auto r = rig({.chip = c.chip, .swd_faults = c.swd, .usb_faults = c.usb});
        std::string message;
        auto kind = failure_of(
            [&] {
                const auto& info = r->target->connect();
                r->target->write_flash(info.application_start, random_bytes(0x8000, 9));
            },
            &message);
        ASSERT_TRUE(kind.has_value()) << "no error";
        EXPECT_NE(std::find(c.kinds.begin(), c.kinds.end(), *kind), c.kinds.end())
            << core::kind_name(*kind) << ": " << message;
    }
}

// The STM32 HID bootloader simulator as raw USB: descriptors of both builds, the acknowledgements
// (the F1 build also acks "reset pages"), pages written in order from the application start, the F4
// build's sector erase, the 2 KiB-page F103, the reboot, and the F1 build's pointer reset on a bus reset.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "sim/hid_stm32/hid_stm32_device.hpp"

using namespace mcuflash;
using sim::hid_stm32::HidStm32Device;
using sim::usb::EndpointIn;

namespace {

std::vector<uint8_t> command(uint8_t code) {
    std::vector<uint8_t> r{'B', 'T', 'L', 'D', 'C', 'M', 'D', code};
    r.resize(64, 0);
    return r;
}

struct Board {
    std::unique_ptr<sim::usb::UsbDeviceModel> model;
    core::Clock::time_point now{};
    HidStm32Device& device() { return dynamic_cast<HidStm32Device&>(*model); }

    explicit Board(const std::string& chip, const std::string& bootloader = {}) {
        sim::DeviceOptions options;
        options.timing = false;
        options.bootloader = bootloader;
        model = sim::hid_stm32::make_hid_stm32_device(chip, options);
        model->bus_reset(now);
    }
    // As a host sends it: on the OUT endpoint where there is one, else SET_REPORT.
    void send(const std::vector<uint8_t>& report) {
        if (model->has_endpoint(0x01)) {
            ASSERT_TRUE(model->bulk_out(0x01, report, now));
        } else {
            auto r = model->control({0x21, 0x09, 0x0200, 0, static_cast<uint16_t>(report.size())}, report, now);
            ASSERT_FALSE(r.stall);
        }
    }
    void send_page(uint8_t fill) {
        for (int i = 0; i < 16; ++i) send(std::vector<uint8_t>(64, fill));
    }
    // The ack's byte 7, or -1 when the endpoint NAKs.
    int ack() {
        auto in = model->bulk_in(0x81, 8, now);
        if (in.state != EndpointIn::State::Data) return -1;
        EXPECT_EQ(std::string(in.data.begin(), in.data.begin() + 7), "BTLDCMD");
        return in.data.at(7);
    }
};

}  // namespace

TEST(SimHidStm32Device, TheF1BuildHasNoOutEndpointAndAnEightByteEndpointZero) {
    Board b("stm32f103xb");
    auto d = b.model->device_descriptor();
    EXPECT_EQ(d[7], 8);
    EXPECT_EQ(b.model->identity().vendor, 0x1209);
    EXPECT_EQ(b.model->identity().product, 0xBEBA);
    EXPECT_EQ(b.model->identity().bcd_device, 0x0300);
    EXPECT_TRUE(b.model->has_endpoint(0x81));
    EXPECT_FALSE(b.model->has_endpoint(0x01));
    auto config = b.model->configuration_descriptor();
    EXPECT_EQ(config.size(), 34u);
    EXPECT_EQ(config[2], 34);
    Board f4("stm32f407xg");
    EXPECT_EQ(f4.model->device_descriptor()[7], 64);
    EXPECT_TRUE(f4.model->has_endpoint(0x01));
    EXPECT_EQ(f4.model->configuration_descriptor().size(), 41u);
}

TEST(SimHidStm32Device, F1AcksResetAndEachPageAndWritesInOrder) {
    Board b("stm32f103xb");
    EXPECT_EQ(b.ack(), -1);
    b.send(command(0x00));
    EXPECT_TRUE(b.device().started());
    EXPECT_EQ(b.ack(), 0x02);  // the F1 build acks the command itself
    EXPECT_EQ(b.ack(), -1);
    b.send_page(0x11);
    EXPECT_EQ(b.ack(), 0x02);
    b.send_page(0x22);
    EXPECT_EQ(b.ack(), 0x02);
    EXPECT_EQ(b.model->flash().at(0x08000800), 0x11);
    EXPECT_EQ(b.model->flash().at(0x08000C00), 0x22);
    EXPECT_EQ(b.device().pages_written(), 2u);
    EXPECT_TRUE(b.model->flash().violations().empty());
    EXPECT_TRUE(b.model->flash().protected_ranges_intact());
    // A bus reset puts the F1 build's pointer back to the application start.
    b.model->bus_reset(b.now);
    b.send_page(0x33);
    EXPECT_EQ(b.model->flash().at(0x08000800), 0x33);
}

TEST(SimHidStm32Device, RebootLeavesTheBus) {
    Board b("stm32f103xb");
    b.send(command(0x00));
    b.send(command(0x01));
    EXPECT_TRUE(b.device().rebooted());
    b.model->tick(b.now + std::chrono::milliseconds(1));
    EXPECT_FALSE(b.model->attached());
}

TEST(SimHidStm32Device, F4ErasesASectorWhenThePointerEntersIt) {
    Board b("stm32f407xg");
    std::vector<uint8_t> old(0x8000, 0x00);
    b.model->flash().load(0x08004000, old);  // zeros: programming over them would keep zeros
    b.send(command(0x00));
    EXPECT_EQ(b.ack(), -1);  // the F4 build does not ack the command
    for (int page = 0; page < 17; ++page) {
        b.send_page(static_cast<uint8_t>(0x40 + page));
        ASSERT_EQ(b.ack(), 0x02) << page;
    }
    EXPECT_EQ(b.model->flash().at(0x08004000), 0x40);
    EXPECT_EQ(b.model->flash().at(0x08007C00), 0x4F);
    EXPECT_EQ(b.model->flash().at(0x08008000), 0x50);  // the next sector was erased on entry
    EXPECT_EQ(b.model->flash().at(0x08008400), 0xFF);
    EXPECT_TRUE(b.model->flash().protected_ranges_intact());
}

TEST(SimHidStm32Device, AHighDensityF103WritesTwoKiBAndAcksThree) {
    Board b("stm32f103xe");
    b.send(command(0x00));
    EXPECT_EQ(b.ack(), 0x03);
    b.send_page(0x11);
    EXPECT_EQ(b.ack(), 0x03);
    EXPECT_EQ(b.device().pages_written(), 0u);  // half a flash page: still in the buffer
    b.send_page(0x22);
    EXPECT_EQ(b.ack(), 0x03);
    EXPECT_EQ(b.device().pages_written(), 1u);
    EXPECT_EQ(b.model->flash().at(0x08000800), 0x11);
    EXPECT_EQ(b.model->flash().at(0x08000C00), 0x22);
}

TEST(SimHidStm32Device, The16KiBF103BuildStartsAt0x08004000) {
    Board b("stm32f103xe", "hid_stm32_16k");
    EXPECT_EQ(b.device().app_start(), 0x08004000u);
    b.send(command(0x00));
    b.send_page(0x11);
    b.send_page(0x22);
    EXPECT_EQ(b.model->flash().at(0x08004000), 0x11);
    EXPECT_TRUE(b.model->flash().protected_ranges_intact());
    EXPECT_THROW(sim::hid_stm32::make_hid_stm32_device("stm32f407xg", {.bootloader = "hid_stm32_16k"}), core::Error);
}

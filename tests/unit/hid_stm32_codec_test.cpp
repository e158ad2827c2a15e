// The STM32 HID bootloader's reports (hid-flash's commands, pages and acknowledgements), as bytes.
#include <gtest/gtest.h>

#include "link/hid_device.hpp"
#include "protocol/hid_stm32/codec.hpp"

using namespace mcuflash::protocol::hid_stm32;

TEST(HidStm32Codec, CommandsAreTheSignatureTheByteAndZerosTo64) {
    auto reset = command_report(Command::ResetPages);
    ASSERT_EQ(reset.size(), 64u);
    EXPECT_EQ(std::string(reset.begin(), reset.begin() + 7), "BTLDCMD");
    EXPECT_EQ(reset[7], 0x00);
    for (size_t i = 8; i < 64; ++i) ASSERT_EQ(reset[i], 0) << i;
    auto reboot = command_report(Command::Reboot);
    EXPECT_EQ(reboot[7], 0x01);
    EXPECT_EQ(decode_command(reset), std::optional<uint8_t>(0));
    EXPECT_EQ(decode_command(reboot), std::optional<uint8_t>(1));
}

TEST(HidStm32Codec, DataIsNotACommand) {
    auto report = command_report(Command::Reboot);
    report[63] = 1;  // firmware that happens to begin with the signature
    EXPECT_FALSE(decode_command(report));
    EXPECT_FALSE(decode_command(std::vector<uint8_t>(64, 0)));
    EXPECT_FALSE(decode_command(std::vector<uint8_t>(8, 0)));
}

TEST(HidStm32Codec, APageIsSixteenReportsFilledUpTo1024) {
    std::vector<uint8_t> page(1000);
    for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint8_t>(i);
    auto reports = page_reports(page);
    ASSERT_EQ(reports.size(), 16u);
    for (const auto& r : reports) ASSERT_EQ(r.size(), 64u);
    EXPECT_EQ(reports[0][0], 0);
    EXPECT_EQ(reports[1][0], 64);
    EXPECT_EQ(reports[15][999 - 960], static_cast<uint8_t>(999));
    EXPECT_EQ(reports[15][1000 - 960], 0xFF);
    EXPECT_EQ(page_reports(page, 0x00)[15][63], 0x00);
}

TEST(HidStm32Codec, AcknowledgementsAreByte7TwoOrThree) {
    std::vector<uint8_t> ack{'B', 'T', 'L', 'D', 'C', 'M', 'D', 2};
    ASSERT_TRUE(decode_ack(ack));
    EXPECT_FALSE(decode_ack(ack)->wants_double_pages);
    ack[7] = 3;
    ASSERT_TRUE(decode_ack(ack));
    EXPECT_TRUE(decode_ack(ack)->wants_double_pages);
    ack[7] = 1;
    EXPECT_FALSE(decode_ack(ack));
    EXPECT_FALSE(decode_ack(std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0}));  // short
}

// link::hid_endpoints decides where a HID link sends output reports (link/usb_hid_device.cpp).
TEST(HidStm32Codec, FindsTheHidInterfacesInterruptEndpoints) {
    using mcuflash::link::hid_endpoints;
    // The F4 build: IN 0x81 (8 bytes) and OUT 0x01 (64 bytes), both interrupt.
    std::vector<uint8_t> f4{9, 2, 41, 0, 1, 1, 0, 0xC0, 0x32, 9, 4, 0, 0, 2, 3, 0, 0, 0,
                            9, 0x21, 0x11, 1, 0, 1, 0x22, 32, 0,
                            7, 5, 0x81, 3, 8, 0, 32, 7, 5, 0x01, 3, 64, 0, 32};
    auto e = hid_endpoints(f4);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->in, 0x81);
    EXPECT_EQ(e->in_size, 8);
    EXPECT_EQ(e->out, 0x01);
    EXPECT_EQ(e->out_size, 64);
    // An isochronous OUT endpoint (the real F4 descriptor's slip) is not used: SET_REPORT instead.
    f4[37] = 1;
    EXPECT_EQ(hid_endpoints(f4)->out, 0);
    // The F1 build: no OUT endpoint.
    std::vector<uint8_t> f1(f4.begin(), f4.begin() + 34);
    f1[13] = 1;
    EXPECT_EQ(hid_endpoints(f1)->out, 0);
    EXPECT_EQ(hid_endpoints(f1)->in, 0x81);
    // No HID interface, or garbage.
    f1[14] = 0xFE;
    EXPECT_FALSE(hid_endpoints(f1));
    EXPECT_FALSE(hid_endpoints(std::vector<uint8_t>{0, 0, 0}));
}

// How a USB device is named on the command line (usb:VID:PID[:SERIAL], usb:BUS-PORT) and matched.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "link/libusb_device.hpp"

namespace {

using mcuflash::core::Error;
using mcuflash::core::ErrorKind;
using mcuflash::link::UsbIdentity;
using mcuflash::link::UsbMatch;

TEST(UsbMatch, ParsesVidPidSerialAndPortPaths) {
    auto m = UsbMatch::parse("usb:0483:DF11");
    EXPECT_EQ(m.vendor, 0x0483);
    EXPECT_EQ(m.product, 0xdf11);
    EXPECT_TRUE(m.serial.empty());

    m = UsbMatch::parse("0483:df11:3276385A3035");
    EXPECT_EQ(m.serial, "3276385A3035");

    m = UsbMatch::parse("usb:1-1.4");
    EXPECT_EQ(m.port_path, "1-1.4");
    EXPECT_FALSE(m.vendor);
}

TEST(UsbMatch, RefusesWhatNamesNoDevice) {
    for (const char* text : {"", "usb:", "0483", "0483:", "12345:df11", "zz:df11", "0483:df11:", "1-", "1-1."}) {
        try {
            UsbMatch::parse(text);
            ADD_FAILURE() << "accepted '" << text << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Usage) << text;
            EXPECT_NE(e.hint().find("usb:VID:PID"), std::string::npos);
        }
    }
}

TEST(UsbMatch, ComparesSerialOnlyWhenBothAreKnown) {
    UsbIdentity id{0x0483, 0xdf11, 0x2200, "ABC", "1-1.4"};
    EXPECT_TRUE(UsbMatch::parse("0483:df11").matches(id));
    EXPECT_TRUE(UsbMatch::parse("0483:df11:ABC").matches(id));
    EXPECT_FALSE(UsbMatch::parse("0483:df11:XYZ").matches(id));
    EXPECT_FALSE(UsbMatch::parse("0483:df12").matches(id));
    EXPECT_TRUE(UsbMatch::parse("1-1.4").matches(id));
    EXPECT_FALSE(UsbMatch::parse("1-1.3").matches(id));
    id.serial.clear();  // unreadable: the caller opens the device to find out
    EXPECT_TRUE(UsbMatch::parse("0483:df11:XYZ").matches(id));
}

}  // namespace

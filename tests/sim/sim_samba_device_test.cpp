// The SAM-BA monitor simulator driven with raw bytes at chosen instants, as bossac would drive it:
// the text commands, the identification registers, S/R in USB (raw) and UART (XMODEM-CRC) mode, the
// flash controllers' register models, the word-copy applet, the Arduino X/Y/Z extensions, resets,
// and the bootloader region that nothing may change.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/crc.hpp"
#include "sim/registry.hpp"
#include "sim/samba/samba_monitor_device.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;
using samba::SambaMonitorDevice;

constexpr uint8_t kSoh = 0x01, kEot = 0x04, kAck = 0x06, kNak = 0x15, kCan = 0x18;

Bytes pattern(size_t length, uint8_t seed) {
    Bytes out(length);
    for (size_t i = 0; i < length; ++i) out[i] = static_cast<uint8_t>(seed + i * 13 + (i >> 7));
    return out;
}

// An XMODEM-CRC block, written out here from the XMODEM description.
Bytes xmodem_block(uint8_t number, const Bytes& data) {
    Bytes block{kSoh, number, static_cast<uint8_t>(~number)};
    Bytes payload(128, 0x00);
    std::copy(data.begin(), data.end(), payload.begin());
    block.insert(block.end(), payload.begin(), payload.end());
    uint16_t crc = core::crc16_xmodem(payload);
    block.push_back(static_cast<uint8_t>(crc >> 8));
    block.push_back(static_cast<uint8_t>(crc));
    return block;
}

uint32_t le32(const Bytes& b, size_t at = 0) {
    return uint32_t(b.at(at)) | uint32_t(b.at(at + 1)) << 8 | uint32_t(b.at(at + 2)) << 16 | uint32_t(b.at(at + 3)) << 24;
}

class Monitor {
public:
    Monitor(const std::string& protocol, const std::string& chip, bool timing = false) {
        DeviceOptions options;
        options.timing = timing;
        device_ = make_device(protocol, chip, options);
        monitor_ = dynamic_cast<SambaMonitorDevice*>(device_.get());
        EXPECT_NE(monitor_, nullptr);
        device_->reset(ResetCause::Pin, now_);
        if (protocol == "samba-uart") {
            EXPECT_EQ(text(Bytes{0x80, 0x80, '#'}), "\n\r>");  // autobaud, then the terminal prompt
        }
        EXPECT_EQ(text("N#"), "\n\r");
    }

    // Sends bytes (one microsecond apart) and returns what the device answered meanwhile.
    Bytes exchange(const Bytes& bytes) {
        for (uint8_t b : bytes) {
            device_->receive(b, now_);
            now_ += 1us;
        }
        device_->tick(now_);
        return take();
    }
    Bytes exchange(const std::string& command) { return exchange(Bytes(command.begin(), command.end())); }
    std::string text(const Bytes& bytes) {
        Bytes out = exchange(bytes);
        return {out.begin(), out.end()};
    }
    std::string text(const std::string& command) { return text(Bytes(command.begin(), command.end())); }

    Bytes take() {
        Bytes out;
        for (const auto& s : device_->take_output()) out.push_back(s.value);
        return out;
    }
    void wait(Clock::duration d) {
        now_ += d;
        device_->tick(now_);
    }

    uint32_t read_word(uint32_t address) {
        Bytes answer = exchange(fmt::format("w{:08X},4#", address));
        EXPECT_EQ(answer.size(), 4u) << fmt::format("w{:08X}", address);
        return answer.size() == 4 ? le32(answer) : 0xDEADBEEF;
    }
    uint8_t read_byte(uint32_t address) {
        Bytes answer = exchange(fmt::format("o{:08X},4#", address));
        EXPECT_EQ(answer.size(), 1u);
        return answer.empty() ? 0 : answer[0];
    }
    void write_word(uint32_t address, uint32_t value) {
        EXPECT_TRUE(exchange(fmt::format("W{:08X},{:08X}#", address, value)).empty());
    }
    void send_usb(uint32_t address, const Bytes& data) {
        EXPECT_TRUE(exchange(fmt::format("S{:08X},{:08X}#", address, data.size())).empty());
        EXPECT_TRUE(exchange(data).empty());
    }
    Bytes receive_usb(uint32_t address, uint32_t length) {
        return exchange(fmt::format("R{:08X},{:08X}#", address, length));
    }

    SambaMonitorDevice& device() { return *monitor_; }
    FlashMemory& flash() { return device_->flash(); }
    Clock::time_point now() const { return now_; }

private:
    std::unique_ptr<Device> device_;
    SambaMonitorDevice* monitor_ = nullptr;
    Clock::time_point now_{};
};

Bytes flash_bytes(FlashMemory& flash, uint32_t address, uint32_t length) {
    Bytes out(length);
    flash.read(address, out);
    return out;
}

// ---- commands and identification ----

TEST(SimSambaDevice, VersionStringsAnnounceTheExtensionsOnlyOnTheFlashBootloaders) {
    Monitor zero("samba", "samd21g18a");
    std::string v = zero.text("V#");
    EXPECT_NE(v.find("[Arduino:XYZ]"), std::string::npos) << v;
    EXPECT_EQ(v.substr(v.size() - 2), "\n\r");
    Monitor due("samba", "sam3x8e");
    v = due.text("V#");
    EXPECT_EQ(v.find("[Arduino"), std::string::npos) << v;
    EXPECT_EQ(v.substr(v.size() - 2), "\n\r");
    // Unknown commands and lone '#' get no answer.
    EXPECT_TRUE(due.exchange("#####Q12345678#").empty());
}

TEST(SimSambaDevice, IdentificationRegistersFollowBossasDetectionOrder) {
    Monitor d21("samba", "samd21g18a");
    EXPECT_EQ(d21.read_word(0x00000000), le32(flash_bytes(d21.flash(), 0, 4)));  // the bootloader's stack pointer
    EXPECT_EQ(d21.read_word(0xE000ED00), 0x410CC601u);
    EXPECT_EQ(d21.read_word(0x41002018) & 0xFFFF00FF, 0x10010005u);
    EXPECT_NE(d21.read_word(0x41002018), 0x10010005u) << "DID should carry a die revision the client must mask";
    EXPECT_EQ(d21.read_byte(0x00804000) & 0x7, 2u) << "BOOTPROT: 8 KiB";

    Monitor d51("samba", "samd51j19a");
    EXPECT_EQ(d51.read_word(0xE000ED00), 0x410FC241u);
    EXPECT_EQ(d51.read_word(0x41002018) & 0xFFFF00FF, 0x60060005u);
    EXPECT_NE(d51.read_word(4) & 0xFFF00000, 0x00800000u);

    Monitor sam3x("samba", "sam3x8e");
    EXPECT_NE(sam3x.read_word(0) & 0xFF000000, 0xEA000000u);
    EXPECT_EQ(sam3x.read_word(0xE000ED00), 0x412FC230u);
    EXPECT_EQ(sam3x.read_word(0x400E0740), 0u);
    EXPECT_EQ(sam3x.read_word(0x400E0940), 0x285E0A60u);
    EXPECT_EQ(sam3x.read_word(0x400E0944), 0u);

    Monitor sam4e("samba", "sam4e8e");
    EXPECT_EQ(sam4e.read_word(0xE000ED00), 0x410FC241u);
    EXPECT_EQ(sam4e.read_word(4) & 0xFFF00000, 0x00800000u) << "SAM4 reset vector points into the ROM";
    EXPECT_EQ(sam4e.read_word(0x400E0740), 0xA3CC0CE0u);
    EXPECT_EQ(sam4e.read_word(0x400E0744), 0x00120208u);
}

TEST(SimSambaDevice, AnUndecodedAddressStopsTheMonitorUntilReset) {
    Monitor due("samba", "sam3x8e");
    EXPECT_TRUE(due.exchange("wFFFFF240,4#").empty());  // the SAM7 CHIPID: nothing there on a Cortex-M
    EXPECT_TRUE(due.device().hung());
    EXPECT_TRUE(due.exchange("V#").empty());
    due.device().reset(ResetCause::Pin, due.now());
    EXPECT_FALSE(due.text("V#").empty());
}

TEST(SimSambaDevice, TerminalModeAnswersInText) {
    Monitor zero("samba", "samd21g18a");
    EXPECT_EQ(zero.text("T#"), "\n\r\n\r>");
    EXPECT_EQ(zero.text("wE000ED00,4#"), "\n\r0x410CC601\n\r>");
    EXPECT_EQ(zero.text("N#"), "\n\r");
    EXPECT_EQ(zero.exchange("wE000ED00,4#").size(), 4u);
}

// ---- data in USB and UART mode ----

TEST(SimSambaDevice, UsbSendAndReceiveMoveRawBytes) {
    Monitor rom("samba", "sam4e8e");
    Bytes data = pattern(300, 3);
    rom.send_usb(0x20002000, data);
    EXPECT_EQ(rom.receive_usb(0x20002000, 300), data);
    EXPECT_EQ(rom.receive_usb(0x20002000, 64), Bytes(data.begin(), data.begin() + 64)) << "the ROM reads 64 bytes right";
    rom.exchange("H20002000,BEEF#");
    rom.exchange("O20002002,7A#");
    EXPECT_EQ(rom.read_word(0x20002000), uint32_t(data[3]) << 24 | 0x7A0000u | 0xBEEFu);
    EXPECT_EQ(rom.exchange("h20002000,4#"), (Bytes{0xEF, 0xBE}));
}

TEST(SimSambaDevice, ArduinoBootloadersGarbleUsbReadsOf64BytesOrMore) {
    Monitor zero("samba", "samd21g18a");
    Bytes data = pattern(128, 9);
    zero.send_usb(0x20005000, data);
    EXPECT_EQ(zero.receive_usb(0x20005000, 63), Bytes(data.begin(), data.begin() + 63));
    Bytes long_read = zero.receive_usb(0x20005000, 128);
    ASSERT_EQ(long_read.size(), 128u);
    EXPECT_TRUE(std::equal(data.begin(), data.begin() + 63, long_read.begin()));
    EXPECT_NE(long_read[63], data[63]) << "from the 64th byte on the data is wrong";
    Bytes sixty_four = zero.receive_usb(0x20005000, 64);
    EXPECT_NE(sixty_four, Bytes(data.begin(), data.begin() + 64)) << "64 bytes are already too many";
    EXPECT_EQ(zero.device().stats().garbled_usb_reads, 2u);
    // UART reads are not affected.
    Monitor uart("samba-uart", "samd21g18a");
    EXPECT_EQ(uart.exchange(fmt::format("S{:08X},{:08X}#", 0x20005000, 128)), Bytes{'C'});
    EXPECT_EQ(uart.exchange(xmodem_block(1, data)), Bytes{kAck});
    EXPECT_EQ(uart.exchange(Bytes{kEot}), Bytes{kAck});
    EXPECT_TRUE(uart.exchange("R20005000,00000080#").empty()) << "the sender waits for 'C'";
    Bytes block = uart.exchange(Bytes{'C'});
    EXPECT_EQ(block, xmodem_block(1, data));
    EXPECT_EQ(uart.exchange(Bytes{kAck}), Bytes{kEot});
    EXPECT_TRUE(uart.exchange(Bytes{kAck}).empty());
    EXPECT_EQ(uart.read_word(0xE000ED00), 0x410CC601u) << "back to commands after the transfer";
}

TEST(SimSambaDevice, UartStartsWithAutobaudAndMovesDataAsXmodemBlocks) {
    Monitor uart("samba-uart", "sam3x8e");
    Bytes data = pattern(200, 1);
    EXPECT_EQ(uart.exchange("S20002000,000000C8#"), Bytes{'C'});
    EXPECT_EQ(uart.exchange(xmodem_block(1, Bytes(data.begin(), data.begin() + 128))), Bytes{kAck});
    // A damaged block is refused, then accepted when it comes again intact.
    Bytes second = xmodem_block(2, Bytes(data.begin() + 128, data.end()));
    Bytes damaged = second;
    damaged[40] ^= 0x10;
    EXPECT_EQ(uart.exchange(damaged), Bytes{kNak});
    EXPECT_EQ(uart.exchange(second), Bytes{kAck});
    // The host missed our ACK and sends the block again: acknowledged, not written twice.
    EXPECT_EQ(uart.exchange(second), Bytes{kAck});
    EXPECT_EQ(uart.exchange(Bytes{kEot}), Bytes{kAck});
    EXPECT_EQ(uart.device().stats().xmodem_blocks_refused, 1u);

    EXPECT_TRUE(uart.exchange("R20002000,000000C8#").empty());
    Bytes first = uart.exchange(Bytes{'C'});
    ASSERT_EQ(first.size(), 133u);
    EXPECT_EQ(uart.exchange(Bytes{kNak}), first) << "NAK asks for the same block again";
    Bytes next = uart.exchange(Bytes{kAck});
    ASSERT_EQ(next.size(), 133u);
    EXPECT_EQ(next[1], 2);
    Bytes back(first.begin() + 3, first.begin() + 131);
    back.insert(back.end(), next.begin() + 3, next.begin() + 3 + 72);
    EXPECT_EQ(back, data);
    EXPECT_EQ(uart.exchange(Bytes{kAck}), Bytes{kEot});
    EXPECT_EQ(uart.exchange(Bytes{kNak}), Bytes{kEot});
    EXPECT_TRUE(uart.exchange(Bytes{kAck}).empty());
}

TEST(SimSambaDevice, XmodemReceiverDropsAStalledBlockAndAcceptsCancel) {
    Monitor uart("samba-uart", "samd21g18a");
    EXPECT_EQ(uart.exchange("S20005000,00000080#"), Bytes{'C'});
    Bytes block = xmodem_block(1, pattern(128, 4));
    EXPECT_TRUE(uart.exchange(Bytes(block.begin(), block.begin() + 60)).empty());
    uart.wait(SambaMonitorDevice::kXmodemByteTimeout + 1ms);
    EXPECT_EQ(uart.take(), Bytes{kNak});
    EXPECT_EQ(uart.exchange(block), Bytes{kAck});
    EXPECT_EQ(uart.exchange(Bytes{kEot}), Bytes{kAck});
    // CAN leaves the transfer; '#' after it are empty commands.
    EXPECT_EQ(uart.exchange("S20006000,00000100#"), Bytes{'C'});
    EXPECT_TRUE(uart.exchange(Bytes{kCan, '#', '#'}).empty());
    EXPECT_EQ(uart.read_word(0x20005000), le32(pattern(128, 4)));
    // Nothing sent: 'C' again every few seconds.
    EXPECT_EQ(uart.exchange("S20006000,00000100#"), Bytes{'C'});
    uart.wait(SambaMonitorDevice::kXmodemRequestInterval + 1ms);
    EXPECT_EQ(uart.take(), Bytes{'C'});
}

// ---- flash controllers ----

TEST(SimSambaDevice, Samd21NvmctrlErasesRowsAndWritesPagesFromThePageBuffer) {
    Monitor zero("samba", "samd21g18a", true);
    constexpr uint32_t kNvm = 0x41004000, kCtrlA = kNvm, kCtrlB = kNvm + 4, kIntFlag = kNvm + 0x14,
                       kStatus = kNvm + 0x18, kAddr = kNvm + 0x1C;
    zero.write_word(kCtrlB, zero.read_word(kCtrlB) | 0x80);  // manual page write
    zero.write_word(kCtrlA, 0xA544);                         // page buffer clear
    Bytes page = pattern(64, 7);
    zero.send_usb(0x2040, page);  // stores into flash space fill the page buffer
    EXPECT_EQ(flash_bytes(zero.flash(), 0x2040, 64), Bytes(64, 0xFF)) << "nothing written before WP";
    zero.write_word(kAddr, 0x2040 / 2);
    zero.write_word(kCtrlA, 0xA504);
    EXPECT_EQ(zero.read_word(kIntFlag) & 1, 0u) << "busy writing the page";
    zero.wait(3ms);
    EXPECT_EQ(zero.read_word(kIntFlag) & 3, 1u);
    EXPECT_EQ(flash_bytes(zero.flash(), 0x2040, 64), page);

    // Row erase: the whole 256-byte row around ADDR.
    zero.write_word(kAddr, 0x2080 / 2);
    zero.write_word(kCtrlA, 0xA502);
    zero.wait(7ms);
    EXPECT_EQ(zero.read_word(kIntFlag) & 3, 1u);
    EXPECT_EQ(flash_bytes(zero.flash(), 0x2000, 256), Bytes(256, 0xFF));

    // The bootloader's rows: LOCKE, nothing erased, and the attempt is on record.
    zero.write_word(kAddr, 0x0100 / 2);
    zero.write_word(kCtrlA, 0xA502);
    EXPECT_EQ(zero.read_word(kIntFlag) & 2, 2u);
    EXPECT_EQ(zero.read_word(kStatus) & 0x08, 0x08u);
    EXPECT_TRUE(zero.flash().protected_ranges_intact());
    EXPECT_EQ(zero.flash().counters().violations, 1u);
    zero.write_word(kIntFlag, 2);
    zero.write_word(kStatus, 0x1E);
    EXPECT_EQ(zero.read_word(kIntFlag) & 2, 0u);
    EXPECT_EQ(zero.read_word(kStatus) & 0x1E, 0u);

    // Without the 0xA5 key the command is refused (PROGE).
    zero.write_word(kCtrlA, 0x0002);
    EXPECT_EQ(zero.read_word(kStatus) & 0x04, 0x04u);
}

TEST(SimSambaDevice, Samd21AutomaticPageWriteOnTheLastWordWithoutManw) {
    Monitor zero("samba", "samd21g18a");
    ASSERT_EQ(zero.read_word(0x41004004) & 0x80, 0u);
    zero.write_word(0x41004000, 0xA544);
    for (uint32_t offset = 0; offset < 64; offset += 4) zero.write_word(0x3000 + offset, 0x11223344 + offset);
    EXPECT_EQ(zero.read_word(0x3000), 0x11223344u);
    EXPECT_EQ(zero.read_word(0x303C), 0x11223344u + 60);
}

TEST(SimSambaDevice, Samd51NvmctrlErasesBlocksAndWritesPages) {
    Monitor metro("samba", "samd51j19a", true);
    constexpr uint32_t kNvm = 0x41004000, kCtrlB = kNvm + 4, kIntFlag = kNvm + 0x10, kStatus = kNvm + 0x12,
                       kAddr = kNvm + 0x14;
    EXPECT_EQ(metro.read_byte(kStatus + 1) & 0x0F, 13u) << "STATUS.BOOTPROT: 16 KiB";
    metro.write_word(kCtrlB, 0xA515);
    Bytes page = pattern(512, 2);
    metro.send_usb(0x4200, page);
    metro.write_word(kAddr, 0x4200);
    metro.write_word(kCtrlB, 0xA503);
    EXPECT_EQ(metro.read_byte(kStatus) & 1, 0u);
    metro.wait(3ms);
    EXPECT_EQ(metro.read_byte(kStatus) & 1, 1u);
    EXPECT_EQ(flash_bytes(metro.flash(), 0x4200, 512), page);
    metro.write_word(kAddr, 0x5000);
    metro.write_word(kCtrlB, 0xA501);
    metro.wait(51ms);
    EXPECT_EQ(flash_bytes(metro.flash(), 0x4000, 8192), Bytes(8192, 0xFF));
    EXPECT_EQ(metro.read_byte(kIntFlag) & 1, 1u) << "DONE";
    metro.write_word(kAddr, 0x2000);
    metro.write_word(kCtrlB, 0xA501);
    EXPECT_EQ(metro.read_byte(kIntFlag) & 0x08, 0x08u) << "LOCKE: the bootloader's block";
    EXPECT_TRUE(metro.flash().protected_ranges_intact());
}

TEST(SimSambaDevice, EefcWritesPagesFromTheLatchPerPlaneAndTheRomReadsFlashAsZeros) {
    Monitor due("samba", "sam3x8e", true);
    constexpr uint32_t kEefc0 = 0x400E0A00, kEefc1 = 0x400E0C00, kFcr = 4, kFsr = 8, kFrr = 0xC;
    Bytes page = pattern(256, 5);
    due.send_usb(0x80100, page);                        // page 1 of plane 0: into the latch
    due.write_word(kEefc0 + kFcr, 0x5A000000 | 1 << 8 | 0x03);  // EWP page 1
    EXPECT_EQ(due.read_word(kEefc0 + kFsr) & 1, 0u);
    due.wait(5ms);
    EXPECT_EQ(due.read_word(kEefc0 + kFsr), 1u);
    EXPECT_EQ(flash_bytes(due.flash(), 0x80100, 256), page);
    EXPECT_EQ(due.receive_usb(0x80100, 16), Bytes(16, 0)) << "the SAM3X ROM reads flash as zeros";

    // The second plane has its own controller and numbers its pages from its start (0xC0000).
    due.send_usb(0xC0000, page);
    due.write_word(kEefc1 + kFcr, 0x5A000000 | 0 << 8 | 0x03);
    due.wait(5ms);
    EXPECT_EQ(flash_bytes(due.flash(), 0xC0000, 256), page);

    // The word-copy applet: parameters at +0x20.., copies flash into SRAM where R can read it.
    constexpr uint32_t kApplet = 0x20001000;
    Bytes applet(0x34, 0);
    auto put = [&](uint32_t offset, uint32_t v) {
        for (int i = 0; i < 4; ++i) applet[offset + i] = static_cast<uint8_t>(v >> (8 * i));
    };
    put(0x20, 0x20010000);
    put(0x24, kApplet | 1);
    put(0x28, 0x20002000);
    put(0x2C, 0x80100);
    put(0x30, 64);
    due.send_usb(kApplet, applet);
    EXPECT_TRUE(due.exchange(fmt::format("G{:08X}#", kApplet + 0x20)).empty());
    EXPECT_EQ(due.receive_usb(0x20002000, 256), page);
    EXPECT_EQ(due.device().stats().applet_calls, 1u);

    // A bad key: FCMDE, cleared once FSR has been read.
    due.write_word(kEefc0 + kFcr, 0x12000003);
    EXPECT_EQ(due.read_word(kEefc0 + kFsr) & 2, 2u);
    EXPECT_EQ(due.read_word(kEefc0 + kFsr) & 2, 0u);

    // GPNVM bit 1 (boot from flash): clear at first, set by SGPB, read by GGPB through FRR.
    due.write_word(kEefc0 + kFcr, 0x5A00000D);
    EXPECT_EQ(due.read_word(kEefc0 + kFrr), 0u);
    due.write_word(kEefc0 + kFcr, 0x5A00010B);
    due.write_word(kEefc0 + kFcr, 0x5A00000D);
    EXPECT_EQ(due.read_word(kEefc0 + kFrr), 2u);

    // A locked region refuses EWP (FLOCKE).
    due.write_word(kEefc0 + kFcr, 0x5A000008 | 0x40 << 8);  // SLB on page 0x40 (region 1)
    due.send_usb(0x84000, page);
    due.write_word(kEefc0 + kFcr, 0x5A000003 | 0x40 << 8);
    EXPECT_EQ(due.read_word(kEefc0 + kFsr) & 4, 4u);
    EXPECT_EQ(flash_bytes(due.flash(), 0x84000, 256), Bytes(256, 0xFF));
}

TEST(SimSambaDevice, TheAppletMustBeThumbCode) {
    Monitor rom("samba", "sam4e8e");
    Bytes params(0x14, 0);
    params[0] = 0x00, params[1] = 0x00, params[2] = 0x02, params[3] = 0x20;  // stack 0x20020000
    params[4] = 0x00, params[5] = 0x10, params[6] = 0x00, params[7] = 0x20;  // entry 0x20001000: even
    rom.send_usb(0x20001020, params);
    rom.exchange("G20001020#");
    EXPECT_TRUE(rom.device().hung());
}

// ---- Arduino/Adafruit extensions ----

TEST(SimSambaDevice, XErasesToTheEndButNeverTheBootloader) {
    Monitor zero("samba", "samd21g18a", true);
    zero.flash().load(0x2000, pattern(0x1000, 1));
    zero.flash().load(0x3FF00, pattern(0x100, 2));
    EXPECT_TRUE(zero.exchange("X00002000#").empty()) << "the answer waits for the erase";
    zero.wait(991 * samba::SamFlashTiming::kD21RowErase);
    EXPECT_TRUE(zero.take().empty()) << "992 rows take 992 row-erase times";
    zero.wait(samba::SamFlashTiming::kD21RowErase);
    EXPECT_EQ(zero.take(), (Bytes{'X', '\n', '\r'}));
    EXPECT_EQ(flash_bytes(zero.flash(), 0x2000, 0x3E000), Bytes(0x3E000, 0xFF));
    EXPECT_EQ(zero.flash().counters().violations, 0u);

    // `bossac --offset=0 -e`: the bootloader's rows are refused by BOOTPROT, the rest erased.
    zero.flash().load(0x2000, pattern(0x100, 3));
    zero.exchange("X00000000#");
    zero.wait(10s);
    EXPECT_EQ(zero.take(), (Bytes{'X', '\n', '\r'}));
    EXPECT_TRUE(zero.flash().protected_ranges_intact());
    EXPECT_EQ(zero.flash().counters().violations, 32u);
    EXPECT_EQ(flash_bytes(zero.flash(), 0x2000, 0x100), Bytes(0x100, 0xFF));
}

TEST(SimSambaDevice, YCopiesSramToErasedFlashAndZChecksIt) {
    Monitor metro("samba", "samd51j19a");
    Bytes data = pattern(4096, 6);
    metro.send_usb(0x20004034, data);
    EXPECT_EQ(metro.text("Y20004034,0#"), "Y\n\r");
    EXPECT_EQ(metro.text("Y00004000,00001000#"), "Y\n\r");
    EXPECT_EQ(flash_bytes(metro.flash(), 0x4000, 4096), data);
    EXPECT_EQ(metro.text("Z00004000,00001000#"), fmt::format("Z{:08X}#\n\r", core::crc16_xmodem(data)));
    // Into the bootloader: refused, the placeholder stays.
    EXPECT_EQ(metro.text("Y00001000,00000200#"), "Y\n\r");
    EXPECT_TRUE(metro.flash().protected_ranges_intact());
    EXPECT_EQ(metro.flash().counters().violations, 1u);
}

TEST(SimSambaDevice, TheRomMonitorsHaveNoExtensions) {
    Monitor rom("samba", "sam4e8e");
    EXPECT_TRUE(rom.exchange("X00400000#").empty());
    EXPECT_TRUE(rom.exchange("Y20002000,0#").empty());
    EXPECT_TRUE(rom.exchange("Z00400000,00000100#").empty());
    EXPECT_EQ(rom.flash().counters().erases, 0u);
}

// ---- leaving the monitor ----

TEST(SimSambaDevice, SoftwareResetStartsTheApplicationWhenThereIsOne) {
    Monitor zero("samba", "samd21g18a");
    zero.write_word(0xE000ED0C, 0x05FA0004);  // AIRCR SYSRESETREQ, application erased
    EXPECT_TRUE(zero.device().in_bootloader());
    EXPECT_FALSE(zero.text("V#").empty());
    zero.flash().load(0x2000, pattern(64, 1));
    zero.write_word(0xE000ED0C, 0x05FA0004);
    EXPECT_TRUE(zero.device().application_running());
    EXPECT_TRUE(zero.exchange("V#").empty());

    Monitor due("samba", "sam3x8e");
    due.write_word(0x400E1A00, 0xA500000D);  // RSTC with GPNVM bit 1 clear: the ROM again
    EXPECT_TRUE(due.device().in_bootloader());
    due.write_word(0x400E0A04, 0x5A00010B);  // SGPB 1
    due.write_word(0x400E1A00, 0xA500000D);
    EXPECT_TRUE(due.device().application_running());
    EXPECT_EQ(due.device().stats().software_resets, 2u);
}

TEST(SimSambaDevice, BothProtocolsHaveEveryPersonality) {
    for (const char* protocol : {"samba", "samba-uart"}) {
        const auto& info = find_simulator(protocol);
        EXPECT_EQ(info.default_chip, "samd21g18a");
        std::vector<std::string> names;
        for (const auto& p : info.personalities) names.push_back(p.bootloader);
        EXPECT_EQ(names, (std::vector<std::string>{"arduino_zero", "adafruit_samd51", "samba_rom"}));
        for (const char* chip : {"samd21g18a", "samd51j19a", "sam3x8e", "sam4e8e"}) {
            auto device = make_device(protocol, chip, {});
            EXPECT_NE(device->describe().find(chip), std::string::npos);
        }
    }
}

}  // namespace
}  // namespace mcuflash::sim

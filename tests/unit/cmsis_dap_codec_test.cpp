// CMSIS-DAP commands as bytes: each vector worked out by hand from the CMSIS-DAP specification's
// command descriptions (request and response layouts, little-endian fields).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "link/swd/cmsis_dap_codec.hpp"

using namespace mcuflash::link::swd::dap;
using Bytes = std::vector<uint8_t>;
using mcuflash::core::Error;
using mcuflash::core::ErrorKind;

TEST(CmsisDapCodec, InfoAsksByIdAndAnswersLengthThenValue) {
    EXPECT_EQ(encode_info(InfoId::PacketSize), (Bytes{0x00, 0xFF}));
    EXPECT_EQ(encode_info(InfoId::PacketCount), (Bytes{0x00, 0xFE}));
    EXPECT_EQ(encode_info(InfoId::Capabilities), (Bytes{0x00, 0xF0}));
    EXPECT_EQ(encode_info(InfoId::Product), (Bytes{0x00, 0x02}));
    // Packet size: a 2-byte short, 512.
    auto size = decode_info(Bytes{0x00, 0x02, 0x00, 0x02});
    EXPECT_EQ(info_number(size), 512u);
    // Packet count: a byte.
    EXPECT_EQ(info_number(decode_info(Bytes{0x00, 0x01, 0x04, 0xAA, 0xBB})), 4u);
    // A string with its NUL; a value the probe does not have: length 0.
    EXPECT_EQ(info_string(decode_info(Bytes{0x00, 0x06, 'D', 'A', 'P', '1', '2', 0x00})), "DAP12");
    EXPECT_TRUE(decode_info(Bytes{0x00, 0x00}).empty());
    // A length longer than the packet is refused.
    EXPECT_THROW(decode_info(Bytes{0x00, 0x09, 'x'}), Error);
}

TEST(CmsisDapCodec, SetupCommandsCarryTheirFieldsLittleEndian) {
    EXPECT_EQ(encode_connect(kPortSwd), (Bytes{0x02, 0x01}));
    EXPECT_EQ(decode_connect(Bytes{0x02, 0x01}), 1);
    EXPECT_EQ(decode_connect(Bytes{0x02, 0x00}), 0);  // refused
    EXPECT_EQ(encode_disconnect(), (Bytes{0x03}));
    // 4 MHz = 0x003D0900.
    EXPECT_EQ(encode_swj_clock(4'000'000), (Bytes{0x11, 0x00, 0x09, 0x3D, 0x00}));
    // No idle cycles, 100 WAIT retries (0x0064), 0x1234 match retries.
    EXPECT_EQ(encode_transfer_configure(0, 100, 0x1234), (Bytes{0x04, 0x00, 0x64, 0x00, 0x34, 0x12}));
    // Turnaround 1 clock is field value 0; the data phase is bit 2.
    EXPECT_EQ(encode_swd_configure(1, false), (Bytes{0x13, 0x00}));
    EXPECT_EQ(encode_swd_configure(2, true), (Bytes{0x13, 0x05}));
    EXPECT_EQ(encode_host_status(HostStatus::Connected, true), (Bytes{0x01, 0x00, 0x01}));
    EXPECT_EQ(encode_host_status(HostStatus::Running, false), (Bytes{0x01, 0x01, 0x00}));
    EXPECT_EQ(encode_write_abort(0x1E), (Bytes{0x08, 0x00, 0x1E, 0x00, 0x00, 0x00}));
    // nRESET (bit 7) driven low, wait 0 us; the answer is the pins read back.
    EXPECT_EQ(encode_swj_pins(0x00, kPinNreset, 0), (Bytes{0x10, 0x00, 0x80, 0, 0, 0, 0}));
    EXPECT_EQ(encode_swj_pins(kPinNreset, kPinNreset, 1000), (Bytes{0x10, 0x80, 0x80, 0xE8, 0x03, 0, 0}));
    EXPECT_EQ(decode_swj_pins(Bytes{0x10, 0x83}), 0x83);
    EXPECT_TRUE(decode_status(Bytes{0x11, 0x00}, Command::SwjClock));
    EXPECT_FALSE(decode_status(Bytes{0x11, 0xFF}, Command::SwjClock));
}

TEST(CmsisDapCodec, SwjSequenceCountsBitsAnd256IsZero) {
    // The 16-bit JTAG-to-SWD select 0xE79E goes LSB first: 0x9E then 0xE7.
    const uint8_t select[] = {0x9E, 0xE7};
    EXPECT_EQ(encode_swj_sequence(select, 16), (Bytes{0x12, 0x10, 0x9E, 0xE7}));
    // A 51-bit line reset takes 7 bytes.
    const uint8_t ones[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    auto reset = encode_swj_sequence(ones, 51);
    EXPECT_EQ(reset.size(), 2u + 7u);
    EXPECT_EQ(reset[1], 51);
    std::vector<uint8_t> many(32, 0xFF);
    EXPECT_EQ(encode_swj_sequence(many, 256)[1], 0x00);
    EXPECT_THROW(encode_swj_sequence(select, 17), Error);  // not enough bytes for 17 bits
}

TEST(CmsisDapCodec, TransferRequestBytes) {
    // bit 0 APnDP, bit 1 RnW, bits 3:2 A[3:2], bit 4 value match, bit 5 match mask.
    EXPECT_EQ(request_byte(TransferRequest::read(false, 0x0)), 0x02);   // DP DPIDR
    EXPECT_EQ(request_byte(TransferRequest::write(false, 0x8, 0)), 0x08);  // DP SELECT
    EXPECT_EQ(request_byte(TransferRequest::write(true, 0x0, 0)), 0x01);   // AP CSW
    EXPECT_EQ(request_byte(TransferRequest::write(true, 0x4, 0)), 0x05);   // AP TAR
    EXPECT_EQ(request_byte(TransferRequest::read(true, 0xC)), 0x0F);       // AP DRW
    EXPECT_EQ(request_byte(TransferRequest::read_until(false, 0x4, 0)), 0x16);  // DP CTRL/STAT, value match
    EXPECT_EQ(request_byte(TransferRequest::match_mask(0)), 0x20);
}

TEST(CmsisDapCodec, TransferPacksRequestsWithTheirDataWords) {
    const TransferRequest requests[] = {
        TransferRequest::write(false, 0x8, 0x000000F0),       // SELECT bank 0xF
        TransferRequest::read(true, 0xC),                     // IDR
        TransferRequest::match_mask(0xA0000000),
        TransferRequest::read_until(false, 0x4, 0xA0000000),  // power-up ACKs
    };
    EXPECT_EQ(encode_transfer(requests),
              (Bytes{0x05, 0x00, 0x04,                          // command, DAP index, count
                     0x08, 0xF0, 0x00, 0x00, 0x00,              // write SELECT
                     0x0F,                                      // read AP 0xC
                     0x20, 0x00, 0x00, 0x00, 0xA0,              // match mask
                     0x16, 0x00, 0x00, 0x00, 0xA0}));           // value-match read of CTRL/STAT
    EXPECT_EQ(request_size(requests[0]), 5u);
    EXPECT_EQ(request_size(requests[1]), 1u);
    EXPECT_EQ(response_size(requests[1]), 4u);
    EXPECT_EQ(response_size(requests[3]), 0u);  // a value match returns no data
    // All done: count 4, OK; data only for the plain read.
    auto ok = decode_transfer(Bytes{0x05, 0x04, 0x01, 0x11, 0x00, 0x77, 0x04}, requests);
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.count, 4u);
    ASSERT_EQ(ok.reads.size(), 1u);
    EXPECT_EQ(ok.reads[0], 0x04770011u);  // an AHB-AP IDR
}

TEST(CmsisDapCodec, TransferAnswersSayWhereAndWhyItStopped) {
    const TransferRequest requests[] = {TransferRequest::read(false, 0x0), TransferRequest::write(true, 0xC, 1),
                                        TransferRequest::read(true, 0xC)};
    // The write was answered FAULT: one done, ack 4, the first read's data only.
    auto fault = decode_transfer(Bytes{0x05, 0x01, 0x04, 0x77, 0x14, 0xA0, 0x1B}, requests);
    EXPECT_FALSE(fault.ok());
    EXPECT_EQ(fault.count, 1u);
    EXPECT_EQ(fault.ack, kAckFault);
    ASSERT_EQ(fault.reads.size(), 1u);
    EXPECT_EQ(fault.reads[0], 0x1BA01477u);
    // WAIT past the retries, before anything was done.
    auto wait = decode_transfer(Bytes{0x05, 0x00, 0x02}, requests);
    EXPECT_EQ(wait.ack, kAckWait);
    EXPECT_TRUE(wait.reads.empty());
    // No target: ack 7.
    EXPECT_EQ(decode_transfer(Bytes{0x05, 0x00, 0x07}, requests).ack, kAckNone);
    // Parity error on the first read: bit 3.
    auto parity = decode_transfer(Bytes{0x05, 0x00, 0x09}, requests);
    EXPECT_TRUE(parity.protocol_error);
    EXPECT_FALSE(parity.ok());
    // Value mismatch: bit 4 with ack OK.
    const TransferRequest poll[] = {TransferRequest::match_mask(1), TransferRequest::read_until(true, 0xC, 1)};
    auto mismatch = decode_transfer(Bytes{0x05, 0x01, 0x11}, poll);
    EXPECT_TRUE(mismatch.value_mismatch);
    EXPECT_FALSE(mismatch.ok());
    // More done than asked, or data missing, is the probe out of step.
    EXPECT_THROW(decode_transfer(Bytes{0x05, 0x04, 0x01}, requests), Error);
    EXPECT_THROW(decode_transfer(Bytes{0x05, 0x03, 0x01, 0x00}, requests), Error);
}

TEST(CmsisDapCodec, TransferBlockCountsAreShortsAndReadsComeBack) {
    EXPECT_EQ(encode_transfer_block_read(true, 0xC, 3), (Bytes{0x06, 0x00, 0x03, 0x00, 0x0E | 0x01}));
    const uint32_t words[] = {0x11223344, 0xAABBCCDD};
    EXPECT_EQ(encode_transfer_block_write(true, 0xC, words),
              (Bytes{0x06, 0x00, 0x02, 0x00, 0x0D, 0x44, 0x33, 0x22, 0x11, 0xDD, 0xCC, 0xBB, 0xAA}));
    auto read = decode_transfer_block(Bytes{0x06, 0x02, 0x00, 0x01, 1, 0, 0, 0, 2, 0, 0, 0}, 2);
    EXPECT_TRUE(read.ok());
    EXPECT_EQ(read.reads, (std::vector<uint32_t>{1, 2}));
    auto fault = decode_transfer_block(Bytes{0x06, 0x01, 0x00, 0x04, 9, 0, 0, 0}, 2);
    EXPECT_EQ(fault.count, 1u);
    EXPECT_EQ(fault.ack, kAckFault);
    EXPECT_EQ(fault.reads, (std::vector<uint32_t>{9}));
    // A 64-byte packet holds 14 words of a block (5 header bytes on the way out).
    EXPECT_EQ(block_capacity(64), 14u);
    EXPECT_EQ(block_capacity(512), 126u);
}

TEST(CmsisDapCodec, AnAnswerToAnotherCommandIsRefused) {
    try {
        decode_status(Bytes{0xFF}, Command::SwdConfigure);
        FAIL() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Protocol);
        EXPECT_NE(std::string(e.what()).find("does not know the command"), std::string::npos) << e.what();
    }
    EXPECT_THROW(decode_connect(Bytes{}), Error);
}

TEST(CmsisDapCodec, FindsTheBulkInterfaceInAConfigurationDescriptor) {
    const Bytes configuration = {
        9, 2, 48, 0, 2, 1, 0, 0x80, 50,          // configuration: 2 interfaces
        9, 4, 0, 0, 2, 0xFF, 0, 0, 4,            // interface 0: vendor, string 4
        7, 5, 0x01, 0x02, 0x40, 0x00, 0,         // bulk OUT 01, 64 bytes
        7, 5, 0x81, 0x02, 0x40, 0x00, 0,         // bulk IN 81
        9, 4, 1, 0, 1, 0x03, 0, 0, 5,            // interface 1: HID, string 5
        7, 5, 0x82, 0x03, 0x40, 0x00, 1,         // interrupt IN
    };
    auto bulk = vendor_bulk_interfaces(configuration);
    ASSERT_EQ(bulk.size(), 1u);
    EXPECT_EQ(bulk[0].interface, 0);
    EXPECT_EQ(bulk[0].string_index, 4);
    EXPECT_EQ(bulk[0].out, 0x01);
    EXPECT_EQ(bulk[0].in, 0x81);
    EXPECT_EQ(bulk[0].packet_size, 64);
    auto hid = hid_interfaces(configuration);
    ASSERT_EQ(hid.size(), 1u);
    EXPECT_EQ(hid[0], (std::pair<uint8_t, uint8_t>{1, 5}));
}

// --probe SPEC (link/swd/open_probe.hpp).
#include "link/swd/open_probe.hpp"

TEST(CmsisDapProbeSpec, NamesAnyProbeOneByUsbIdSerialOrPort) {
    using mcuflash::link::swd::parse_probe_spec;
    auto any = parse_probe_spec("cmsis-dap");
    EXPECT_FALSE(any.vendor.has_value());
    EXPECT_TRUE(any.serial.empty() && any.port_path.empty());
    auto by_id = parse_probe_spec("cmsis-dap:2e8a:000c");
    EXPECT_EQ(by_id.vendor, 0x2E8A);
    EXPECT_EQ(by_id.product, 0x000C);
    auto by_serial = parse_probe_spec("cmsis-dap:0d28:0204:0240000034544e45");
    EXPECT_EQ(by_serial.serial, "0240000034544e45");
    EXPECT_EQ(parse_probe_spec("cmsis-dap:1-1.4").port_path, "1-1.4");
    for (const char* bad : {"cmsis-dapx", "stlink", "cmsis-dap:zz", "cmsis-dap:0d28"}) {
        try {
            parse_probe_spec(bad);
            ADD_FAILURE() << bad << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Usage) << bad;
            EXPECT_NE(e.hint().find("cmsis-dap:VID:PID"), std::string::npos) << e.hint();
        }
    }
    EXPECT_TRUE(mcuflash::link::swd::is_probe_spec("cmsis-dap:1-2"));
    EXPECT_FALSE(mcuflash::link::swd::is_probe_spec("usb:0d28:0204"));
}

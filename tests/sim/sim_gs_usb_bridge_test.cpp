// The simulated Klipper USB-to-CAN bridge (sim/gs_usb): CAN bit times with stuffing, the
// gs_host_frame layout, the vendor requests the kernel's gs_usb driver sends, the bridge as a
// Klipper node, and mcuflash's Katapult client flashing a node behind it through gs_usb frames on
// a simulated clock (the bus's serial bit timing decides how long that takes).
#include <gtest/gtest.h>

#include <set>

#include "core/crc.hpp"
#include "core/error.hpp"
#include "link/can_stream.hpp"
#include "protocol/katapult/can_admin.hpp"
#include "protocol/katapult/client.hpp"
#include "sim/gs_usb/can_bit_timing.hpp"
#include "sim/gs_usb/gs_usb_bridge.hpp"

namespace {

using namespace mcuflash;
using namespace mcuflash::sim::gs_usb;
using Bytes = std::vector<uint8_t>;
using core::Clock;

std::vector<uint8_t> bits_of(std::span<const uint8_t> bytes) {
    std::vector<uint8_t> bits;
    for (uint8_t b : bytes)
        for (int i = 7; i >= 0; --i) bits.push_back((b >> i) & 1);
    return bits;
}

TEST(CanBitTiming, Crc15CheckValue) {
    const std::string text = "123456789";
    EXPECT_EQ(can_crc15(bits_of({reinterpret_cast<const uint8_t*>(text.data()), text.size()})), 0x059E);
}

TEST(CanBitTiming, FrameBitsCountStuffing) {
    // Counted by an independent script from ISO 11898-1's frame layout.
    const Bytes zeros(8, 0x00), ones(8, 0xFF), alternating(8, 0x55), one_zero{0x00};
    const Bytes send_block_head{0x01, 0x88, 0x12, 0x11, 0x00, 0x20, 0x00, 0x08};
    struct Case { uint32_t id; const Bytes* data; unsigned stuff; uint16_t crc; };
    for (const Case& c : {Case{0x000, &zeros, 16, 0x145B}, Case{0x3F0, &one_zero, 4, 0x61BD},
                          Case{0x200, &send_block_head, 10, 0x5EB2}, Case{0x7FF, &ones, 15, 0x4C89},
                          Case{0x555, &alternating, 1, 0x1B04}}) {
        const auto bits = can_frame_bits({c.id, false, false, *c.data});
        EXPECT_EQ(bits.unstuffed, 47 + 8 * c.data->size()) << c.id;
        EXPECT_EQ(bits.stuff, c.stuff) << c.id;
        EXPECT_EQ(bits.crc, c.crc) << c.id;
    }
    // 29-bit ids: 67 + 8n before stuffing; a remote frame has no data field.
    EXPECT_EQ(can_frame_bits({0x12345678 & 0x1FFFFFFF, true, false, alternating}).unstuffed, 67u + 64u);
    EXPECT_EQ(can_frame_bits({0x123, false, true, alternating}).unstuffed, 47u);
    // 111 + 16 bits at 1 Mbit/s and at 500 kbit/s.
    EXPECT_EQ(can_frame_time({0, false, false, zeros}, 1'000'000), std::chrono::microseconds(127));
    EXPECT_EQ(can_frame_time({0, false, false, zeros}, 500'000), std::chrono::microseconds(254));
    EXPECT_EQ(bitrate_from_timing(48'000'000, 3, 6, 6, 3), 1'000'000u);
    EXPECT_EQ(bitrate_from_timing(48'000'000, 6, 6, 6, 3), 500'000u);
    EXPECT_EQ(bitrate_from_timing(48'000'000, 0, 6, 6, 3), 0u);
}

TEST(SimulatedCanBus, SerialWithArbitrationByLowestId) {
    const auto t0 = Clock::now();
    SimulatedCanBus bus(true, 1'000'000);
    std::vector<uint32_t> order;
    auto& a = bus.attach("a", [&](const BusFrame& f, uint64_t, Clock::time_point) { order.push_back(f.id); });
    auto& b = bus.attach("b", [&](const BusFrame& f, uint64_t, Clock::time_point) { order.push_back(f.id); });
    auto& listener = bus.attach("listener");
    const Bytes payload{1, 2, 3};
    a.send(link::CanFrame::with(0x300, payload), t0);
    b.send(link::CanFrame::with(0x100, payload), t0);  // same instant: the lower id wins
    a.send(link::CanFrame::with(0x050, payload), t0 + std::chrono::microseconds(1));  // waits for the bus
    EXPECT_FALSE(listener.receive(t0));
    bus.advance(t0 + std::chrono::seconds(1));
    EXPECT_EQ(order, (std::vector<uint32_t>{0x100, 0x050, 0x300}));
    // Each frame reached everyone but its sender, when its last bit had passed.
    const auto first = listener.oldest_arrival();
    ASSERT_TRUE(first);
    EXPECT_EQ(*first - t0, can_frame_time({0x100, false, false, payload}, 1'000'000));
    int heard = 0;
    while (listener.receive(t0 + std::chrono::seconds(1))) ++heard;
    EXPECT_EQ(heard, 3);
    EXPECT_EQ(bus.stats().frames, 3u);
    EXPECT_EQ(bus.stats().busy, can_frame_time({0x100, false, false, payload}, 1'000'000) +
                                     can_frame_time({0x050, false, false, payload}, 1'000'000) +
                                     can_frame_time({0x300, false, false, payload}, 1'000'000));
}

TEST(GsHostFrame, LayoutAsTheKernelDriverReadsIt) {
    GsHostFrame frame;
    frame.echo_id = 3;
    frame.can_id = 0x3F0;
    frame.dlc = 1;
    frame.data[0] = 0x00;
    const Bytes bytes = frame.encode();
    ASSERT_EQ(bytes.size(), kHostFrameBytes);
    EXPECT_EQ(bytes, (Bytes{3, 0, 0, 0, 0xF0, 0x03, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
    auto back = GsHostFrame::decode(bytes);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->can_id, 0x3F0u);
    EXPECT_FALSE(GsHostFrame::decode(Bytes(19)));
    GsHostFrame extended;
    extended.can_id = kCanEffFlag | 0x1ABCDEF;
    EXPECT_TRUE(extended.bus_frame().extended);
    EXPECT_EQ(extended.bus_frame().id, 0x1ABCDEFu);
}

TEST(KlipperUuid, FasthashOfTheChipId) {
    // fasthash64 of nothing with seed 0 is mix(0) = 0; and the UUID is the hash's first six bytes.
    EXPECT_EQ(fasthash64({}, 0), 0u);
    const Bytes chip_id{0x30, 0x00, 0x45, 0x00, 0x0b, 0x51, 0x33, 0x31, 0x36, 0x35, 0x33, 0x39};
    const uint64_t hash = fasthash64(chip_id, 0xA16231A7);
    uint64_t expected = 0;
    for (int i = 0; i < 6; ++i) expected = expected << 8 | ((hash >> (8 * i)) & 0xFF);
    EXPECT_EQ(klipper_canbus_uuid(chip_id), expected);
    EXPECT_NE(klipper_canbus_uuid(chip_id), klipper_canbus_uuid(Bytes{1, 2, 3}));
}

TEST(BridgeNodeSpec, ParsesAndRefusesClearly) {
    auto spec = BridgeNodeSpec::parse("katapult:stm32f103xe:0a1b2c3d4e5f:/tmp/a:b.bin");
    EXPECT_FALSE(spec.klipper);
    EXPECT_EQ(spec.chip, "stm32f103xe");
    EXPECT_EQ(spec.uuid, 0x0a1b2c3d4e5full);
    EXPECT_EQ(spec.flash_file, "/tmp/a:b.bin");
    EXPECT_TRUE(BridgeNodeSpec::parse("klipper:rp2040").klipper);
    EXPECT_FALSE(BridgeNodeSpec::parse("klipper:rp2040").uuid);
    for (const char* bad : {"katapult", "canboot:rp2040", "katapult:rp2040:12345", "katapult:nosuchchip"}) {
        try {
            BridgeNodeSpec::parse(bad);
            ADD_FAILURE() << bad;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), core::ErrorKind::Usage) << bad;
        }
    }
}

link::UsbSetup vendor(bool in, uint8_t request, uint16_t length) {
    return {static_cast<uint8_t>((in ? 0x80 : 0x00) | 0x40 | 0x01), request, 0, 0, length};
}

Bytes bittiming(uint32_t brp) {
    Bytes out;
    for (uint32_t v : {6u, 6u, 3u, 1u, brp})
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return out;
}

// What a gs_usb host (the kernel driver) does, on a simulated clock: frames out as host frames with
// echo ids, frames in from bulk IN; echoes are not handed up (a raw socket does not see its own
// frames). While nothing is there, the clock jumps to the bridge's next event.
class BridgeHostBus : public link::CanBus {
public:
    BridgeHostBus(GsUsbBridge& bridge, Clock::time_point& now) : bridge_(bridge), now_(now) {}
    void send(const link::CanFrame& frame) override {
        GsHostFrame host;
        host.echo_id = next_echo_++ % 10;
        host.can_id = frame.id;
        host.dlc = frame.length;
        host.data = frame.data;
        ASSERT_TRUE(bridge_.bulk_out(GsUsbBridge::kBulkOut, host.encode(), now_));
    }
    std::optional<link::CanFrame> receive(const core::Deadline&) override {
        for (;;) {
            auto in = bridge_.bulk_in(GsUsbBridge::kBulkIn, 64, now_);
            if (in.state == sim::usb::EndpointIn::State::Data) {
                auto frame = GsHostFrame::decode(in.data);
                if (!frame) continue;
                if (frame->echo_id != kEchoIdReceived) {
                    ++echoes;
                    continue;
                }
                if (!ids_.empty() && !ids_.count(frame->can_id)) continue;
                return link::CanFrame::with(frame->can_id, {frame->data.data(), frame->dlc});
            }
            auto next = bridge_.next_event();
            if (!next) return std::nullopt;  // nothing on its way: a real host would time out
            now_ = std::max(now_, *next);
        }
    }
    void take_only(std::vector<uint32_t> ids) override { ids_ = {ids.begin(), ids.end()}; }
    std::string interface_name() const override { return "can0"; }
    size_t echoes = 0;

private:
    GsUsbBridge& bridge_;
    Clock::time_point& now_;
    std::set<uint32_t> ids_;
    uint32_t next_echo_ = 0;
};

GsUsbBridgeOptions two_nodes(bool timing) {
    GsUsbBridgeOptions options;
    options.timing = timing;
    options.nodes.push_back(BridgeNodeSpec::parse("katapult:stm32f103xe:0a1b2c3d4e5f"));
    options.nodes.push_back(BridgeNodeSpec::parse("klipper:rp2040:112233445566"));
    return options;
}

TEST(GsUsbBridge, AnswersTheKernelDriversRequests) {
    GsUsbBridge bridge(two_nodes(false));
    const auto now = Clock::now();
    const auto d = bridge.device_descriptor();
    EXPECT_EQ(d[8] | d[9] << 8, 0x1D50);
    EXPECT_EQ(d[10] | d[11] << 8, 0x606F);
    EXPECT_EQ(bridge.string_descriptor(1), "Klipper");
    EXPECT_EQ(bridge.string_descriptor(3).size(), 24u);  // a 12-byte STM32 chip id in hex
    const auto config = bridge.configuration_descriptor();
    EXPECT_EQ(config.size(), 32u);
    EXPECT_EQ(config[14], 0xFF);  // vendor-specific interface
    Bytes host_format{0xEF, 0xBE, 0, 0};
    EXPECT_FALSE(bridge.control(vendor(false, breq::kHostFormat, 4), host_format, now).stall);
    auto device_config = bridge.control(vendor(true, breq::kDeviceConfig, 12), {}, now);
    EXPECT_EQ(device_config.data, (Bytes{0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0}));  // one channel, sw 2, hw 1
    auto bt_const = bridge.control(vendor(true, breq::kBtConst, 40), {}, now);
    ASSERT_EQ(bt_const.data.size(), 40u);
    EXPECT_EQ(bt_const.data[4] | bt_const.data[5] << 8 | bt_const.data[6] << 16 | bt_const.data[7] << 24, 48'000'000);
    EXPECT_FALSE(bridge.control(vendor(false, breq::kBitTiming, 20), bittiming(6), now).stall);
    EXPECT_EQ(bridge.bitrate(), 500'000u);
    Bytes start{1, 0, 0, 0, 0, 0, 0, 0};
    EXPECT_FALSE(bridge.control(vendor(false, breq::kMode, 8), start, now).stall);
    EXPECT_TRUE(bridge.started());
    EXPECT_TRUE(bridge.control(vendor(true, breq::kTimestamp, 4), {}, now).stall);  // as Klipper's bridge
    EXPECT_TRUE(bridge.control(vendor(false, breq::kBerr, 4), Bytes(4), now).stall);
}

TEST(GsUsbBridge, QueryAnsweredByTheNodesAndTheBridgeItself) {
    GsUsbBridge bridge(two_nodes(false));
    auto now = Clock::now();
    BridgeHostBus host(bridge, now);
    host.send(link::CanFrame::with(0x3F0, Bytes{0x00}));
    std::map<uint64_t, uint8_t> answers;
    while (auto frame = host.receive(core::Deadline::after_ms(0))) {
        ASSERT_EQ(frame->id, 0x3F1u);
        uint64_t uuid = 0;
        for (int i = 1; i <= 6; ++i) uuid = uuid << 8 | frame->data[i];
        answers[uuid] = frame->data[7];
    }
    EXPECT_EQ(host.echoes, 1u);
    EXPECT_EQ(answers.size(), 3u);
    EXPECT_EQ(answers[0x0a1b2c3d4e5f], 0x11);  // Katapult
    EXPECT_EQ(answers[0x112233445566], 0x01);  // Klipper
    EXPECT_EQ(answers[bridge.uuid()], 0x01);   // the bridge runs Klipper

    // The bootloader request to the bridge's own UUID: the whole USB device leaves.
    Bytes request{0x02};
    for (int shift = 40; shift >= 0; shift -= 8) request.push_back(static_cast<uint8_t>(bridge.uuid() >> shift));
    host.send(link::CanFrame::with(0x3F0, request));
    bridge.advance(now);
    EXPECT_FALSE(bridge.attached());
}

// mcuflash's Katapult client through the bridge: the node is assigned an id, flashed and read back.
// Returns the simulated time the write and read-back took.
Clock::duration flash_through_bridge(uint32_t brp, const Bytes& image, GsUsbBridge& bridge) {
    auto now = Clock::now();
    EXPECT_FALSE(bridge.control(vendor(false, breq::kBitTiming, 20), bittiming(brp), now).stall);
    auto bus = std::make_unique<BridgeHostBus>(bridge, now);
    Bytes assign{0x11, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 128};
    bus->send(link::CanFrame::with(0x3F0, assign));
    link::CanNodeStream stream(std::move(bus), 0x200, 0x201, "node", "can:can0:0a1b2c3d4e5f");
    protocol::ConnectOptions connect;
    protocol::katapult::Client client(stream, connect);
    const auto start = now;
    const auto info = client.connect();
    client.write_image(info.app_start, image);
    EXPECT_EQ(client.read(info.app_start, static_cast<uint32_t>(image.size())), image);
    Bytes in_flash(image.size());
    bridge.node_flash(0).read(info.app_start, in_flash);
    EXPECT_EQ(in_flash, image);
    EXPECT_TRUE(bridge.node_flash(0).protected_ranges_intact());
    EXPECT_EQ(client.stats().retries, 0u);
    return now - start;
}

TEST(GsUsbBridge, KatapultClientFlashesANodeBehindItAtTheBitrateTheHostSet) {
    Bytes image(4096);
    for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + 3);
    GsUsbBridge fast(two_nodes(true)), slow(two_nodes(true));
    const auto at_1m = flash_through_bridge(3, image, fast);
    const auto at_500k = flash_through_bridge(6, image, slow);
    // The same frames both times; the bus is busy twice as long at half the bitrate, and the flash
    // takes the same program time, so the whole takes longer but less than twice as long.
    EXPECT_EQ(fast.bus().stats().bits, slow.bus().stats().bits);
    EXPECT_EQ(slow.bus().stats().busy, 2 * fast.bus().stats().busy);
    EXPECT_GE(at_1m, fast.bus().stats().busy);
    EXPECT_GT(at_500k, at_1m);
    EXPECT_LT(at_500k, 2 * at_1m);
    // Every frame is at least 47 bits: 4 KiB in 64-byte blocks is over 1000 frames.
    EXPECT_GT(fast.bus().stats().frames, 1000u);
}

TEST(GsUsbBridge, WithoutTimingFramesTakeNoTime) {
    Bytes image(1024, 0x5A);
    GsUsbBridge bridge(two_nodes(false));
    EXPECT_EQ(flash_through_bridge(3, image, bridge), Clock::duration::zero());
    EXPECT_EQ(bridge.bus().stats().busy, Clock::duration::zero());
}

}  // namespace

// mcuflash knows a bridge by its USB serial number: the client's UUID of a chip id (its own fasthash64)
// must be the one the simulated bridge gives itself, for ids of every length around the 8-byte words.
TEST(GsUsbBridge, TheClientKnowsTheBridgesUuidFromItsUsbSerial) {
    for (size_t length : {1u, 7u, 8u, 9u, 12u, 16u, 17u}) {
        Bytes id(length);
        for (size_t i = 0; i < length; ++i) id[i] = static_cast<uint8_t>(0x5A + 37 * i);
        EXPECT_EQ(protocol::katapult::can::klipper_uuid_from_chip_id(id), klipper_canbus_uuid(id)) << length;
    }
    GsUsbBridgeOptions options;
    options.timing = false;
    GsUsbBridge bridge(std::move(options));
    EXPECT_EQ(protocol::katapult::can::klipper_uuid_from_usb_serial(bridge.serial()), bridge.uuid());
    EXPECT_FALSE(protocol::katapult::can::klipper_uuid_from_usb_serial("not hex!"));
    EXPECT_FALSE(protocol::katapult::can::klipper_uuid_from_usb_serial("ABC"));
}

// Katapult over CAN without a socket: frames cut from a byte stream and put together again
// (link/can_socket.hpp, link/can_stream.hpp), the admin messages against the bytes Katapult's and
// Klipper's canserial.c and flashtool.py use, opening a node (query, Klipper's reboot, assignment)
// on a scripted bus, and Katapult's client flashing the simulator through 8-byte frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <thread>

#include "core/error.hpp"
#include "link/can_socket.hpp"
#include "link/can_stream.hpp"
#include "protocol/katapult/can_admin.hpp"
#include "protocol/katapult/client.hpp"
#include "sim/katapult/katapult_device.hpp"
#include "targets/knowledge.hpp"

using namespace mcuflash;
using link::CanFrame;
namespace can = protocol::katapult::can;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes iota_bytes(size_t n, uint8_t first = 0) {
    Bytes out(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(first + i);
    return out;
}

Bytes payload_of(const CanFrame& frame) { return Bytes(frame.payload().begin(), frame.payload().end()); }

// A bus whose other nodes are a function: each frame the host sends may make them answer.
class ScriptedBus : public link::CanBus {
public:
    using Node = std::function<void(const CanFrame&, std::deque<CanFrame>& answers)>;
    explicit ScriptedBus(Node node = {}) : node_(std::move(node)) {}

    void send(const CanFrame& frame) override {
        sent.push_back(frame);
        if (node_) node_(frame, inbound);
    }
    std::optional<CanFrame> receive(const core::Deadline& deadline) override {
        while (!inbound.empty()) {
            CanFrame frame = inbound.front();
            inbound.pop_front();
            if (taken.empty() || std::find(taken.begin(), taken.end(), frame.id) != taken.end()) return frame;
        }
        // Nothing more comes when nothing is queued: the wait ends empty.
        std::this_thread::sleep_for(deadline.remaining());
        return std::nullopt;
    }
    void take_only(std::vector<uint32_t> ids) override { taken = std::move(ids); }
    std::string interface_name() const override { return "can0"; }

    std::vector<CanFrame> sent;
    std::deque<CanFrame> inbound;
    std::vector<uint32_t> taken;

private:
    Node node_;
};

// A node as canserial.c runs it: answers the query while it has no id, takes its assignment, and
// (as Klipper) reboots into Katapult on the bootloader request after `reboot_queries` more queries.
struct FakeNode {
    uint64_t uuid;
    uint8_t app;  // 0x11 Katapult, 0x01 Klipper
    int reboot_queries = -1;  // >= 0: rebooting, silent for this many queries
    uint32_t assigned = 0;
    int requests = 0;

    bool names_me(const CanFrame& f) const {
        if (f.length < 7) return false;
        uint64_t named = 0;
        for (int i = 1; i <= 6; ++i) named = named << 8 | f.data[i];
        return named == uuid;
    }
    void on(const CanFrame& f, std::deque<CanFrame>& answers) {
        if (f.id != can::kAdminId || f.length == 0) return;
        if (f.data[0] == 0x00) {
            if (reboot_queries > 0) {
                --reboot_queries;
                return;
            }
            if (reboot_queries == 0) {
                app = 0x11;
                reboot_queries = -1;
            }
            if (assigned) return;
            Bytes answer{0x20};
            for (int shift = 40; shift >= 0; shift -= 8) answer.push_back(static_cast<uint8_t>(uuid >> shift));
            answer.push_back(app);
            answers.push_back(CanFrame::with(can::kAdminReplyId, answer));
        } else if (f.data[0] == app && f.length == 8 && names_me(f)) {  // 0x11 (Katapult) or 0x01 (Klipper)
            assigned = 0x100 + 2u * f.data[7];
        } else if (f.data[0] == 0x12 && app == 0x11) {
            assigned = 0;
        } else if (f.data[0] == 0x02 && app == 0x01 && names_me(f)) {
            ++requests;
            assigned = 0;
            reboot_queries = 2;
        }
    }
};

can::OpenNodeOptions quick(std::optional<uint64_t> uuid = {}) {
    can::OpenNodeOptions options;
    options.uuid = uuid;
    options.listen = std::chrono::milliseconds(1);
    options.reboot_wait = std::chrono::milliseconds(300);
    return options;
}

}  // namespace

TEST(CanFrames, ByteStreamIsCutIntoEightByteFrames) {
    const Bytes stream = iota_bytes(20);
    const auto frames = link::split_into_frames(0x201, stream);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(payload_of(frames[0]), iota_bytes(8, 0));
    EXPECT_EQ(payload_of(frames[1]), iota_bytes(8, 8));
    EXPECT_EQ(payload_of(frames[2]), iota_bytes(4, 16));
    for (const auto& f : frames) EXPECT_EQ(f.id, 0x201u);
    EXPECT_EQ(link::split_into_frames(0x201, iota_bytes(8)).size(), 1u);
    EXPECT_TRUE(link::split_into_frames(0x201, {}).empty());
    EXPECT_THROW(CanFrame::with(0x800, Bytes{1}), std::invalid_argument);  // not an 11-bit id
    EXPECT_THROW(CanFrame::with(0x100, iota_bytes(9)), std::invalid_argument);
}

TEST(CanFrames, NodeStreamWritesOnItsIdAndReadsTheIdAbove) {
    auto bus = std::make_unique<ScriptedBus>();
    auto* raw = bus.get();
    link::CanNodeStream stream(std::move(bus), 0x200, 0x201, "node", "can:can0:0a1b2c3d4e5f");
    EXPECT_EQ(raw->taken, std::vector<uint32_t>{0x201});
    stream.write(iota_bytes(76));  // a SEND_BLOCK frame of 64 bytes: ten CAN frames
    ASSERT_EQ(raw->sent.size(), 10u);
    Bytes sent;
    for (const auto& f : raw->sent) {
        EXPECT_EQ(f.id, 0x200u);
        sent.insert(sent.end(), f.payload().begin(), f.payload().end());
    }
    EXPECT_EQ(sent, iota_bytes(76));

    // The answer arrives in pieces of any length, with another node's frames between them.
    raw->take_only({});
    raw->inbound.push_back(CanFrame::with(0x201, iota_bytes(8, 100)));
    raw->inbound.push_back(CanFrame::with(0x203, iota_bytes(8, 200)));
    raw->inbound.push_back(CanFrame::with(0x201, iota_bytes(3, 108)));
    raw->inbound.push_back(CanFrame::with(0x201, iota_bytes(5, 111)));
    Bytes got(16);
    stream.read_exact(got, core::Deadline::after_ms(10), "test");
    EXPECT_EQ(got, iota_bytes(16, 100));

    raw->inbound.push_back(CanFrame::with(0x201, iota_bytes(8)));
    uint8_t small[3];
    EXPECT_EQ(stream.read_some(small, core::Deadline::after_ms(10)), 3u);
    stream.drain_input();  // the five bytes left of the frame are dropped
    EXPECT_EQ(stream.read_some(small, core::Deadline::after_ms(10)), 0u);
    EXPECT_EQ(stream.serial_line(), nullptr);
    EXPECT_EQ(stream.address(), "can:can0:0a1b2c3d4e5f");
}

TEST(CanAdmin, MessagesAsCanserialAndFlashtoolSpellThem) {
    const uint64_t uuid = 0x0a1b2c3d4e5f;
    EXPECT_EQ(can::query_message(), Bytes{0x00});
    EXPECT_EQ(can::clear_node_ids_message(), Bytes{0x12});
    EXPECT_EQ(can::assign_message(uuid, 128), (Bytes{0x11, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x80}));
    EXPECT_EQ(can::bootloader_request_message(uuid), (Bytes{0x02, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}));
    EXPECT_EQ(can::node_receive_id(128), 0x200u);
    EXPECT_EQ(can::node_reply_id(128), 0x201u);

    auto katapult = can::parse_query_answer(Bytes{0x20, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x11});
    ASSERT_TRUE(katapult);
    EXPECT_EQ(katapult->uuid, uuid);
    EXPECT_EQ(katapult->app(), can::NodeApp::Katapult);
    auto klipper = can::parse_query_answer(Bytes{0x20, 1, 2, 3, 4, 5, 6, 0x01});
    ASSERT_TRUE(klipper);
    EXPECT_EQ(klipper->app(), can::NodeApp::Klipper);
    EXPECT_EQ(can::parse_query_answer(Bytes{0x20, 1, 2, 3, 4, 5, 6, 0x42})->app(), can::NodeApp::Unknown);
    EXPECT_EQ(can::parse_query_answer(Bytes{0x20, 1, 2, 3, 4, 5, 6})->app(), can::NodeApp::Unknown);
    EXPECT_FALSE(can::parse_query_answer(Bytes{0x20, 1, 2, 3, 4, 5}));
    EXPECT_FALSE(can::parse_query_answer(Bytes{0x21, 1, 2, 3, 4, 5, 6, 0x11}));

    EXPECT_EQ(can::uuid_text(uuid), "0a1b2c3d4e5f");
    EXPECT_EQ(can::parse_uuid("0A1B2C3D4E5F"), uuid);
    EXPECT_FALSE(can::parse_uuid("0a1b2c3d4e5"));
    EXPECT_FALSE(can::parse_uuid("0a1b2c3d4e5fa"));
    EXPECT_FALSE(can::parse_uuid("0a1b2c3d4e5g"));
}

TEST(CanAdmin, OpensTheOneKatapultNodeWithIdOneHundredTwentyEight) {
    FakeNode node{0x112233445566, 0x11};
    node.assigned = 0x104;  // left assigned by an earlier session: the clear makes it answer again
    auto bus = std::make_unique<ScriptedBus>([&](const CanFrame& f, auto& out) { node.on(f, out); });
    auto* raw = bus.get();
    auto stream = can::open_node(std::move(bus), quick());
    EXPECT_EQ(node.assigned, 0x200u);
    EXPECT_EQ(stream->to_node(), 0x200u);
    EXPECT_EQ(stream->from_node(), 0x201u);
    EXPECT_EQ(stream->address(), "can:can0:112233445566");
    EXPECT_EQ(payload_of(raw->sent.front()), Bytes{0x12});  // clear, then query
    EXPECT_EQ(payload_of(raw->sent[1]), Bytes{0x00});
}

TEST(CanAdmin, KlipperNodeIsAskedToRebootAndWaitedFor) {
    FakeNode node{0x0a1b2c3d4e5f, 0x01};
    auto bus = std::make_unique<ScriptedBus>([&](const CanFrame& f, auto& out) { node.on(f, out); });
    std::vector<std::string> warnings;
    auto options = quick(0x0a1b2c3d4e5f);
    options.reboot_wait = std::chrono::seconds(3);  // the node stays silent for two half-second queries
    options.warn = [&](const std::string& w) { warnings.push_back(w); };
    auto stream = can::open_node(std::move(bus), options);
    EXPECT_EQ(node.requests, 1);
    EXPECT_EQ(node.app, 0x11);
    EXPECT_EQ(node.assigned, 0x200u);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("runs Klipper"), std::string::npos);
}

TEST(CanAdmin, RefusalsNameWhatAnswered) {
    FakeNode a{0x111111111111, 0x11}, b{0x222222222222, 0x01};
    auto both = [&](const CanFrame& f, std::deque<CanFrame>& out) {
        a.on(f, out);
        b.on(f, out);
    };
    try {
        can::open_node(std::make_unique<ScriptedBus>(both), quick());
        FAIL() << "several nodes and no UUID";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Usage);
        EXPECT_NE(std::string(e.what()).find("-d can:can0:111111111111  (Katapult)"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("-d can:can0:222222222222  (Klipper)"), std::string::npos) << e.what();
    }
    try {
        can::open_node(std::make_unique<ScriptedBus>(both), quick(0x333333333333));
        FAIL() << "a UUID nobody answers to";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::NotFound);
        EXPECT_NE(std::string(e.what()).find("111111111111"), std::string::npos) << e.what();
        EXPECT_EQ(b.requests, 0);  // the request named another UUID
    }
    try {
        can::open_node(std::make_unique<ScriptedBus>(), quick());
        FAIL() << "nobody on the bus";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::NotFound);
        EXPECT_NE(e.hint().find("termination"), std::string::npos);
    }
    auto no_reset = quick(0x222222222222);
    no_reset.may_reboot = false;
    EXPECT_THROW(can::open_node(std::make_unique<ScriptedBus>(both), no_reset), core::Error);
    EXPECT_EQ(b.requests, 0);
}

// Katapult's client through 8-byte frames to the simulated device: what goes in over CAN is the
// same stream as over a serial line.
TEST(CanAdmin, ClientFlashesAndReadsBackThroughFrames) {
    const auto& kb = targets::Knowledge::builtin();
    sim::DeviceOptions options;
    options.timing = false;
    sim::katapult::KatapultConfig config;
    config.canbus_uuid = 0x0a1b2c3d4e5f;
    sim::katapult::KatapultDevice device(kb.chip("stm32f103xe"), *kb.find_bootloader("katapult"), options, config);
    auto now = core::Clock::now();
    device.reset(sim::ResetCause::Pin, now);
    size_t frames_to_node = 0;
    auto bus = std::make_unique<ScriptedBus>([&](const CanFrame& f, std::deque<CanFrame>& out) {
        if (f.id != 0x200) return;
        ++frames_to_node;
        for (uint8_t b : f.payload()) device.receive(b, now);
        now += std::chrono::milliseconds(1);
        device.tick(now);
        Bytes sent;
        for (const auto& s : device.take_output()) sent.push_back(s.value);
        for (const auto& frame : link::split_into_frames(0x201, sent)) out.push_back(frame);
    });
    link::CanNodeStream stream(std::move(bus), 0x200, 0x201, "node", "can:can0:0a1b2c3d4e5f");
    protocol::ConnectOptions connect;
    protocol::katapult::Client client(stream, connect);
    const auto info = client.connect();
    EXPECT_EQ(client.canbus_uuid(), 0x0a1b2c3d4e5fu);
    Bytes image = iota_bytes(3000, 7);
    client.write_image(info.app_start, image);
    EXPECT_EQ(client.read(info.app_start, static_cast<uint32_t>(image.size())), image);
    Bytes in_flash(image.size());
    device.flash().read(info.app_start, in_flash);
    EXPECT_EQ(in_flash, image);
    EXPECT_GT(frames_to_node, 3000u / 8);
    EXPECT_EQ(client.stats().retries, 0u);
}

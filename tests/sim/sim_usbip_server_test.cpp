// The USB/IP server's wire format, byte by byte, with a client written here from
// Documentation/usb/usbip_protocol.rst (the real kernel is exercised by interop/usbip_guest.sh).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "../interop/usbip_echo_model.hpp"
#include "core/error.hpp"
#include "sim/usb/in_process_usb.hpp"
#include "sim/usb/usbip_server.hpp"

namespace {

using namespace mcuflash;
using test::UsbEchoModel;

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
    return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}
uint16_t be16(const std::vector<uint8_t>& b, size_t at) { return static_cast<uint16_t>((b[at] << 8) | b[at + 1]); }
void put32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

class Client {
public:
    explicit Client(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ADD_FAILURE() << "connect failed";
    }
    ~Client() { ::close(fd_); }
    void send(const std::vector<uint8_t>& bytes) {
        ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    }
    // Exactly n bytes, or fewer if the server closes or 2 s pass.
    std::vector<uint8_t> receive(size_t n) {
        std::vector<uint8_t> out;
        while (out.size() < n) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 2000) <= 0) break;
            uint8_t buffer[4096];
            ssize_t got = ::recv(fd_, buffer, std::min(sizeof buffer, n - out.size()), 0);
            if (got <= 0) break;
            out.insert(out.end(), buffer, buffer + got);
        }
        return out;
    }
    // True when the server closed the connection within 2 s.
    bool closed_by_server() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0) return false;
        uint8_t byte;
        return ::recv(fd_, &byte, 1, 0) == 0;
    }

    std::vector<uint8_t> import(const std::string& busid) {
        std::vector<uint8_t> request{0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0};
        request.resize(8 + 32, 0);
        std::memcpy(request.data() + 8, busid.data(), busid.size());
        send(request);
        auto head = receive(8);
        if (head.size() == 8 && be32(head, 4) == 0) {
            auto rest = receive(0x138);
            head.insert(head.end(), rest.begin(), rest.end());
        }
        return head;
    }

    struct Reply {
        uint32_t command = 0, seqnum = 0;
        int32_t status = 0;
        uint32_t actual_length = 0;
        std::vector<uint8_t> data;
    };
    // USBIP_CMD_SUBMIT of a transfer on endpoint `endpoint` (the setup packet only matters for 0), and
    // its reply.
    Reply submit(uint32_t seqnum, const link::UsbSetup& s, const std::vector<uint8_t>& out_data = {},
                 uint32_t endpoint = 0) {
        send_submit(seqnum, s, out_data, endpoint);
        return reply(s.is_in());
    }
    void send_submit(uint32_t seqnum, const link::UsbSetup& s, const std::vector<uint8_t>& out_data = {},
                     uint32_t endpoint = 0) {
        std::vector<uint8_t> m;
        put32(m, 1);
        put32(m, seqnum);
        put32(m, (1u << 16) | 2);
        put32(m, s.is_in() ? 1 : 0);
        put32(m, endpoint);
        put32(m, 0);                                               // transfer_flags
        put32(m, s.is_in() ? s.length : static_cast<uint32_t>(out_data.size()));  // transfer_buffer_length
        put32(m, 0);
        put32(m, 0);  // number_of_packets (what vhci sends for control URBs)
        put32(m, 0);
        m.insert(m.end(), {s.request_type, s.request, static_cast<uint8_t>(s.value), static_cast<uint8_t>(s.value >> 8),
                           static_cast<uint8_t>(s.index), static_cast<uint8_t>(s.index >> 8),
                           static_cast<uint8_t>(s.length), static_cast<uint8_t>(s.length >> 8)});
        m.insert(m.end(), out_data.begin(), out_data.end());
        send(m);
    }
    Reply reply(bool in) {
        auto head = receive(48);
        Reply r;
        if (head.size() != 48) return r;
        r.command = be32(head, 0);
        r.seqnum = be32(head, 4);
        r.status = static_cast<int32_t>(be32(head, 20));
        r.actual_length = be32(head, 24);
        if (in) r.data = receive(r.actual_length);
        return r;
    }
    // True when nothing arrives within `ms`.
    bool quiet_for(int ms) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, ms) == 0;
    }

private:
    int fd_ = -1;
};

class UsbipServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        sim::usb::UsbipServerOptions options;
        options.port = 0;
        options.stop_on_signals = false;
        server_ = std::make_unique<sim::usb::UsbipServer>(model_, options);
        thread_ = std::thread([this] { server_->run(); });
    }
    void TearDown() override {
        server_->request_stop();
        thread_.join();
    }
    uint16_t port() const { return server_->port(); }

    UsbEchoModel model_;
    std::unique_ptr<sim::usb::UsbipServer> server_;
    std::thread thread_;
};

TEST_F(UsbipServerTest, DeviceListDescribesTheDeviceFromItsDescriptors) {
    Client c(port());
    c.send({0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0});
    auto reply = c.receive(12 + 0x138 + 4);
    ASSERT_EQ(reply.size(), 12u + 0x138 + 4);
    EXPECT_EQ(be16(reply, 0), 0x0111);
    EXPECT_EQ(be16(reply, 2), 0x0005);
    EXPECT_EQ(be32(reply, 4), 0u);
    EXPECT_EQ(be32(reply, 8), 1u);  // one device
    EXPECT_STREQ(reinterpret_cast<const char*>(reply.data() + 12), "/sys/devices/mcuflash-sim/1-1");
    EXPECT_STREQ(reinterpret_cast<const char*>(reply.data() + 0x10C), "1-1");
    EXPECT_EQ(be32(reply, 0x12C), 1u);  // busnum
    EXPECT_EQ(be32(reply, 0x130), 2u);  // devnum
    EXPECT_EQ(be32(reply, 0x134), 2u);  // full speed
    EXPECT_EQ(be16(reply, 0x138), UsbEchoModel::kVendor);
    EXPECT_EQ(be16(reply, 0x13A), UsbEchoModel::kProduct);
    EXPECT_EQ(be16(reply, 0x13C), 0x0100);
    EXPECT_EQ(reply[0x13E], 0xFF);  // bDeviceClass
    EXPECT_EQ(reply[0x142], 1);     // bNumConfigurations
    EXPECT_EQ(reply[0x143], 1);     // bNumInterfaces
    EXPECT_EQ(reply[0x144], 0xFF);  // interface 0 class
    EXPECT_TRUE(c.closed_by_server());  // as usbipd: one list per connection
}

TEST_F(UsbipServerTest, ImportResetsTheDeviceAndRefusesOthers) {
    Client wrong(port());
    auto refused = wrong.import("2-2");
    ASSERT_EQ(refused.size(), 8u);
    EXPECT_EQ(be32(refused, 4), 1u);

    Client c(port());
    auto reply = c.import("1-1");
    ASSERT_EQ(reply.size(), 8u + 0x138);
    EXPECT_EQ(be16(reply, 2), 0x0003);
    EXPECT_EQ(be32(reply, 4), 0u);
    EXPECT_STREQ(reinterpret_cast<const char*>(reply.data() + 0x108), "1-1");
    EXPECT_EQ(be16(reply, 0x134), UsbEchoModel::kVendor);
    EXPECT_EQ(be32(reply, 0x130), 2u);

    Client second(port());
    auto busy = second.import("1-1");
    ASSERT_EQ(busy.size(), 8u);
    EXPECT_EQ(be32(busy, 4), 1u);

    auto r = c.submit(5, {0xC0, UsbEchoModel::kResetCount, 0, 0, 1});
    ASSERT_EQ(r.data.size(), 1u);
    EXPECT_EQ(r.data[0], 1);  // the import
}

TEST_F(UsbipServerTest, ControlTransfersStallsUnlinksAndOtherEndpoints) {
    Client c(port());
    ASSERT_EQ(c.import("1-1").size(), 8u + 0x138);

    auto d = c.submit(1, {0x80, link::usb::kGetDescriptor, 0x0100, 0, 18});
    EXPECT_EQ(d.command, 3u);
    EXPECT_EQ(d.seqnum, 1u);
    EXPECT_EQ(d.status, 0);
    EXPECT_EQ(d.data, model_.device_descriptor());

    std::vector<uint8_t> pattern(200);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i ^ 0x5A);
    auto out = c.submit(2, {0x40, UsbEchoModel::kStore, 0, 0, 200}, pattern);
    EXPECT_EQ(out.status, 0);
    EXPECT_EQ(out.actual_length, 200u);

    auto in = c.submit(3, {0xC0, UsbEchoModel::kFetch, 0, 0, 64});
    EXPECT_EQ(in.status, 0);
    EXPECT_EQ(in.actual_length, 64u);  // truncated to wLength
    EXPECT_EQ(in.data, std::vector<uint8_t>(pattern.begin(), pattern.begin() + 64));

    auto stall = c.submit(4, {0xC0, UsbEchoModel::kStall, 0, 0, 4});
    EXPECT_EQ(stall.seqnum, 4u);
    EXPECT_EQ(stall.status, -32);  // -EPIPE
    EXPECT_EQ(stall.actual_length, 0u);

    auto bulk = c.submit(6, {0x80, 0, 0, 0, 64}, {}, 3);  // IN 0x83: no such endpoint
    EXPECT_EQ(bulk.seqnum, 6u);
    EXPECT_EQ(bulk.status, -32);

    // UNLINK of an URB already answered: RET_UNLINK with status 0 and the unlink's own seqnum.
    std::vector<uint8_t> unlink;
    put32(unlink, 2);
    put32(unlink, 7);
    put32(unlink, (1u << 16) | 2);
    put32(unlink, 0);
    put32(unlink, 0);
    put32(unlink, 3);  // unlink_seqnum
    unlink.resize(48, 0);
    c.send(unlink);
    auto ret = c.receive(48);
    ASSERT_EQ(ret.size(), 48u);
    EXPECT_EQ(be32(ret, 0), 4u);
    EXPECT_EQ(be32(ret, 4), 7u);
    EXPECT_EQ(be32(ret, 20), 0u);

    // Still in step afterwards.
    EXPECT_EQ(c.submit(8, {0xC0, UsbEchoModel::kFetch, 0, 0, 2}).seqnum, 8u);
}

TEST_F(UsbipServerTest, BulkInWaitsForDataAndHaltedEndpointsStall) {
    Client c(port());
    ASSERT_EQ(c.import("1-1").size(), 8u + 0x138);
    const link::UsbSetup in64{0x80, 0, 0, 0, 64}, out{0x00, 0, 0, 0, 0};

    // An IN with nothing to send is held (the device NAKs) ...
    c.send_submit(1, in64, {}, 1);
    EXPECT_TRUE(c.quiet_for(100));
    // ... and answered once the device has data: the OUT's reply first, then the held IN's, in
    // 64-byte pieces as the host asks for them.
    std::vector<uint8_t> data(100);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i + 1);
    auto written = c.submit(2, out, data, 1);
    EXPECT_EQ(written.seqnum, 2u);
    EXPECT_EQ(written.status, 0);
    EXPECT_EQ(written.actual_length, 100u);
    auto first = c.reply(true);
    EXPECT_EQ(first.seqnum, 1u);
    EXPECT_EQ(first.data, std::vector<uint8_t>(data.begin(), data.begin() + 64));
    auto rest = c.submit(3, in64, {}, 1);
    EXPECT_EQ(rest.data, std::vector<uint8_t>(data.begin() + 64, data.end()));

    // OUT 0x02 is halted: -EPIPE until CLEAR_FEATURE(ENDPOINT_HALT) to it.
    EXPECT_EQ(c.submit(4, out, data, 2).status, -32);
    EXPECT_EQ(c.submit(5, {0x02, 0x01, 0, 0x02, 0}).status, 0);
    EXPECT_EQ(c.submit(6, out, data, 2).status, 0);
}

TEST_F(UsbipServerTest, EnumerationAfterAPortResetResetsTheDevice) {
    Client c(port());
    ASSERT_EQ(c.import("1-1").size(), 8u + 0x138);
    // The device counts its bus resets (asked through the connection, so the server thread owns it).
    uint32_t seqnum = 100;
    auto resets = [&] { return c.submit(++seqnum, {0xC0, UsbEchoModel::kResetCount, 0, 0, 1}).data.at(0); };
    // The enumeration that follows the import belongs to the import's reset.
    EXPECT_EQ(c.submit(1, {0x80, link::usb::kGetDescriptor, 0x0100, 0, 64}).data.size(), 18u);
    EXPECT_EQ(c.submit(2, {0x80, link::usb::kGetDescriptor, 0x0100, 0, 18}).data.size(), 18u);
    EXPECT_EQ(resets(), 1);
    // A later one is a port reset (libusb_reset_device in the guest).
    c.submit(3, {0x80, link::usb::kGetDescriptor, 0x0100, 0, 64});
    EXPECT_EQ(resets(), 2);
    c.submit(4, {0x80, link::usb::kGetDescriptor, 0x0100, 0, 8});  // the old scheme asks for 8
    EXPECT_EQ(resets(), 3);
    // As does the hub request the kernel's usbip stub takes as a reset.
    EXPECT_EQ(c.submit(5, {0x23, 0x03, 4, 1, 0}).status, 0);
    EXPECT_EQ(resets(), 4);
}

TEST_F(UsbipServerTest, LeavingTheBusClosesTheConnectionAndANewImportBringsItBack) {
    {
        Client c(port());
        ASSERT_EQ(c.import("1-1").size(), 8u + 0x138);
        auto leave = c.submit(1, {0x40, UsbEchoModel::kLeave, 0, 0, 0});
        EXPECT_EQ(leave.status, 0);  // answered before the unplug
        EXPECT_TRUE(c.closed_by_server());
    }
    Client listing(port());  // a device off the bus is not listed
    listing.send({0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0});
    auto list = listing.receive(12);
    ASSERT_EQ(list.size(), 12u);
    EXPECT_EQ(be32(list, 8), 0u);
    Client again(port());
    ASSERT_EQ(again.import("1-1").size(), 8u + 0x138);
    EXPECT_EQ(again.submit(1, {0xC0, UsbEchoModel::kResetCount, 0, 0, 1}).data, std::vector<uint8_t>{2});
}

TEST_F(UsbipServerTest, MessagesSplitAcrossSegmentsAreReassembled) {
    Client c(port());
    std::vector<uint8_t> request{0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0, '1', '-', '1'};
    request.resize(40, 0);
    for (uint8_t byte : request) {
        c.send({byte});
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto head = c.receive(8 + 0x138);
    ASSERT_EQ(head.size(), 8u + 0x138);
    EXPECT_EQ(be32(head, 4), 0u);
}

TEST(UsbipServer, APortInUseIsAnIoErrorThatSaysSo) {
    UsbEchoModel model;
    sim::usb::UsbipServerOptions options;
    options.port = 0;
    options.stop_on_signals = false;
    sim::usb::UsbipServer first(model, options);
    options.port = first.port();
    try {
        sim::usb::UsbipServer second(model, options);
        FAIL() << "bound a port in use";
    } catch (const mcuflash::core::Error& e) {
        EXPECT_EQ(e.kind(), mcuflash::core::ErrorKind::Io);
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(InProcessUsb, EndpointTransfersReachTheModelWithNakTimeoutAndHalt) {
    sim::usb::InProcessUsb device(std::make_unique<UsbEchoModel>(), /*timing=*/false);
    std::vector<uint8_t> data(150, 0xA5);
    device.endpoint_out(0x01, data, 1000);
    EXPECT_EQ(device.endpoint_in(0x81, 64, 1000), std::vector<uint8_t>(64, 0xA5));
    EXPECT_EQ(device.endpoint_in(0x81, 512, 1000), std::vector<uint8_t>(86, 0xA5));
    try {
        device.endpoint_in(0x81, 64, 250);
        FAIL() << "an IN the device NAKs times out";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Timeout);
    }
    try {
        device.endpoint_out(0x02, data, 1000);
        FAIL() << "a halted endpoint stalls";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Protocol);
        EXPECT_NE(std::string(e.what()).find("stalled"), std::string::npos);
    }
    device.clear_halt(0x02);
    EXPECT_NO_THROW(device.endpoint_out(0x02, data, 1000));
}

// PtyServer: the symlink, reset on open, wire pacing, the client's baud rate, disconnect faults.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.hpp"
#include "sim/pty_server.hpp"
#include "sim/registry.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

const Bytes kGetSync{0x30, 0x20};
const Bytes kOkReply{0x14, 0x10};

// A client of the pty, as avrdude opens it: raw, at a given baud rate.
class Client {
public:
    Client(const fs::path& path, speed_t speed) {
        fd_ = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd_ < 0) return;
        termios tio{};
        ::tcgetattr(fd_, &tio);
        ::cfmakeraw(&tio);
        ::cfsetspeed(&tio, speed);
        ::tcsetattr(fd_, TCSANOW, &tio);
    }
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool is_open() const { return fd_ >= 0; }

    // Writes `data` and reads up to `expected` bytes within `timeout`.
    Bytes exchange(const Bytes& data, size_t expected, std::chrono::milliseconds timeout = 500ms) {
        EXPECT_EQ(::write(fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
        return read(expected, timeout);
    }
    Bytes read(size_t expected, std::chrono::milliseconds timeout) {
        Bytes got;
        auto give_up = std::chrono::steady_clock::now() + timeout;
        while (got.size() < expected) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            if (p.revents & (POLLHUP | POLLERR)) {
                hung_up_ = true;
                break;
            }
            uint8_t buffer[512];
            ssize_t n = ::read(fd_, buffer, std::min(sizeof buffer, expected - got.size()));
            if (n <= 0) break;
            got.insert(got.end(), buffer, buffer + n);
        }
        return got;
    }
    bool hung_up() const { return hung_up_; }

private:
    int fd_ = -1;
    bool hung_up_ = false;
};

class SimPtyServer : public ::testing::Test {
protected:
    void SetUp() override {
        if (!pty_baud_settings_available())
            GTEST_SKIP() << "no termios2 on a pty here (qemu-user before 9.0 does not emulate TCGETS2)";
        dir_ = fs::temp_directory_path() / ("mcuflash-sim-pty-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        link_ = dir_ / "tty";
    }
    void TearDown() override {
        stop();
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    void start(const std::string& faults = "", bool timing = true, bool check_baud = true) {
        DeviceOptions device_options;
        device_options.timing = timing;
        device_ = make_device("stk500v1", "atmega328p", device_options);
        PtyServerOptions options;
        options.link_path = link_;
        options.timing = timing;
        options.check_client_baud = check_baud;
        server_ = std::make_unique<PtyServer>(*device_, FaultInjector(FaultSpec::parse(faults)), options);
        thread_ = std::thread([this] { server_->run(); });
    }
    void stop() {
        if (!server_) return;
        server_->request_stop();
        thread_.join();
        server_.reset();
    }

    fs::path dir_, link_;
    std::unique_ptr<Device> device_;
    std::unique_ptr<PtyServer> server_;
    std::thread thread_;
};

TEST_F(SimPtyServer, SymlinkLifecycle) {
    fs::create_symlink("/nonexistent/stale", link_);  // left by an earlier run: replaced
    start();
    ASSERT_TRUE(fs::is_symlink(link_));
    EXPECT_EQ(fs::read_symlink(link_).string(), server_->slave_path());
    EXPECT_EQ(server_->slave_path().rfind("/dev/pts/", 0), 0u);
    stop();
    EXPECT_FALSE(fs::exists(fs::symlink_status(link_)));
}

TEST_F(SimPtyServer, RefusesToReplaceAFile) {
    std::ofstream(link_) << "not a pty";
    try {
        start();
        FAIL() << "replaced a regular file";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::Usage);
    }
    std::ifstream in(link_);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "not a pty");
}

TEST_F(SimPtyServer, OpeningThePortResetsTheDevice) {
    start();
    {
        Client client(link_, B115200);
        ASSERT_TRUE(client.is_open());
        EXPECT_EQ(client.exchange(kGetSync, 2), kOkReply);
        EXPECT_EQ(client.exchange({0x51, 0x20}, 2), kOkReply);  // leave: the application starts
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(client.exchange(kGetSync, 2, 200ms), Bytes{});
    }
    Client again(link_, B115200);  // a new open is a new reset
    EXPECT_EQ(again.exchange(kGetSync, 2), kOkReply);
}

TEST_F(SimPtyServer, BytesArePacedAtTheWireRate) {
    start();
    Client client(link_, B115200);
    ASSERT_EQ(client.exchange(kGetSync, 2), kOkReply);
    // READ_PAGE of 128 bytes: 4 + 5 bytes out, 2 + 130 back, overlapping: at least ~ 9 + 130 byte times.
    Bytes command{0x55, 0x00, 0x00, 0x20, 0x74, 0x00, 0x80, 'F', 0x20};
    auto started = std::chrono::steady_clock::now();
    Bytes reply = client.exchange(command, 2 + 130);
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(reply.size(), 132u);
    EXPECT_GE(elapsed, (9 + 130) * 86us);  // a lower bound only: a busy machine may take any longer
}

TEST_F(SimPtyServer, WrongClientBaudGarbles) {
    start();
    {
        Client client(link_, B57600);
        EXPECT_EQ(client.exchange(kGetSync, 2, 200ms), Bytes{});
    }
    stop();
    start("", true, false);  // --any-baud
    Client client(link_, B57600);
    EXPECT_EQ(client.exchange(kGetSync, 2), kOkReply);
}

TEST_F(SimPtyServer, DisconnectClosesThePtyThenItComesBack) {
    start("disconnect@byte=2:ms=300", false);
    {
        Client client(link_, B115200);
        EXPECT_EQ(client.exchange(kGetSync, 2), kOkReply);
        EXPECT_EQ(client.exchange(kGetSync, 2), Bytes{});
        EXPECT_TRUE(client.hung_up());
    }
    // Gone for a while, then back (possibly as another pts).
    for (int i = 0; i < 100 && !fs::is_symlink(link_); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(fs::is_symlink(link_));
    Client client(link_, B115200);
    ASSERT_TRUE(client.is_open());
    EXPECT_EQ(client.exchange(kGetSync, 2), kOkReply);
}

TEST_F(SimPtyServer, DisconnectForGoodEndsTheServer) {
    start("disconnect@byte=0", false);
    Client client(link_, B115200);
    EXPECT_EQ(client.exchange(kGetSync, 2), Bytes{});
    thread_.join();  // run() returned by itself
    server_.reset();
    EXPECT_FALSE(fs::exists(fs::symlink_status(link_)));
}

}  // namespace
}  // namespace mcuflash::sim

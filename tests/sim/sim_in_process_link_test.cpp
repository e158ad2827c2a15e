// InProcessLink: a simulated STK500v1 device behind link::ByteLink, with wire timing, skipped waits,
// DTR auto-reset and faults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "core/error.hpp"
#include "sim/in_process_link.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<uint8_t>;
using core::Deadline;

constexpr uint8_t kInSync = 0x14, kOk = 0x10, kEop = 0x20;
const Bytes kGetSync{0x30, kEop};

const Bytes kOkReply{kInSync, kOk};

std::unique_ptr<InProcessLink> open(const std::string& chip, bool timing, const std::string& faults = "") {
    InProcessOptions options;
    options.chip = chip;
    options.timing = timing;
    options.faults = faults;
    return open_in_process("stk500v1", options);
}

// Sends a command and reads `reply_size` bytes, or what arrives before `timeout`.
Bytes exchange(link::ByteLink& link, const Bytes& command, size_t reply_size, long timeout_ms = 1000) {
    link.write(command);
    Bytes reply(reply_size);
    size_t got = 0;
    Deadline deadline = Deadline::after_ms(timeout_ms);
    while (got < reply_size) {
        size_t n = link.read_some(std::span(reply).subspan(got), deadline);
        if (n == 0) break;
        got += n;
    }
    reply.resize(got);
    return reply;
}

// What a client's sleep does to the simulated clock.
void pause(InProcessLink& link, Clock::duration d) { link.clock().wait_until(link.clock().now() + d); }

Bytes load_address(uint32_t word) { return {0x55, static_cast<uint8_t>(word), static_cast<uint8_t>(word >> 8), kEop}; }

void write_page(link::ByteLink& link, uint32_t address, const Bytes& data) {
    Bytes command = load_address(address / 2);
    command.insert(command.end(), {0x64, static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size()), 'F'});
    command.insert(command.end(), data.begin(), data.end());
    command.push_back(kEop);
    ASSERT_EQ(exchange(link, command, 4), (Bytes{kInSync, kOk, kInSync, kOk}));
}

Bytes read_page(link::ByteLink& link, uint32_t address, uint16_t length) {
    Bytes command = load_address(address / 2);
    command.insert(command.end(), {0x74, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length), 'F', kEop});
    Bytes reply = exchange(link, command, 2 + 2 + length);
    EXPECT_EQ(reply.size(), 4u + length);
    if (reply.size() != 4u + length) return {};
    return Bytes(reply.begin() + 3, reply.end() - 1);
}

Bytes random_image(size_t length) {
    Bytes out(length);
    uint32_t x = 12345;
    for (auto& b : out) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
    return out;
}

TEST(SimInProcessLink, FastFlashAndVerify64KiB) {
    auto link = open("atmega1284p", false);
    EXPECT_EQ(link->describe(), "sim:optiboot 8.0 on atmega1284p");
    Bytes image = random_image(64 * 1024);
    auto started = std::chrono::steady_clock::now();
    ASSERT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    for (uint32_t at = 0; at < image.size(); at += 256) write_page(*link, at, Bytes(image.begin() + at, image.begin() + at + 256));
    Bytes back;
    for (uint32_t at = 0; at < image.size(); at += 256) {
        Bytes page = read_page(*link, at, 256);
        back.insert(back.end(), page.begin(), page.end());
    }
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(back, image);
    // How fast is measured, not asserted (a busy or emulated machine is slower): bench/ has the figures.
    RecordProperty("flash_and_verify_ms", static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
    EXPECT_EQ(link->flash().counters().programs, 256u);
    EXPECT_EQ(link->flash().counters().violations, 0u);
}

TEST(SimInProcessLink, TimedBytesTakeTheirWireTime) {
    auto link = open("atmega1284p", true);
    const auto byte_time = link->line().wire().byte_time();
    auto sent = std::chrono::steady_clock::now();
    link->write(kGetSync);
    uint8_t first = 0;
    ASSERT_EQ(link->read_some(std::span(&first, 1), Deadline::after_ms(1000)), 1u);
    auto elapsed = std::chrono::steady_clock::now() - sent;
    EXPECT_EQ(first, kInSync);
    // Two bytes out and one back, at 115200 8N1: no earlier than 3 x 86.8 us.
    EXPECT_GE(elapsed, 3 * byte_time);  // a lower bound only: a busy machine may take any longer

    // A page: 266 bytes out (23 ms) + 9 ms of erase and write + 4 bytes back.
    link->drain_input();
    std::this_thread::sleep_for(1ms);
    link->drain_input();
    sent = std::chrono::steady_clock::now();
    write_page(*link, 0, Bytes(256, 0x5A));
    elapsed = std::chrono::steady_clock::now() - sent;
    EXPECT_GE(elapsed, 266 * byte_time + 9ms);
}

TEST(SimInProcessLink, UntimedWaitsAreSkipped) {
    auto link = open("atmega1284p", false);
    ASSERT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    // Nothing is coming: the 2 s wait is skipped, and in that simulated time the watchdog fired.
    auto started = std::chrono::steady_clock::now();
    uint8_t byte;
    EXPECT_EQ(link->read_some(std::span(&byte, 1), Deadline::after_ms(2000)), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2000ms);  // waited for, it would take the whole 2 s
    EXPECT_FALSE(link->device().in_bootloader());
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
}

TEST(SimInProcessLink, DtrEdgeResetsIntoTheBootloader) {
    auto link = open("atmega328p", false);
    EXPECT_TRUE(link->has_modem_lines());
    ASSERT_EQ(exchange(*link, {0x51, kEop}, 2), kOkReply);  // leave programming mode
    pause(*link, 20ms);                                     // past optiboot's 16 ms watchdog
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});  // the application runs
    link->set_dtr_rts(true, true);                          // no edge: still asserted since open
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    link->set_dtr_rts(false, false);
    link->set_dtr_rts(true, true);
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

TEST(SimInProcessLink, WithoutModemLinesOnlyReopenResets) {
    InProcessOptions options;
    options.chip = "atmega328p";
    options.timing = false;
    options.modem_lines = false;
    auto link = open_in_process("stk500v1", options);
    EXPECT_FALSE(link->has_modem_lines());
    ASSERT_EQ(exchange(*link, {0x51, kEop}, 2), kOkReply);
    pause(*link, 20ms);
    link->set_dtr_rts(false, false);
    link->set_dtr_rts(true, true);
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    link->reopen();
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

TEST(SimInProcessLink, WrongBaudGarbles) {
    auto link = open("atmega328p", false);
    link->configure({57600, link::Parity::None});
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    link->configure({115200, link::Parity::Even});
    link->reopen();
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    link->configure({115200, link::Parity::None});
    link->reopen();
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

TEST(SimInProcessLink, DroppedEopSilencesOptiboot) {
    auto link = open("atmega328p", false, "rx:drop@byte=3");
    ASSERT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    // 0x30 [0x20 lost] 0x30 0x20: the second 0x30 is taken as the end of the first command.
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});
    EXPECT_FALSE(link->device().in_bootloader());
    ASSERT_EQ(link->faults().log().size(), 1u);
    EXPECT_EQ(link->faults().log()[0], "rx byte 3: dropped");
    link->reopen();
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

TEST(SimInProcessLink, CorruptedAnswer) {
    auto link = open("atmega328p", false, "tx:corrupt@byte=2:mask=0x01");
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    EXPECT_EQ(exchange(*link, kGetSync, 2), (Bytes{0x15, kOk}));
}

TEST(SimInProcessLink, DelayedByteArrivesLate) {
    auto link = open("atmega328p", false, "tx:delay@byte=0:ms=500");
    link->write(kGetSync);
    uint8_t reply[2];
    EXPECT_EQ(link->read_some(reply, Deadline::after_ms(300)), 0u);  // 300 ms of simulated time
    EXPECT_EQ(link->read_some(reply, Deadline::after_ms(300)), 2u);  // arrives at 500 ms
    EXPECT_EQ(Bytes(reply, reply + 2), kOkReply);
}

TEST(SimInProcessLink, ResetFaultMidSession) {
    auto link = open("atmega328p", false, "rx:reset@byte=2:cause=power");
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    EXPECT_EQ(exchange(*link, kGetSync, 2, 100), Bytes{});  // byte 2 became a power cycle: application
    EXPECT_FALSE(link->device().in_bootloader());
    link->set_dtr_rts(false, false);
    link->set_dtr_rts(true, true);
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

TEST(SimInProcessLink, DisconnectForGood) {
    auto link = open("atmega328p", false, "disconnect@byte=2");
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    link->write(kGetSync);
    uint8_t byte;
    EXPECT_THROW(link->read_some(std::span(&byte, 1), Deadline::after_ms(100)), core::Error);
    EXPECT_THROW(link->write(kGetSync), core::Error);
    try {
        link->reopen();
        FAIL() << "reopen of a vanished device";
    } catch (const core::Error& e) {
        EXPECT_EQ(e.kind(), core::ErrorKind::NotFound);
    }
}

TEST(SimInProcessLink, DisconnectForAWhile) {
    auto link = open("atmega328p", false, "disconnect@byte=2:ms=300");
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
    link->write(kGetSync);
    uint8_t byte;
    EXPECT_THROW(link->read_some(std::span(&byte, 1), Deadline::after_ms(100)), core::Error);
    EXPECT_THROW(link->reopen(), core::Error);
    pause(*link, 300ms);
    link->reopen();
    EXPECT_EQ(exchange(*link, kGetSync, 2), kOkReply);
}

std::pair<Bytes, std::vector<std::string>> noisy_session(const std::string& faults) {
    auto link = open("atmega328p", false, faults);
    Bytes heard;
    for (int i = 0; i < 300; ++i) {
        Bytes reply = exchange(*link, {0x41, 0x81, kEop}, 3, 50);
        heard.insert(heard.end(), reply.begin(), reply.end());
        if (reply.size() != 3) link->reopen();
    }
    return {heard, link->faults().log()};
}

TEST(SimInProcessLink, SameSeedReplaysTheSameSession) {
    const std::string faults = "rx:corrupt@rate=0.01,tx:drop@rate=0.01,rx:drop@rate=0.005";
    auto first = noisy_session("seed=11," + faults);
    EXPECT_GT(first.second.size(), 5u);
    EXPECT_EQ(first, noisy_session("seed=11," + faults));
    EXPECT_NE(first.second, noisy_session("seed=12," + faults).second);
}

TEST(SimInProcessLink, FlashFileKeepsTheImage) {
    auto path = std::filesystem::temp_directory_path() / ("mcuflash-sim-link-" + std::to_string(::getpid()) + ".bin");
    std::filesystem::remove(path);
    InProcessOptions options;
    options.chip = "atmega328p";
    options.timing = false;
    options.flash_file = path;
    {
        auto link = open_in_process("stk500v1", options);
        write_page(*link, 0x100, Bytes(128, 0x42));
    }
    EXPECT_EQ(std::filesystem::file_size(path), 32768u);
    {
        auto link = open_in_process("stk500v1", options);
        EXPECT_EQ(read_page(*link, 0x100, 128), Bytes(128, 0x42));
        EXPECT_TRUE(link->flash().protected_ranges_intact());
    }
    std::filesystem::remove(path);
}

TEST(SimInProcessLink, BadOptionsAreUsageErrors) {
    InProcessOptions options;
    options.chip = "atmega9";
    EXPECT_THROW(open_in_process("stk500v1", options), core::Error);
    options.chip = "atmega328p";
    options.faults = "drop@sometimes";
    EXPECT_THROW(open_in_process("stk500v1", options), core::Error);
}

}  // namespace
}  // namespace mcuflash::sim

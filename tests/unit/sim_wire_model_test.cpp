// Serial wire timing: bit times per byte, and scheduling on absolute times without drift.
#include <gtest/gtest.h>

#include "sim/wire_model.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

TEST(SimWireModel, BitsPerByteFollowParity) {
    EXPECT_EQ(WireModel::bits_for(link::Parity::None), 10u);
    EXPECT_EQ(WireModel::bits_for(link::Parity::Even), 11u);
    auto wire = WireModel::for_line({57600, link::Parity::Even}, true);
    EXPECT_EQ(wire.baud, 57600u);
    EXPECT_EQ(wire.bits_per_byte, 11u);
}

TEST(SimWireModel, ByteTimes) {
    WireModel n81{115200, 10, true};
    EXPECT_EQ(n81.byte_time(), nanoseconds(86806));  // 10 / 115200 s, rounded to the nanosecond
    WireModel e81{115200, 11, true};
    EXPECT_EQ(e81.byte_time(), nanoseconds(95486));
    EXPECT_EQ((WireModel{9600, 10, true}.byte_time()), nanoseconds(1041667));
    // Long runs are computed from the total: 11520 bytes at 115200 8N1 are exactly one second.
    EXPECT_EQ(n81.time_for(11520), 1s);
    EXPECT_EQ((WireModel{250000, 10, true}.time_for(25000)), 1s);
}

TEST(SimWireModel, NoTimingMeansNoTime) {
    WireModel off{115200, 10, false};
    EXPECT_EQ(off.byte_time(), Clock::duration::zero());
    EXPECT_EQ(off.time_for(1'000'000), Clock::duration::zero());
}

TEST(SimLineScheduler, BackToBackThenIdle) {
    WireModel wire{115200, 10, true};
    LineScheduler line(wire);
    Clock::time_point t0{};
    // Three bytes handed over together arrive one byte time apart.
    EXPECT_EQ(line.schedule(t0), t0 + wire.time_for(1));
    EXPECT_EQ(line.schedule(t0), t0 + wire.time_for(2));
    EXPECT_EQ(line.schedule(t0), t0 + wire.time_for(3));
    // After the line has gone idle, a byte takes one byte time from when it is handed over.
    Clock::time_point later = t0 + 10ms;
    EXPECT_EQ(line.schedule(later), later + wire.time_for(1));
}

TEST(SimLineScheduler, NoDriftOverLongBursts) {
    WireModel wire{115200, 10, true};
    LineScheduler line(wire);
    Clock::time_point t0{}, last{};
    for (int i = 0; i < 115200; ++i) last = line.schedule(t0);
    EXPECT_EQ(last, t0 + 10s);  // per-byte rounding would have drifted by about 58 us
}

TEST(SimLineScheduler, StallPushesLaterBytesBack) {
    WireModel wire{115200, 10, true};
    LineScheduler line(wire);
    Clock::time_point t0{};
    line.schedule(t0);
    line.stall(t0, 2s);
    EXPECT_EQ(line.schedule(t0), t0 + wire.time_for(1) + 2s + wire.time_for(1));
    EXPECT_EQ(line.schedule(t0), t0 + wire.time_for(1) + 2s + wire.time_for(2));
}

TEST(SimLineScheduler, WithoutTimingBytesArriveWhenSent) {
    WireModel wire{115200, 10, false};
    LineScheduler line(wire);
    Clock::time_point t0{};
    EXPECT_EQ(line.schedule(t0), t0);
    EXPECT_EQ(line.schedule(t0), t0);
}

}  // namespace
}  // namespace mcuflash::sim

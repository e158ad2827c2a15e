// Fault spec parsing (good and bad) and reproducible fault injection.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "sim/fault_injector.hpp"

namespace mcuflash::sim {
namespace {

using namespace std::chrono_literals;

TEST(SimFaultSpec, ParsesTheFullExample) {
    auto spec = FaultSpec::parse(
        "seed=7,rx:drop@rate=0.001,tx:corrupt@byte=1500,rx:delay@byte=300:ms=2000,rx:reset@byte=9000,"
        "disconnect@byte=20000");
    EXPECT_EQ(spec.seed, 7u);
    ASSERT_EQ(spec.rules.size(), 5u);

    EXPECT_EQ(spec.rules[0].direction, Direction::Rx);
    EXPECT_EQ(spec.rules[0].action, FaultAction::Drop);
    EXPECT_DOUBLE_EQ(spec.rules[0].rate.value(), 0.001);
    EXPECT_FALSE(spec.rules[0].at_byte);

    EXPECT_EQ(spec.rules[1].direction, Direction::Tx);
    EXPECT_EQ(spec.rules[1].action, FaultAction::Corrupt);
    EXPECT_EQ(spec.rules[1].at_byte.value(), 1500u);
    EXPECT_FALSE(spec.rules[1].mask);

    EXPECT_EQ(spec.rules[2].action, FaultAction::Delay);
    EXPECT_EQ(spec.rules[2].at_byte.value(), 300u);
    EXPECT_EQ(spec.rules[2].ms, 2000u);

    EXPECT_EQ(spec.rules[3].action, FaultAction::Reset);
    EXPECT_EQ(spec.rules[3].cause, ResetCause::Pin);

    EXPECT_EQ(spec.rules[4].direction, Direction::Rx);  // the default direction
    EXPECT_EQ(spec.rules[4].action, FaultAction::Disconnect);
    EXPECT_EQ(spec.rules[4].ms, 0u);  // for ever
}

TEST(SimFaultSpec, ParametersAndCanonicalForm) {
    auto spec = FaultSpec::parse("tx:corrupt@rate=0.5:mask=0x81,reset@byte=3:cause=power,tx:disconnect@byte=9:ms=250");
    EXPECT_EQ(spec.seed, 1u);  // the default
    EXPECT_EQ(spec.rules[0].mask.value(), 0x81);
    EXPECT_EQ(spec.rules[1].cause, ResetCause::PowerOn);
    EXPECT_EQ(spec.rules[2].ms, 250u);
    std::string canonical = spec.to_string();
    EXPECT_EQ(canonical,
              "seed=1,tx:corrupt@rate=0.5:mask=0x81,rx:reset@byte=3:cause=power,tx:disconnect@byte=9:ms=250");
    EXPECT_EQ(FaultSpec::parse(canonical).to_string(), canonical);
    EXPECT_TRUE(FaultSpec::parse("").empty());
    EXPECT_TRUE(FaultSpec::parse("seed=5").empty());
}

TEST(SimFaultSpec, RejectsBadSpecsWithTheReason) {
    struct Case {
        const char* spec;
        const char* says;
    };
    const Case cases[] = {
        {"rx:drop", "expected [rx:|tx:]ACTION@TRIGGER"},
        {"xx:drop@rate=0.1", "unknown action 'xx:drop'"},
        {"explode@byte=3", "unknown action 'explode'"},
        {"drop@rat=0.1", "unknown trigger 'rat'"},
        {"drop@rate=0", "not in (0, 1]"},
        {"drop@rate=1.5", "not in (0, 1]"},
        {"drop@rate=abc", "not a number"},
        {"drop@byte=-1", "not a whole number"},
        {"drop@byte=12x", "not a whole number"},
        {"delay@byte=3", "delay needs :ms=N"},
        {"delay@byte=3:ms=0", "delay needs :ms=N"},
        {"drop@byte=3:ms=5", "ms= applies to delay and disconnect only"},
        {"corrupt@byte=3:mask=0", "mask=0 would change nothing"},
        {"corrupt@byte=3:mask=256", "larger than 255"},
        {"reset@byte=3:cause=brownout", "neither pin nor power"},
        {"reset@byte=3:colour=red", "unknown parameter 'colour'"},
        {"delay@byte=3:ms=5:ms=6", "ms= given twice"},
        {"delay@byte=3:ms", "should be KEY=VALUE"},
        {"seed=1,seed=2", "seed given twice"},
        {"seed=x", "not a whole number"},
        {"drop@byte=1,,drop@byte=2", "empty item"},
    };
    for (const auto& c : cases) {
        try {
            FaultSpec::parse(c.spec);
            ADD_FAILURE() << "accepted: " << c.spec;
        } catch (const core::Error& e) {
            EXPECT_EQ(e.kind(), core::ErrorKind::Usage) << c.spec;
            EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos)
                << c.spec << " -> " << e.what() << " (expected to mention: " << c.says << ")";
        }
    }
}

TEST(SimFaultInjector, ByteTriggersCountEachDirection) {
    FaultInjector faults(FaultSpec::parse("rx:drop@byte=2,tx:corrupt@byte=1:mask=0x0F,rx:delay@byte=4:ms=30,"
                                          "rx:reset@byte=5:cause=power,tx:disconnect@byte=3:ms=100"));
    std::vector<FaultVerdict> rx, tx;
    for (uint8_t i = 0; i < 6; ++i) rx.push_back(faults.next(Direction::Rx, i));
    for (uint8_t i = 0; i < 4; ++i) tx.push_back(faults.next(Direction::Tx, 0xA0));
    EXPECT_FALSE(rx[1].drop);
    EXPECT_TRUE(rx[2].drop);
    EXPECT_EQ(rx[4].stall, 30ms);
    EXPECT_EQ(rx[4].value, 4);
    EXPECT_EQ(rx[5].reset, ResetCause::PowerOn);
    EXPECT_EQ(tx[0].value, 0xA0);
    EXPECT_EQ(tx[1].value, 0xAF);
    EXPECT_TRUE(tx[3].disconnect);
    EXPECT_EQ(tx[3].dead_for, 100ms);
    EXPECT_EQ(faults.bytes_seen(Direction::Rx), 6u);
    EXPECT_EQ(faults.bytes_seen(Direction::Tx), 4u);
    ASSERT_EQ(faults.log().size(), 5u);
    EXPECT_EQ(faults.log()[0], "rx byte 2: dropped");
    EXPECT_EQ(faults.log()[1], "rx byte 4: delayed 30 ms");
    EXPECT_EQ(faults.log()[3], "tx byte 1: corrupted 0xa0 -> 0xaf");
}

std::vector<std::string> run(const std::string& spec, int bytes) {
    FaultInjector faults(FaultSpec::parse(spec));
    for (int i = 0; i < bytes; ++i) {
        faults.next(Direction::Rx, static_cast<uint8_t>(i));
        if (i % 3 == 0) faults.next(Direction::Tx, static_cast<uint8_t>(i));
    }
    return faults.log();
}

TEST(SimFaultInjector, SameSeedSameFaults) {
    const std::string rules = "rx:drop@rate=0.01,rx:corrupt@rate=0.005,tx:corrupt@rate=0.02,tx:drop@rate=0.003";
    auto first = run("seed=42," + rules, 20000);
    EXPECT_GT(first.size(), 100u);
    EXPECT_EQ(first, run("seed=42," + rules, 20000));
    EXPECT_NE(first, run("seed=43," + rules, 20000));
}

TEST(SimFaultInjector, DirectionsDrawIndependently) {
    // The rx faults must not depend on how tx traffic interleaves with rx traffic.
    FaultInjector a(FaultSpec::parse("seed=9,rx:drop@rate=0.05,tx:drop@rate=0.05"));
    FaultInjector b(FaultSpec::parse("seed=9,rx:drop@rate=0.05,tx:drop@rate=0.05"));
    std::vector<bool> rx_a, rx_b;
    for (int i = 0; i < 5000; ++i) {
        rx_a.push_back(a.next(Direction::Rx, 0).drop);
        if (i % 7 == 0) a.next(Direction::Tx, 0);
    }
    for (int i = 0; i < 5000; ++i) rx_b.push_back(b.next(Direction::Rx, 0).drop);
    EXPECT_EQ(rx_a, rx_b);
}

TEST(SimFaultInjector, RateIsRoughlyHonoured) {
    FaultInjector faults(FaultSpec::parse("seed=3,drop@rate=0.1"));
    int dropped = 0;
    for (int i = 0; i < 100000; ++i) dropped += faults.next(Direction::Rx, 0).drop;
    EXPECT_NEAR(dropped, 10000, 500);
}

}  // namespace
}  // namespace mcuflash::sim

// The Klipper MCU session against the simulated MCU (sim/klipper/mcu_responder), on a link that can
// lose what the MCU sends: identify still completes, by sending again with the sequence the MCU
// expects, whether a block was lost on its way out or its answer on the way back.
#include <gtest/gtest.h>

#include <deque>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "protocol/klipper_mcu/session.hpp"
#include "sim/klipper/mcu_responder.hpp"

namespace km = mcuflash::protocol::klipper_mcu;
using mcuflash::sim::klipper::McuResponder;

namespace {

const char* kDictionary = R"({"app": "Klipper", "version": "v0.12.0-test", "build_versions": "gcc",
  "config": {"MCU": "stm32f103xe", "CLOCK_FREQ": 72000000},
  "commands": {"identify offset=%u count=%c": 1, "get_uptime": 4, "get_clock": 5},
  "responses": {"identify_response offset=%u data=%.*s": 0, "uptime high=%u clock=%u": -11, "clock clock=%u": -10}})";

// The host's writes reach the MCU at once; its answers wait to be read. `lose_answers` and
// `lose_requests` name writes (0-based, the opening sync byte is write 0) whose answer, or which
// themselves, get lost.
class LossyMcuLink : public mcuflash::link::ByteLink {
public:
    explicit LossyMcuLink(McuResponder& mcu) : mcu_(mcu) {}
    std::set<size_t> lose_answers, lose_requests;
    std::string describe() const override { return "simulated Klipper MCU"; }
    mcuflash::link::SerialSettings settings() const override { return {250000, mcuflash::link::Parity::None}; }

protected:
    void do_write(std::span<const uint8_t> bytes) override {
        const size_t n = writes_++;
        if (lose_requests.count(n)) return;
        auto answer = mcu_.receive(bytes, mcuflash::core::Clock::now());
        if (!lose_answers.count(n)) pending_.insert(pending_.end(), answer.begin(), answer.end());
    }
    size_t do_read_some(std::span<uint8_t> buffer, const mcuflash::core::Deadline& deadline) override {
        // Nothing more is coming: the wait runs out as on a real line.
        if (pending_.empty()) std::this_thread::sleep_for(deadline.remaining());
        const size_t n = std::min(buffer.size(), pending_.size());
        std::copy_n(pending_.begin(), n, buffer.begin());
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(n));
        return n;
    }
    size_t do_drain_input() override {
        const size_t n = pending_.size();
        pending_.clear();
        return n;
    }

private:
    McuResponder& mcu_;
    std::deque<uint8_t> pending_;
    size_t writes_ = 0;
};

}  // namespace

TEST(KlipperSession, IdentifiesThroughLostRequestsAndLostAnswers) {
    const auto compressed = km::deflate(kDictionary);
    McuResponder mcu(compressed);
    LossyMcuLink link(mcu);
    link.lose_requests = {2};    // the second identify never reaches the MCU
    link.lose_answers = {4, 5};  // the MCU answers the fourth and fifth, and the answers are lost
    km::Session session(link);
    const auto& identified = session.identify(std::chrono::milliseconds(3000));
    EXPECT_EQ(identified.identify_data, compressed);
    EXPECT_EQ(identified.dictionary.version, "v0.12.0-test");
    EXPECT_EQ(identified.dictionary.mcu(), "stm32f103xe");
    EXPECT_GE(session.retransmissions(), 3u);
    const auto clock = session.query("get_clock", {}, "clock");
    EXPECT_EQ(clock.name, "clock");
}

TEST(KlipperSession, NothingAnsweringIsATimeoutThatSaysSo) {
    McuResponder mcu(km::deflate(kDictionary));
    LossyMcuLink link(mcu);
    for (size_t i = 0; i < 100; ++i) link.lose_requests.insert(i);
    km::Session session(link);
    try {
        session.identify(std::chrono::milliseconds(500));
        FAIL() << "identified a silent MCU";
    } catch (const mcuflash::core::Error& e) {
        EXPECT_EQ(e.kind(), mcuflash::core::ErrorKind::Timeout);
        EXPECT_NE(std::string(e.what()).find("nothing answered like Klipper"), std::string::npos) << e.what();
    }
}

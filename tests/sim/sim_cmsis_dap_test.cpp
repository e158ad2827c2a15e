// The simulated CMSIS-DAP probe as raw USB, command and response bytes as the CMSIS-DAP v2.1
// specification lays them out: descriptors of the v2 (bulk) and v1 (HID) probes, DAP_Info,
// DAP_Connect, a DPIDR read, posted AP reads (the probe's own RDBUFF read), WAIT retried up to the
// configured count, FAULT reported with its acknowledge, value match, DAP_TransferBlock reading the
// flash back, nRESET, the SWJ sequence, unknown commands, and the timing model.
//
// The probe runs here over a small DebugTarget written for this test (an SW-DP with one MEM-AP onto
// a flash, with posted AP reads as the wire has them), so that each check knows what the target did.
#include <gtest/gtest.h>

#include <string>

#include "link/usb_hid_device.hpp"
#include "sim/cmsis_dap/cmsis_dap_probe.hpp"
#include "sim/cmsis_dap/simulator.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;
using sim::cmsis_dap::CmsisDapProbe;
using sim::cmsis_dap::ProbeVersion;
using sim::swd::SwdAck;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint32_t kDpidr = 0x1BA01477;  // Cortex-M3 SW-DP
constexpr uint32_t kFlashBase = 0x08000000, kFlashSize = 0x10000;

// An SW-DP with an AHB MEM-AP (CSW 0x00, TAR 0x04, DRW 0x0C; TAR increments by 4 after each DRW
// access) onto a 64 KiB flash at 0x08000000. Like the wire: an AP read answers with the previous AP
// read's result, RDBUFF holds the last one. Faults: a DRW access outside the flash. WAIT: the next
// `waits` packets. Every packet is logged as "AP R C" / "DP W 8".
class FakeTarget : public sim::swd::DebugTarget {
public:
    FakeTarget() : flash_(sim::FlashLayout::uniform(kFlashBase, kFlashSize, 1024, 2)) {
        Bytes pattern(kFlashSize);
        for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + (i >> 8));
        flash_.load(kFlashBase, pattern);
    }

    void swj_sequence(std::span<const uint8_t> bits, unsigned count, core::Clock::time_point) override {
        sequence_bits += count;
        last_sequence.assign(bits.begin(), bits.end());
    }

    SwdAck transfer(bool ap, bool read, uint8_t address, uint32_t& data, core::Clock::time_point now,
                    bool) override {
        log.push_back(std::string(ap ? "AP " : "DP ") + (read ? "R " : "W ") + "0123456789ABCDEF"[address]);
        times.push_back(now);
        if (waits > 0) {
            --waits;
            return SwdAck::Wait;
        }
        if (!ap) {
            if (read) {
                switch (address) {
                    case 0x0: data = kDpidr; break;
                    case 0x4: data = ctrl_stat_ | (ctrl_stat_ & 0x50000000u) << 1; break;  // acks follow requests
                    case 0xC: data = rdbuff_; break;
                    default: data = 0;
                }
            } else if (address == 0x4) {
                ctrl_stat_ = data;
            } else if (address == 0x8) {
                select_ = data;
            }
            return SwdAck::Ok;
        }
        if (read) {
            uint32_t value = 0;
            if (address == 0x0) value = csw_;
            else if (address == 0x4) value = tar_;
            else if (address == 0xC) {
                if (!flash_.contains(tar_, 4)) return SwdAck::Fault;
                for (int i = 0; i < 4; ++i) value |= uint32_t{flash_.at(tar_ + i)} << (8 * i);
                tar_ += 4;
            }
            data = rdbuff_;  // posted: the previous AP read's result
            rdbuff_ = value;
            return SwdAck::Ok;
        }
        if (address == 0x0) csw_ = data;
        else if (address == 0x4) tar_ = data;
        else if (address == 0xC) {
            if (!flash_.contains(tar_, 4)) return SwdAck::Fault;
            tar_ += 4;
        }
        return SwdAck::Ok;
    }

    void set_reset_line(bool asserted, core::Clock::time_point) override { resets.push_back(asserted); }
    sim::FlashMemory& flash() override { return flash_; }
    std::string describe() const override { return "a test SW-DP with 64 KiB of flash"; }

    uint32_t word(uint32_t address) const {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t{flash_.at(address + i)} << (8 * i);
        return v;
    }

    std::vector<std::string> log;
    std::vector<core::Clock::time_point> times;
    std::vector<bool> resets;
    unsigned sequence_bits = 0;
    Bytes last_sequence;
    unsigned waits = 0;

private:
    sim::FlashMemory flash_;
    uint32_t ctrl_stat_ = 0, select_ = 0, csw_ = 0, tar_ = 0, rdbuff_ = 0;
};

Bytes le32(uint32_t v) { return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; }
Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// A v2 probe in process with timing off, driven through its bulk endpoints as OpenOCD does.
struct Probe {
    FakeTarget* target = nullptr;
    std::unique_ptr<sim::usb::InProcessUsb> usb;

    explicit Probe(ProbeVersion version = ProbeVersion::V2Bulk) {
        auto fake = std::make_unique<FakeTarget>();
        target = fake.get();
        usb = std::make_unique<sim::usb::InProcessUsb>(
            std::make_unique<CmsisDapProbe>(std::move(fake), version, false, "STMicroelectronics", "stm32f103xb"),
            false);
    }
    CmsisDapProbe& model() { return dynamic_cast<CmsisDapProbe&>(usb->model()); }
    Bytes command(const Bytes& bytes) {
        usb->endpoint_out(0x01, bytes, 1000);
        return usb->endpoint_in(0x81, 64, 1000);
    }
    // Connected, SELECT = 0, CSW = 32-bit auto-increment, TAR = `address`.
    void point_at(uint32_t address) {
        ASSERT_EQ(command({0x02, 0x01}), (Bytes{0x02, 0x01}));
        auto r = command(cat({{0x05, 0x00, 0x03, 0x08}, le32(0), {0x01}, le32(0x23000012), {0x05}, le32(address)}));
        ASSERT_EQ(r, (Bytes{0x05, 0x03, 0x01}));
        target->log.clear();
    }
};

}  // namespace

TEST(SimCmsisDap, TheV2ProbeHasAVendorInterfaceNamedCmsisDapWithBulkOutThenIn) {
    Probe p;
    auto device = p.usb->descriptor(1, 0, 0, 18);
    EXPECT_EQ(device[8] | device[9] << 8, 0x0D28);  // ARM
    EXPECT_EQ(device[10] | device[11] << 8, 0x0204);  // DAPLink CMSIS-DAP
    auto config = p.usb->configuration_descriptor();
    ASSERT_EQ(config.size(), 9u + 9 + 7 + 7);
    const Bytes interface(config.begin() + 9, config.begin() + 18);
    EXPECT_EQ(interface, (Bytes{9, 4, 0, 0, 2, 0xFF, 0x00, 0x00, 4}));
    EXPECT_NE(p.usb->string_descriptor(interface[8]).find("CMSIS-DAP"), std::string::npos);
    EXPECT_EQ(Bytes(config.begin() + 18, config.begin() + 25), (Bytes{7, 5, 0x01, 0x02, 64, 0, 0}));
    EXPECT_EQ(Bytes(config.begin() + 25, config.end()), (Bytes{7, 5, 0x81, 0x02, 64, 0, 0}));
}

TEST(SimCmsisDap, TheV1ProbeIsAHidDeviceWith64ByteReportsAndCmsisDapInItsProductName) {
    Probe p(ProbeVersion::V1Hid);
    auto config = p.usb->configuration_descriptor();
    auto endpoints = link::hid_endpoints(config);
    ASSERT_TRUE(endpoints);
    EXPECT_EQ(endpoints->in, 0x81);
    EXPECT_EQ(endpoints->out, 0x01);
    EXPECT_EQ(endpoints->in_size, 64);
    EXPECT_EQ(endpoints->out_size, 64);
    auto device = p.usb->descriptor(1, 0, 0, 18);
    EXPECT_NE(p.usb->string_descriptor(device[15]).find("CMSIS-DAP"), std::string::npos);

    link::UsbHidDevice hid(*p.usb);
    hid.write_report(Bytes{0x00, 0x04}, 1000);  // DAP_Info: protocol version
    auto report = hid.read_report(64, 1000);
    ASSERT_EQ(report.size(), 64u);  // a whole report, zero padded
    EXPECT_EQ(Bytes(report.begin(), report.begin() + 8), (Bytes{0x00, 0x06, '2', '.', '1', '.', '0', 0x00}));
    EXPECT_EQ(report[8], 0);
    hid.write_report(Bytes{0x00, 0xFF}, 1000);  // packet size
    EXPECT_EQ(Bytes(hid.read_report(64, 1000)).at(2), 64);
}

TEST(SimCmsisDap, DapInfoAnswersAsTheSpecificationLaysItOut) {
    Probe p;
    EXPECT_EQ(p.command({0x00, 0x04}), (Bytes{0x00, 0x06, '2', '.', '1', '.', '0', 0x00}));
    EXPECT_EQ(p.command({0x00, 0xF0}), (Bytes{0x00, 0x01, 0x01}));  // SWD only
    EXPECT_EQ(p.command({0x00, 0xFE}), (Bytes{0x00, 0x01, 0x04}));  // 4 packets
    EXPECT_EQ(p.command({0x00, 0xFF}), (Bytes{0x00, 0x02, 0x40, 0x00}));  // 64 bytes
    auto serial = p.command({0x00, 0x03});
    ASSERT_GE(serial.size(), 3u);
    EXPECT_EQ(serial[1], serial.size() - 2);  // the length counts the terminating NUL
    EXPECT_EQ(serial.back(), 0);
    EXPECT_EQ(std::string(serial.begin() + 2, serial.end() - 1), p.usb->string_descriptor(3));
    auto target = p.command({0x00, 0x06});
    EXPECT_EQ(std::string(target.begin() + 2, target.end() - 1), "stm32f103xb");
    auto vendor = p.command({0x00, 0x05});
    EXPECT_EQ(std::string(vendor.begin() + 2, vendor.end() - 1), "STMicroelectronics");
    EXPECT_EQ(p.command({0x00, 0x07}), (Bytes{0x00, 0x00}));  // no board vendor
    EXPECT_EQ(p.command({0x00, 0xF1}), (Bytes{0x00, 0x00}));  // no test domain timer
}

TEST(SimCmsisDap, ConnectIsSwdOnlyAndUnknownCommandsAnswer0xFF) {
    Probe p;
    EXPECT_EQ(p.command({0x02, 0x02}), (Bytes{0x02, 0x00}));  // JTAG: failed
    EXPECT_EQ(p.command({0x02, 0x00}), (Bytes{0x02, 0x01}));  // default: SWD
    EXPECT_EQ(p.command({0x02, 0x01}), (Bytes{0x02, 0x01}));
    EXPECT_EQ(p.command({0x14, 0x01, 0x02, 0x00}), (Bytes{0xFF}));  // DAP_JTAG_Sequence
    EXPECT_EQ(p.command({0x42}), (Bytes{0xFF}));
    EXPECT_EQ(p.command({0x7E, 0x01, 0x00, 0x04}), (Bytes{0xFF}));  // DAP_QueueCommands: not offered
    EXPECT_EQ(p.command({0x01, 0x00, 0x01}), (Bytes{0x01, 0x00}));  // DAP_HostStatus
    EXPECT_EQ(p.command(cat({{0x04, 0x00}, {0x40, 0x00}, {0x00, 0x00}})), (Bytes{0x04, 0x00}));
    EXPECT_EQ(p.command({0x13, 0x00}), (Bytes{0x13, 0x00}));
    EXPECT_EQ(p.command(cat({{0x11}, le32(4'000'000)})), (Bytes{0x11, 0x00}));
    EXPECT_EQ(p.model().processor().swd_clock_hz(), 4'000'000u);
    EXPECT_EQ(p.command(cat({{0x11}, le32(0)})), (Bytes{0x11, 0xFF}));  // 0 Hz is refused
    EXPECT_EQ(p.command({0x03}), (Bytes{0x03, 0x00}));
    EXPECT_FALSE(p.model().processor().connected());
}

TEST(SimCmsisDap, TransfersBeforeConnectDoNothing) {
    Probe p;
    EXPECT_EQ(p.command({0x05, 0x00, 0x01, 0x02}), (Bytes{0x05, 0x00, 0x00}));
    EXPECT_TRUE(p.target->log.empty());
}

TEST(SimCmsisDap, ADpidrReadIsOnePacketAndItsValueLittleEndian) {
    Probe p;
    p.command({0x02, 0x01});
    EXPECT_EQ(p.command({0x05, 0x00, 0x01, 0x02}), (Bytes{0x05, 0x01, 0x01, 0x77, 0x14, 0xA0, 0x1B}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"DP R 0"}));
}

TEST(SimCmsisDap, APostedApReadIsCollectedWithTheProbesOwnRdbuffRead) {
    Probe p;
    p.point_at(kFlashBase + 0x100);
    // One AP read of DRW: the packet posts it, RDBUFF brings it; the host sees its own value.
    EXPECT_EQ(p.command({0x05, 0x00, 0x01, 0x0F}), cat({{0x05, 0x01, 0x01}, le32(p.target->word(kFlashBase + 0x100))}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"AP R C", "DP R C"}));

    // Three in a row, then a DP read: each AP packet brings the one before; the DP read comes after
    // the RDBUFF read that ends the run.
    p.target->log.clear();
    auto r = p.command({0x05, 0x00, 0x04, 0x0F, 0x0F, 0x0F, 0x02});
    EXPECT_EQ(r, cat({{0x05, 0x04, 0x01}, le32(p.target->word(kFlashBase + 0x104)), le32(p.target->word(kFlashBase + 0x108)),
                      le32(p.target->word(kFlashBase + 0x10C)), le32(kDpidr)}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"AP R C", "AP R C", "AP R C", "DP R C", "DP R 0"}));
}

TEST(SimCmsisDap, ACommandEndingWithAWriteChecksItWithAnRdbuffRead) {
    Probe p;
    p.command({0x02, 0x01});
    EXPECT_EQ(p.command(cat({{0x05, 0x00, 0x01, 0x05}, le32(kFlashBase)})), (Bytes{0x05, 0x01, 0x01}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"AP W 4", "DP R C"}));
}

TEST(SimCmsisDap, WaitIsRetriedUpToTheConfiguredCount) {
    Probe p;
    p.command({0x02, 0x01});
    EXPECT_EQ(p.command({0x04, 0x00, 0x05, 0x00, 0x00, 0x00}), (Bytes{0x04, 0x00}));  // 5 WAIT retries
    p.target->waits = 5;
    EXPECT_EQ(p.command({0x05, 0x00, 0x01, 0x02}), (Bytes{0x05, 0x01, 0x01, 0x77, 0x14, 0xA0, 0x1B}));
    EXPECT_EQ(p.target->log.size(), 6u);  // 5 WAITs and the OK

    p.target->log.clear();
    p.target->waits = 6;  // one more than the retries
    EXPECT_EQ(p.command({0x05, 0x00, 0x02, 0x02, 0x02}), (Bytes{0x05, 0x00, 0x02}));  // none done, WAIT
    EXPECT_EQ(p.target->log.size(), 6u);  // and the second request was never sent
    EXPECT_EQ(p.model().processor().wait_acks(), 11u);
}

TEST(SimCmsisDap, AFaultStopsTheTransferAndIsReportedWithTheCountDoneBeforeIt) {
    Probe p;
    p.point_at(kFlashBase - 8);  // outside the flash: the MEM-AP faults
    // Write TAR (done), read DRW (FAULT), then a DPIDR read that must not run.
    auto r = p.command(cat({{0x05, 0x00, 0x03, 0x05}, le32(0x20000000 - 4), {0x0F, 0x02}}));
    EXPECT_EQ(r, (Bytes{0x05, 0x01, 0x04}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"AP W 4", "AP R C"}));
    // DAP_WriteABORT clears it: a DP write to ABORT.
    p.target->log.clear();
    EXPECT_EQ(p.command(cat({{0x08, 0x00}, le32(0x1E)})), (Bytes{0x08, 0x00}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"DP W 0"}));
}

TEST(SimCmsisDap, ValueMatchRereadsUntilTheMaskedValueMatches) {
    Probe p;
    p.command({0x02, 0x01});
    // Request debug and system power-up (CTRL/STAT bits 28, 30), then wait for both acks (29, 31).
    auto r = p.command(cat({{0x05, 0x00, 0x03, 0x04}, le32(0x50000000), {0x20}, le32(0xA0000000), {0x16},
                            le32(0xA0000000)}));
    EXPECT_EQ(r, (Bytes{0x05, 0x03, 0x01}));  // no data for a value-match read
    // Waiting for a value that never comes: mismatch after 1 + match-retry reads.
    p.command({0x04, 0x00, 0x64, 0x00, 0x02, 0x00});  // match retry 2
    p.target->log.clear();
    r = p.command(cat({{0x05, 0x00, 0x01, 0x12}, le32(0x12345678)}));  // DPIDR == 0x12345678 under the mask
    EXPECT_EQ(r, (Bytes{0x05, 0x00, 0x11}));  // OK ack with the mismatch bit
    EXPECT_EQ(p.target->log.size(), 3u);
}

TEST(SimCmsisDap, TransferBlockReadsTheFlashBack) {
    Probe p;
    p.point_at(kFlashBase);
    auto r = p.command({0x06, 0x00, 0x0E, 0x00, 0x0F});  // 14 words of DRW: a full 64-byte packet
    Bytes expected{0x06, 0x0E, 0x00, 0x01};
    Bytes flash(56);
    p.target->flash().read(kFlashBase, flash);
    expected.insert(expected.end(), flash.begin(), flash.end());
    EXPECT_EQ(r, expected);
    EXPECT_EQ(p.target->log.size(), 15u);  // 14 AP reads, the first posting, and RDBUFF
    EXPECT_EQ(p.target->log.back(), "DP R C");

    // A block that runs off the flash: the words before the FAULT, then the FAULT.
    p.point_at(kFlashBase + kFlashSize - 8);
    r = p.command({0x06, 0x00, 0x04, 0x00, 0x0F});
    ASSERT_EQ(r.size(), 4u + 4);  // one word came back before the faulting access's packet
    EXPECT_EQ(Bytes(r.begin(), r.begin() + 4), (Bytes{0x06, 0x01, 0x00, 0x04}));
    EXPECT_EQ(Bytes(r.begin() + 4, r.end()), le32(p.target->word(kFlashBase + kFlashSize - 8)));
}

TEST(SimCmsisDap, TransferBlockWritesGoToTheRegisterInOrder) {
    Probe p;
    p.point_at(kFlashBase);
    auto r = p.command(cat({{0x06, 0x00, 0x03, 0x00, 0x0D}, le32(1), le32(2), le32(3)}));
    EXPECT_EQ(r, (Bytes{0x06, 0x03, 0x00, 0x01}));
    EXPECT_EQ(p.target->log, (std::vector<std::string>{"AP W C", "AP W C", "AP W C", "DP R C"}));
}

TEST(SimCmsisDap, NresetFollowsSwjPinsBit7AndSequencesReachTheTarget) {
    Probe p;
    EXPECT_EQ(p.command(cat({{0x10, 0x00, 0x80}, le32(0)})), (Bytes{0x10, 0x7F}));  // nRESET low
    EXPECT_EQ(p.command(cat({{0x10, 0x80, 0x80}, le32(0)})), (Bytes{0x10, 0xFF}));  // released
    EXPECT_EQ(p.command(cat({{0x10, 0x00, 0x01}, le32(0)})), (Bytes{0x10, 0xFE}));  // SWCLK only
    EXPECT_EQ(p.target->resets, (std::vector<bool>{true, false}));
    // A line reset (51 ones) and the JTAG-to-SWD select 0xE79E, as OpenOCD sends them.
    EXPECT_EQ(p.command({0x12, 51, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07}), (Bytes{0x12, 0x00}));
    EXPECT_EQ(p.command({0x12, 16, 0x9E, 0xE7}), (Bytes{0x12, 0x00}));
    EXPECT_EQ(p.target->sequence_bits, 67u);
    EXPECT_EQ(p.target->last_sequence, (Bytes{0x9E, 0xE7}));
    // DAP_SWD_Sequence: 8 bits out, 4 bits in (nothing drives the line: ones).
    EXPECT_EQ(p.command({0x1D, 0x02, 0x08, 0x00, 0x84}), (Bytes{0x1D, 0x00, 0xFF}));
    EXPECT_EQ(p.target->sequence_bits, 75u);
    // DAP_ResetTarget: an nRESET pulse.
    EXPECT_EQ(p.command({0x0A}), (Bytes{0x0A, 0x00, 0x01}));
    EXPECT_EQ(p.target->resets, (std::vector<bool>{true, false, true, false}));
}

TEST(SimCmsisDap, ExecuteCommandsAnswersEachInOneResponseAndAbortHasNone) {
    Probe p;
    EXPECT_EQ(p.command({0x7F, 0x02, 0x00, 0x04, 0x02, 0x01}),
              (Bytes{0x7F, 0x02, 0x00, 0x06, '2', '.', '1', '.', '0', 0x00, 0x02, 0x01}));
    p.usb->endpoint_out(0x01, Bytes{0x07}, 1000);  // DAP_TransferAbort
    EXPECT_EQ(p.command({0x03}), (Bytes{0x03, 0x00}));  // the next response is the next command's
}

TEST(SimCmsisDap, ResponsesComeBackInOrderWhenSeveralCommandsAreOutstanding) {
    Probe p;
    p.command({0x02, 0x01});
    p.usb->endpoint_out(0x01, Bytes{0x05, 0x00, 0x01, 0x02}, 1000);
    p.usb->endpoint_out(0x01, Bytes{0x00, 0xFE}, 1000);
    p.usb->endpoint_out(0x01, Bytes{0x03}, 1000);
    EXPECT_EQ(p.usb->endpoint_in(0x81, 64, 1000), (Bytes{0x05, 0x01, 0x01, 0x77, 0x14, 0xA0, 0x1B}));
    EXPECT_EQ(p.usb->endpoint_in(0x81, 64, 1000), (Bytes{0x00, 0x01, 0x04}));
    EXPECT_EQ(p.usb->endpoint_in(0x81, 64, 1000), (Bytes{0x03, 0x00}));
}

// The timing model at hand-picked instants: SWD bits at the DAP_SWJ_Clock rate, and a response no
// earlier than one 1 ms frame after its command.
TEST(SimCmsisDap, WithTimingAResponseWaitsForItsSwdBitsAndAUsbFrame) {
    using namespace std::chrono_literals;
    auto fake = std::make_unique<FakeTarget>();
    FakeTarget* target = fake.get();
    CmsisDapProbe probe(std::move(fake), ProbeVersion::V2Bulk, true);
    core::Clock::time_point t{};
    probe.bus_reset(t);
    ASSERT_TRUE(probe.bulk_out(0x01, Bytes{0x02, 0x01}, t));
    EXPECT_EQ(probe.bulk_in(0x81, 64, t + 999us).state, sim::usb::EndpointIn::State::Nak);
    EXPECT_EQ(probe.bulk_in(0x81, 64, t + 1ms).data, (Bytes{0x02, 0x01}));

    // 100 kHz: the probe's 100 DPIDR reads (46 bits each at 10 us a bit) take 46 ms.
    t += 10ms;
    ASSERT_TRUE(probe.bulk_out(0x01, cat({{0x11}, le32(100'000)}), t));
    EXPECT_EQ(probe.bulk_in(0x81, 64, t + 1ms).data, (Bytes{0x11, 0x00}));
    t += 10ms;
    target->times.clear();
    ASSERT_TRUE(probe.bulk_out(0x01, Bytes{0x06, 0x00, 100, 0x00, 0x02}, t));
    ASSERT_EQ(target->times.size(), 100u);
    EXPECT_EQ(target->times[1] - target->times[0], 460us);  // each packet reaches the target at its own time
    EXPECT_EQ(probe.bulk_in(0x81, 512, t + 45ms).state, sim::usb::EndpointIn::State::Nak);
    EXPECT_EQ(probe.bulk_in(0x81, 512, t + 46ms).data.size(), 4u + 400);
    EXPECT_EQ(probe.next_event(), std::nullopt);
}

TEST(SimCmsisDap, WithTimingOffNothingWaits) {
    auto fake = std::make_unique<FakeTarget>();
    CmsisDapProbe probe(std::move(fake), ProbeVersion::V2Bulk, false);
    core::Clock::time_point t{};
    probe.bus_reset(t);
    ASSERT_TRUE(probe.bulk_out(0x01, cat({{0x11}, le32(1000)}), t));  // 1 kHz
    EXPECT_EQ(probe.bulk_in(0x81, 64, t).data, (Bytes{0x11, 0x00}));
    ASSERT_TRUE(probe.bulk_out(0x01, Bytes{0x02, 0x01}, t));
    EXPECT_EQ(probe.bulk_in(0x81, 64, t).data, (Bytes{0x02, 0x01}));
    ASSERT_TRUE(probe.bulk_out(0x01, Bytes{0x06, 0x00, 100, 0x00, 0x02}, t));
    EXPECT_EQ(probe.bulk_in(0x81, 512, t).state, sim::usb::EndpointIn::State::Data);
}

// The probe over the real chip model (sim::swd::make_debug_target), as OpenOCD starts a session:
// line reset, JTAG-to-SWD select, line reset, idle, DPIDR; power-up; the AHB-AP's IDR; the flash.
TEST(SimCmsisDap, OverTheStm32F103ModelTheProbeReadsDpidrApIdrAndTheFlash) {
    sim::DeviceOptions options;
    options.timing = false;
    sim::usb::InProcessUsb usb(sim::cmsis_dap::make_cmsis_dap_probe("", options, ProbeVersion::V2Bulk), false);
    auto command = [&usb](const Bytes& bytes) {
        usb.endpoint_out(0x01, bytes, 1000);
        return usb.endpoint_in(0x81, 512, 1000);
    };
    ASSERT_EQ(command({0x02, 0x00}), (Bytes{0x02, 0x01}));
    const Bytes ones{0x12, 51, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07};
    ASSERT_EQ(command(ones), (Bytes{0x12, 0x00}));
    ASSERT_EQ(command({0x12, 16, 0x9E, 0xE7}), (Bytes{0x12, 0x00}));
    ASSERT_EQ(command(ones), (Bytes{0x12, 0x00}));
    ASSERT_EQ(command({0x12, 8, 0x00}), (Bytes{0x12, 0x00}));
    EXPECT_EQ(command({0x05, 0x00, 0x01, 0x02}), (Bytes{0x05, 0x01, 0x01, 0x77, 0x14, 0xA0, 0x1B}));
    // ABORT (clear stickies), CTRL/STAT power-up request, wait for both acks by value match.
    EXPECT_EQ(command(cat({{0x05, 0x00, 0x04, 0x00}, le32(0x1E), {0x04}, le32(0x50000000), {0x20}, le32(0xA0000000),
                           {0x16}, le32(0xA0000000)})),
              (Bytes{0x05, 0x04, 0x01}));
    // SELECT AP 0 bank 0xF, read IDR (0xFC): a posted AP read.
    EXPECT_EQ(command(cat({{0x05, 0x00, 0x02, 0x08}, le32(0x000000F0), {0x0F}})),
              cat({{0x05, 0x02, 0x01}, le32(0x24770011)}));
    // Bank 0: CSW 32-bit auto-increment, TAR = flash base, 8 words of DRW.
    EXPECT_EQ(command(cat({{0x05, 0x00, 0x03, 0x08}, le32(0), {0x01}, le32(0x23000012), {0x05}, le32(0x08000000)})),
              (Bytes{0x05, 0x03, 0x01}));
    auto r = command({0x06, 0x00, 0x08, 0x00, 0x0F});
    Bytes expected{0x06, 0x08, 0x00, 0x01};
    Bytes flash(32);
    usb.model().flash().read(0x08000000, flash);
    expected.insert(expected.end(), flash.begin(), flash.end());
    EXPECT_EQ(r, expected);
}

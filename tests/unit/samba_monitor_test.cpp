// The SAM-BA monitor's transports against a scripted monitor: the USB read chunking rules and the
// XMODEM-CRC transfers of UART mode, including a lost ACK (the monitor sends a block again).
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "protocol/samba/codec.hpp"
#include "protocol/samba/monitor.hpp"

using namespace mcuflash;
using namespace mcuflash::protocol::samba;

namespace {

// Just enough of a monitor for N, V, w, W, S and R, answering inside write().
class ScriptedMonitor : public link::ByteLink {
public:
    ScriptedMonitor(Transport transport, std::string version) : uart_(transport == Transport::Uart), version_(std::move(version)) {}

    std::map<uint32_t, uint8_t> memory;
    std::vector<uint32_t> read_lengths;  // each R's length
    int acks_to_ignore = 0;              // UART R: ACKs lost on the way to the monitor

    link::SerialSettings settings() const override { return {}; }
    std::string describe() const override { return "scripted monitor"; }
    void pause(std::chrono::milliseconds) override {}

protected:
    void do_write(std::span<const uint8_t> bytes) override {
        for (uint8_t b : bytes) feed(b);
    }
    size_t do_read_some(std::span<uint8_t> buffer, const core::Deadline&) override {
        size_t n = std::min(buffer.size(), out_.size());
        for (size_t i = 0; i < n; ++i) {
            buffer[i] = out_.front();
            out_.pop_front();
        }
        return n;
    }
    size_t do_drain_input() override {
        size_t n = out_.size();
        out_.clear();
        return n;
    }

private:
    enum class State { Command, RawIn, XmodemIn, XmodemOut, XmodemEnd };

    void emit(std::span<const uint8_t> bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }
    void emit(const std::string& text) { out_.insert(out_.end(), text.begin(), text.end()); }
    void emit(uint8_t byte) { out_.push_back(byte); }

    void feed(uint8_t b) {
        switch (state_) {
            case State::Command:
                if (b == 0x80) return;  // autobaud
                if (b != '#') {
                    command_.push_back(static_cast<char>(b));
                    return;
                }
                execute();
                command_.clear();
                return;
            case State::RawIn:
                memory[address_++] = b;
                if (--remaining_ == 0) state_ = State::Command;
                return;
            case State::XmodemIn:
                block_.push_back(b);
                if (block_.size() == 1 && b == kEot) {
                    emit(kAck);
                    block_.clear();
                    state_ = State::Command;
                    return;
                }
                if (block_.size() == 3 + kXmodemBlock + 2) {
                    auto data = parse_xmodem_block(block_, block_number_);
                    block_.clear();
                    if (!data) return emit(kNak);
                    for (size_t i = 0; i < data->size() && remaining_ > 0; ++i, --remaining_) memory[address_++] = (*data)[i];
                    ++block_number_;
                    emit(kAck);
                }
                return;
            case State::XmodemOut:
                if (b == kCrcRequest || b == kNak) return send_block();
                if (b == kAck) {
                    if (acks_to_ignore > 0) {
                        --acks_to_ignore;
                        return send_block();  // the sender timed out waiting and repeats the block
                    }
                    ++block_number_;
                    sent_ += kXmodemBlock;
                    if (sent_ >= remaining_) {
                        state_ = State::XmodemEnd;
                        return emit(kEot);
                    }
                    return send_block();
                }
                return;
            case State::XmodemEnd:
                if (b == kAck) state_ = State::Command;
                return;
        }
    }

    void send_block() {
        std::vector<uint8_t> data;
        for (uint32_t i = 0; i < kXmodemBlock && sent_ + i < remaining_; ++i) data.push_back(memory[address_ + sent_ + i]);
        emit(xmodem_block(block_number_, data));
    }

    void execute() {
        char letter = command_.empty() ? ' ' : command_[0];
        uint32_t a = 0, v = 0;
        auto comma = command_.find(',');
        if (command_.size() > 1) a = static_cast<uint32_t>(std::stoul(command_.substr(1, comma - 1), nullptr, 16));
        if (comma != std::string::npos) v = static_cast<uint32_t>(std::stoul(command_.substr(comma + 1), nullptr, 16));
        switch (letter) {
            case 'N': return emit(std::string("\n\r"));
            case 'V': return emit(version_ + "\n\r");
            case 'w':
                for (int i = 0; i < 4; ++i) emit(memory[a + i]);
                return;
            case 'W':
                for (int i = 0; i < 4; ++i) memory[a + i] = static_cast<uint8_t>(v >> (8 * i));
                return;
            case 'S':
                address_ = a;
                remaining_ = v;
                block_number_ = 1;
                if (!uart_) {
                    state_ = State::RawIn;
                    return;
                }
                state_ = State::XmodemIn;
                return emit(kCrcRequest);
            case 'R':
                read_lengths.push_back(v);
                if (!uart_) {
                    for (uint32_t i = 0; i < v; ++i) emit(memory[a + i]);
                    return;
                }
                address_ = a;
                remaining_ = v;
                sent_ = 0;
                block_number_ = 1;
                state_ = State::XmodemOut;  // waits for the receiver's 'C'
                return;
            default: return;
        }
    }

    bool uart_;
    std::string version_;
    std::deque<uint8_t> out_;
    State state_ = State::Command;
    std::string command_;
    std::vector<uint8_t> block_;
    uint32_t address_ = 0, remaining_ = 0, sent_ = 0;
    uint8_t block_number_ = 1;
};

std::vector<uint8_t> pattern(size_t n) {
    std::vector<uint8_t> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 7 + 3);
    return out;
}

}  // namespace

TEST(SambaMonitor, ArduinoBootloadersAreReadIn63ByteChunksOverUsb) {
    ScriptedMonitor device(Transport::Usb, "v2.0 [Arduino:XYZ] Mar 19 2016 11:03:07");
    auto data = pattern(200);
    for (size_t i = 0; i < data.size(); ++i) device.memory[0x2000 + static_cast<uint32_t>(i)] = data[i];
    Monitor monitor(device, Transport::Usb, {});
    monitor.start();
    EXPECT_TRUE(monitor.extensions().buffered_write && monitor.extensions().checksum);
    EXPECT_EQ(monitor.receive(0x2000, 200), data);
    EXPECT_EQ(device.read_lengths, (std::vector<uint32_t>{63, 63, 63, 11}));
}

TEST(SambaMonitor, RomReadsOverUsbNeverFillWhole64BytePackets) {
    ScriptedMonitor device(Transport::Usb, "v1.1 Dec 15 2010 19:25:04");
    auto data = pattern(256);
    for (size_t i = 0; i < data.size(); ++i) device.memory[0x20001000 + static_cast<uint32_t>(i)] = data[i];
    Monitor monitor(device, Transport::Usb, {});
    monitor.start();
    EXPECT_EQ(monitor.version_text(), "v1.1 Dec 15 2010 19:25:04");
    EXPECT_EQ(monitor.receive(0x20001000, 256), data);
    EXPECT_EQ(device.read_lengths, (std::vector<uint32_t>{255, 1}));
}

TEST(SambaMonitor, UartModeMovesDataAsXmodemBlocks) {
    ScriptedMonitor device(Transport::Uart, "v1.1 Dec 15 2010 19:25:04");
    Monitor monitor(device, Transport::Uart, {});
    monitor.start();
    auto data = pattern(300);  // three blocks, the last one partly padding
    monitor.send(0x20001000, data);
    for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(device.memory[0x20001000 + static_cast<uint32_t>(i)], data[i]) << i;
    EXPECT_EQ(device.memory[0x20001000 + 300], 0) << "padding beyond the length was stored";
    EXPECT_EQ(monitor.receive(0x20001000, 300), data);
    monitor.write_word(0x20002000, 0x12345678);
    EXPECT_EQ(monitor.read_word(0x20002000), 0x12345678u);
}

TEST(SambaMonitor, ALostAckDuringAnXmodemReadIsAnsweredAndTheDataIsRightOnce) {
    ScriptedMonitor device(Transport::Uart, "v1.1 Dec 15 2010 19:25:04");
    auto data = pattern(384);
    for (size_t i = 0; i < data.size(); ++i) device.memory[0x400000 + static_cast<uint32_t>(i)] = data[i];
    Monitor monitor(device, Transport::Uart, {});
    monitor.start();
    device.acks_to_ignore = 1;  // the monitor sends block 1 again after the host acknowledged it
    EXPECT_EQ(monitor.receive(0x400000, 384), data);
}

#include "link/swd/cmsis_dap_probe.hpp"

#include <fmt/format.h>

#include <deque>

#include "core/error.hpp"

namespace mcuflash::link::swd {

using core::Error;
using core::ErrorKind;

namespace {

// An answer can wait behind the probe's WAIT retries and value-match polls: generous.
constexpr unsigned kAnswerTimeoutMs = 10000;
constexpr unsigned kSendTimeoutMs = 2000;
// A run of this many transfers of one register goes as a DAP_TransferBlock (4 bytes a word instead of 5).
constexpr size_t kBlockRun = 4;

}  // namespace

class CmsisDapProbe::Channel {
public:
    virtual ~Channel() = default;
    virtual void send(std::span<const uint8_t> packet, size_t packet_size) = 0;
    virtual std::vector<uint8_t> receive(size_t packet_size, unsigned timeout_ms) = 0;
    virtual std::string describe() const = 0;
    virtual Link& link() = 0;
    virtual bool present() = 0;
    virtual int version() const = 0;
    virtual size_t initial_packet_size() const = 0;
};

namespace {

class BulkChannel : public CmsisDapProbe::Channel {
public:
    BulkChannel(std::unique_ptr<UsbDevice> owned, UsbDevice& usb, dap::BulkInterface interface)
        : owned_(std::move(owned)), usb_(usb), interface_(interface) {
        usb_.claim_interface(interface_.interface);
    }
    void send(std::span<const uint8_t> packet, size_t) override { usb_.endpoint_out(interface_.out, packet, kSendTimeoutMs); }
    std::vector<uint8_t> receive(size_t packet_size, unsigned timeout_ms) override {
        return usb_.endpoint_in(interface_.in, packet_size, timeout_ms);
    }
    std::string describe() const override { return usb_.describe(); }
    Link& link() override { return usb_; }
    bool present() override { return usb_.present(); }
    int version() const override { return 2; }
    size_t initial_packet_size() const override { return interface_.packet_size ? interface_.packet_size : 64; }

private:
    std::unique_ptr<UsbDevice> owned_;
    UsbDevice& usb_;
    dap::BulkInterface interface_;
};

class HidChannel : public CmsisDapProbe::Channel {
public:
    HidChannel(std::unique_ptr<HidDevice> owned, HidDevice& hid) : owned_(std::move(owned)), hid_(hid) {}
    // A HID report is always the full report size: pad with zeros.
    void send(std::span<const uint8_t> packet, size_t packet_size) override {
        std::vector<uint8_t> report(packet.begin(), packet.end());
        if (report.size() < packet_size) report.resize(packet_size, 0);
        hid_.write_report(report, kSendTimeoutMs);
    }
    std::vector<uint8_t> receive(size_t packet_size, unsigned timeout_ms) override {
        return hid_.read_report(packet_size, timeout_ms);
    }
    std::string describe() const override { return hid_.describe(); }
    Link& link() override { return hid_; }
    bool present() override { return hid_.present(); }
    int version() const override { return 1; }
    size_t initial_packet_size() const override { return 64; }

private:
    std::unique_ptr<HidDevice> owned_;
    HidDevice& hid_;
};

std::string lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

// The CMSIS-DAP bulk interface of `usb`: a vendor interface with two bulk endpoints whose string holds
// "CMSIS-DAP" (a device whose only such interface has no string is taken too).
std::optional<dap::BulkInterface> find_bulk_interface(UsbDevice& usb) {
    const auto candidates = dap::vendor_bulk_interfaces(usb.configuration_descriptor());
    for (const auto& candidate : candidates) {
        std::string name;
        try {
            name = usb.string_descriptor(candidate.string_index);
        } catch (const Error&) {
        }
        if (lower(name).find("cmsis-dap") != std::string::npos) return candidate;
    }
    return std::nullopt;
}

}  // namespace

std::unique_ptr<CmsisDapProbe> CmsisDapProbe::over_bulk(std::unique_ptr<UsbDevice> usb) {
    auto interface = find_bulk_interface(*usb);
    if (!interface)
        throw Error(ErrorKind::NotFound, fmt::format("{} has no CMSIS-DAP v2 interface (a vendor interface with bulk "
                                                     "endpoints named CMSIS-DAP)",
                                                     usb->describe()));
    UsbDevice& ref = *usb;
    std::unique_ptr<CmsisDapProbe> probe(new CmsisDapProbe(std::make_unique<BulkChannel>(std::move(usb), ref, *interface)));
    probe->identify();
    return probe;
}

std::unique_ptr<CmsisDapProbe> CmsisDapProbe::over_bulk(UsbDevice& usb) {
    auto interface = find_bulk_interface(usb);
    if (!interface)
        throw Error(ErrorKind::NotFound, fmt::format("{} has no CMSIS-DAP v2 interface", usb.describe()));
    std::unique_ptr<CmsisDapProbe> probe(new CmsisDapProbe(std::make_unique<BulkChannel>(nullptr, usb, *interface)));
    probe->identify();
    return probe;
}

std::unique_ptr<CmsisDapProbe> CmsisDapProbe::over_hid(std::unique_ptr<HidDevice> hid) {
    HidDevice& ref = *hid;
    std::unique_ptr<CmsisDapProbe> probe(new CmsisDapProbe(std::make_unique<HidChannel>(std::move(hid), ref)));
    probe->identify();
    return probe;
}

std::unique_ptr<CmsisDapProbe> CmsisDapProbe::over_hid(HidDevice& hid) {
    std::unique_ptr<CmsisDapProbe> probe(new CmsisDapProbe(std::make_unique<HidChannel>(nullptr, hid)));
    probe->identify();
    return probe;
}

CmsisDapProbe::CmsisDapProbe(std::unique_ptr<Channel> channel) : channel_(std::move(channel)) {
    info_.version = channel_->version();
    info_.packet_size = channel_->initial_packet_size();
}

CmsisDapProbe::~CmsisDapProbe() {
    if (connected_) {
        try {
            disconnect();
        } catch (...) {
            // the probe may be gone; nothing to release then
        }
    }
}

std::vector<uint8_t> CmsisDapProbe::command(std::span<const uint8_t> packet) {
    if (packet.size() > info_.packet_size)
        throw Error(ErrorKind::Internal, fmt::format("a {}-byte CMSIS-DAP command for {}-byte packets", packet.size(),
                                                     info_.packet_size));
    channel_->send(packet, info_.packet_size);
    ++packets_sent_;
    return channel_->receive(info_.packet_size, kAnswerTimeoutMs);
}

void CmsisDapProbe::expect_ok(std::span<const uint8_t> packet, dap::Command command_byte, const std::string& what) {
    if (!dap::decode_status(command(packet), command_byte))
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe refused {}", what));
}

void CmsisDapProbe::identify() {
    auto text = [this](dap::InfoId id) {
        return dap::info_string(dap::decode_info(command(dap::encode_info(id))));
    };
    auto number = [this](dap::InfoId id) {
        return dap::info_number(dap::decode_info(command(dap::encode_info(id))));
    };
    // The packet size first: every later command may use all of it.
    if (auto size = number(dap::InfoId::PacketSize); size && *size >= 64) info_.packet_size = *size;
    if (auto count = number(dap::InfoId::PacketCount); count && *count >= 1) info_.packet_count = *count;
    if (auto caps = number(dap::InfoId::Capabilities)) info_.capabilities = static_cast<uint8_t>(*caps);
    info_.vendor = text(dap::InfoId::Vendor);
    info_.product = text(dap::InfoId::Product);
    info_.serial = text(dap::InfoId::SerialNumber);
    info_.firmware = text(dap::InfoId::FirmwareVersion);
    info_.protocol_version = text(dap::InfoId::ProtocolVersion);
    if (!(info_.capabilities & dap::kCapabilitySwd))
        throw Error(ErrorKind::Unsupported, fmt::format("the debug probe {} does not do SWD (DAP_Info capabilities 0x{:02X})",
                                                        describe(), info_.capabilities),
                    "mcuflash programs ARM chips through SWD; use a probe that offers it (most do)");
}

std::string CmsisDapProbe::describe() const {
    std::string name = info_.product.empty() ? "CMSIS-DAP probe" : info_.product;
    if (!info_.vendor.empty() && name.find(info_.vendor) == std::string::npos) name = info_.vendor + " " + name;
    return fmt::format("CMSIS-DAP v{} probe '{}'{} on {}", info_.version, name,
                       info_.serial.empty() ? "" : " serial " + info_.serial, channel_->describe());
}

uint32_t CmsisDapProbe::connect() {
    if (dap::decode_connect(command(dap::encode_connect(dap::kPortSwd))) != dap::kPortSwd)
        throw Error(ErrorKind::Protocol, fmt::format("the debug probe {} refused to connect in SWD mode", describe()));
    connected_ = true;
    set_clock(clock_hz_);
    set_retries(wait_retries_, match_retries_);
    expect_ok(dap::encode_swd_configure(1, false), dap::Command::SwdConfigure, "the SWD configuration");
    host_status(dap::HostStatus::Connected, true);

    // Line reset (>= 50 ones), the 16-bit JTAG-to-SWD select 0xE79E (LSB first), line reset again, then
    // idle clocks: the SW-DP then expects a DPIDR read (ADIv5 B4.3.3).
    const uint8_t sequence[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x9E, 0xE7,
                                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
    expect_ok(dap::encode_swj_sequence(sequence, 8 * sizeof sequence), dap::Command::SwjSequence,
              "the SWD line reset sequence");
    const Transfer read_dpidr = Transfer::read(false, dp::kDpidr);
    auto result = execute(std::span(&read_dpidr, 1));
    if (result.ack == dap::kAckNone || result.ack == 0)
        throw Error(ErrorKind::NotFound,
                    fmt::format("no chip answers the debug probe {} over SWD", describe()),
                    "check the wiring (SWDIO, SWCLK, GND; nRESET if used), that the board is powered (the probe's "
                    "VTref pin must see the board's 3.3 V), and that SWD is not disabled by the firmware");
    if (result.protocol_error)
        throw Error(ErrorKind::Protocol, "the chip's DPIDR came with a parity error over SWD",
                    "the SWD wiring is noisy or too long: shorten it or lower the SWD clock");
    if (!result.ok())
        throw Error(ErrorKind::Protocol,
                    fmt::format("the chip answered the first SWD read (DPIDR) with {} instead of OK",
                                result.ack == dap::kAckWait ? "WAIT" : result.ack == dap::kAckFault ? "FAULT"
                                                                                                 : fmt::format("ack {}", result.ack)));
    return result.reads.at(0);
}

void CmsisDapProbe::disconnect() {
    connected_ = false;
    try {
        host_status(dap::HostStatus::Connected, false);
    } catch (const Error&) {
    }
    command(dap::encode_disconnect());
}

void CmsisDapProbe::set_clock(uint32_t hz) {
    clock_hz_ = hz;
    expect_ok(dap::encode_swj_clock(hz), dap::Command::SwjClock, fmt::format("an SWD clock of {} Hz", hz));
}

void CmsisDapProbe::set_retries(uint16_t wait_retries, uint16_t match_retries) {
    wait_retries_ = wait_retries;
    match_retries_ = match_retries;
    expect_ok(dap::encode_transfer_configure(0, wait_retries, match_retries), dap::Command::TransferConfigure,
              "the transfer configuration");
}

void CmsisDapProbe::set_reset_line(bool asserted) {
    // nRESET is active low: drive it to 0 to hold the chip in reset.
    dap::decode_swj_pins(command(dap::encode_swj_pins(asserted ? 0 : dap::kPinNreset, dap::kPinNreset, 0)));
}

void CmsisDapProbe::host_status(dap::HostStatus which, bool on) {
    command(dap::encode_host_status(which, on));  // only LEDs: a refusal does not matter
}

void CmsisDapProbe::write_abort(uint32_t value) {
    expect_ok(dap::encode_write_abort(value), dap::Command::WriteAbort, "a write of the DP's ABORT register");
}

void CmsisDapProbe::pause(std::chrono::milliseconds duration) { channel_->link().pause(duration); }

bool CmsisDapProbe::present() { return channel_->present(); }

std::vector<CmsisDapProbe::Pending> CmsisDapProbe::pack(std::span<const Transfer> transfers) const {
    std::vector<Pending> commands;
    const size_t room = info_.packet_size;
    const size_t block_room = dap::block_capacity(room);
    Pending current;
    size_t request_bytes = 3, answer_bytes = 3;
    auto close = [&] {
        if (current.requests.empty()) return;
        current.bytes = dap::encode_transfer(current.requests);
        commands.push_back(std::move(current));
        current = Pending{};
        request_bytes = answer_bytes = 3;
    };
    for (size_t i = 0; i < transfers.size();) {
        const Transfer& t = transfers[i];
        // A run of plain reads or writes of one register goes as DAP_TransferBlock.
        size_t run = 1;
        if (t.kind == Transfer::Kind::Read || t.kind == Transfer::Kind::Write)
            while (i + run < transfers.size() && transfers[i + run].kind == t.kind && transfers[i + run].ap == t.ap &&
                   transfers[i + run].address == t.address)
                ++run;
        if (run >= kBlockRun) {
            close();
            for (size_t done = 0; done < run;) {
                const size_t n = std::min(run - done, block_room);
                Pending block;
                block.first = i + done;
                block.block = true;
                block.block_count = n;
                if (t.kind == Transfer::Kind::Read) {
                    block.bytes = dap::encode_transfer_block_read(t.ap, t.address, static_cast<uint16_t>(n));
                    block.block_reads = static_cast<unsigned>(n);
                } else {
                    std::vector<uint32_t> values;
                    for (size_t k = 0; k < n; ++k) values.push_back(transfers[i + done + k].value);
                    block.bytes = dap::encode_transfer_block_write(t.ap, t.address, values);
                }
                commands.push_back(std::move(block));
                done += n;
            }
            i += run;
            continue;
        }
        const size_t more_request = dap::request_size(t), more_answer = dap::response_size(t);
        if (request_bytes + more_request > room || answer_bytes + more_answer > room || current.requests.size() == 255)
            close();
        if (current.requests.empty()) current.first = i;
        current.requests.push_back(t);
        request_bytes += more_request;
        answer_bytes += more_answer;
        ++i;
    }
    close();
    return commands;
}

TransferResult CmsisDapProbe::run(std::vector<Pending>& commands) {
    TransferResult result;
    std::deque<size_t> in_flight;
    size_t next = 0;
    bool failed = false;
    const size_t window = std::max<unsigned>(1, info_.packet_count);
    try {
        while (next < commands.size() || !in_flight.empty()) {
            while (!failed && next < commands.size() && in_flight.size() < window) {
                channel_->send(commands[next].bytes, info_.packet_size);
                ++packets_sent_;
                in_flight.push_back(next++);
            }
            if (in_flight.empty()) break;
            const size_t index = in_flight.front();
            in_flight.pop_front();
            auto answer = channel_->receive(info_.packet_size, kAnswerTimeoutMs);
            if (failed) continue;  // sent before the failure was known: the probe did it, the result is dropped
            const Pending& sent = commands[index];
            dap::TransferResponse response =
                sent.block ? dap::decode_transfer_block(answer, sent.block_reads)
                           : dap::decode_transfer(answer, sent.requests);
            result.reads.insert(result.reads.end(), response.reads.begin(), response.reads.end());
            const size_t total = sent.block ? sent.block_count : sent.requests.size();
            if (response.ok() && response.count == total) {
                result.completed = sent.first + total;
                continue;
            }
            failed = true;
            result.completed = sent.first + std::min<size_t>(response.count, total);
            result.ack = response.ack;
            result.protocol_error = response.protocol_error;
            result.value_mismatch = response.value_mismatch;
            if (result.ok()) result.ack = 0;  // fewer done than asked with no reason given
        }
    } catch (Error& e) {
        if (e.kind() == ErrorKind::Io && !channel_->present())
            throw Error(ErrorKind::Io, fmt::format("the debug probe {} left USB", describe()),
                        "check its USB cable and plug it in again; then run the same command again");
        throw;
    }
    return result;
}

TransferResult CmsisDapProbe::execute(std::span<const Transfer> transfers) {
    if (transfers.empty()) return {};
    auto commands = pack(transfers);
    return run(commands);
}

TransferResult CmsisDapProbe::read_block(bool ap, uint8_t address, size_t count) {
    std::vector<Pending> commands;
    const size_t room = dap::block_capacity(info_.packet_size);
    for (size_t done = 0; done < count;) {
        const size_t n = std::min(count - done, room);
        Pending block;
        block.first = done;
        block.block = true;
        block.block_count = n;
        block.block_reads = static_cast<unsigned>(n);
        block.bytes = dap::encode_transfer_block_read(ap, address, static_cast<uint16_t>(n));
        commands.push_back(std::move(block));
        done += n;
    }
    return run(commands);
}

TransferResult CmsisDapProbe::write_block(bool ap, uint8_t address, std::span<const uint32_t> values) {
    std::vector<Pending> commands;
    const size_t room = dap::block_capacity(info_.packet_size);
    for (size_t done = 0; done < values.size();) {
        const size_t n = std::min(values.size() - done, room);
        Pending block;
        block.first = done;
        block.block = true;
        block.block_count = n;
        block.bytes = dap::encode_transfer_block_write(ap, address, values.subspan(done, n));
        commands.push_back(std::move(block));
        done += n;
    }
    return run(commands);
}

}  // namespace mcuflash::link::swd

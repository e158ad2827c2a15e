#pragma once
// CMSIS-DAP commands as bytes (ARM's CMSIS-DAP specification, "Commands"): pure encoding and decoding,
// no I/O. Every command is one packet: the command byte, then its fields little-endian; its response
// starts with the same command byte. Version 1 probes carry packets in HID reports, version 2 probes on
// a pair of bulk endpoints; the bytes are the same.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mcuflash::link::swd::dap {

enum class Command : uint8_t {
    Info = 0x00,
    HostStatus = 0x01,
    Connect = 0x02,
    Disconnect = 0x03,
    TransferConfigure = 0x04,
    Transfer = 0x05,
    TransferBlock = 0x06,
    TransferAbort = 0x07,
    WriteAbort = 0x08,
    Delay = 0x09,
    ResetTarget = 0x0A,
    SwjPins = 0x10,
    SwjClock = 0x11,
    SwjSequence = 0x12,
    SwdConfigure = 0x13,
};

// DAP_Info IDs.
enum class InfoId : uint8_t {
    Vendor = 0x01,
    Product = 0x02,
    SerialNumber = 0x03,
    ProtocolVersion = 0x04,
    TargetVendor = 0x05,
    TargetName = 0x06,
    BoardVendor = 0x07,
    BoardName = 0x08,
    FirmwareVersion = 0x09,
    Capabilities = 0xF0,
    PacketCount = 0xFE,
    PacketSize = 0xFF,
};

constexpr uint8_t kStatusOk = 0x00, kStatusError = 0xFF;

// DAP_Connect ports: 0 = the probe's default, 1 = SWD, 2 = JTAG. The answer 0 means it failed.
constexpr uint8_t kPortDefault = 0, kPortSwd = 1, kPortJtag = 2;

// DAP_HostStatus: which LED, on or off.
enum class HostStatus : uint8_t { Connected = 0, Running = 1 };

// DAP_SWJ_Pins bits.
constexpr uint8_t kPinSwclk = 1u << 0, kPinSwdio = 1u << 1, kPinTdi = 1u << 2, kPinTdo = 1u << 3,
                  kPinNtrst = 1u << 5, kPinNreset = 1u << 7;

// Capabilities byte (DAP_Info 0xF0), bit 0 SWD, bit 1 JTAG.
constexpr uint8_t kCapabilitySwd = 1u << 0;

// The 3-bit SWD acknowledge as DAP_Transfer reports it (bits 2:0 of its response byte); NoAck: the line
// stayed high (no target, or it is held in reset).
constexpr uint8_t kAckOk = 1, kAckWait = 2, kAckFault = 4, kAckNone = 7;
constexpr uint8_t kResponseProtocolError = 1u << 3;  // SWD data parity error on a read
constexpr uint8_t kResponseValueMismatch = 1u << 4;  // a value-match read ran out of retries

// One transfer in a DAP_Transfer: a DP or AP register read or write, a read repeated until
// (value & match mask) == the value given (the probe's match retries), or setting that match mask.
struct TransferRequest {
    enum class Kind : uint8_t { Read, Write, ReadUntil, SetMatchMask };
    Kind kind = Kind::Read;
    bool ap = false;       // APnDP
    uint8_t address = 0;   // A[3:2] as 0x0, 0x4, 0x8, 0xC
    uint32_t value = 0;    // Write: the data; ReadUntil: the value to match; SetMatchMask: the mask

    static TransferRequest read(bool ap, uint8_t address) { return {Kind::Read, ap, address, 0}; }
    static TransferRequest write(bool ap, uint8_t address, uint32_t value) { return {Kind::Write, ap, address, value}; }
    static TransferRequest read_until(bool ap, uint8_t address, uint32_t value) {
        return {Kind::ReadUntil, ap, address, value};
    }
    static TransferRequest match_mask(uint32_t mask) { return {Kind::SetMatchMask, false, 0, mask}; }

    bool returns_data() const { return kind == Kind::Read; }
    bool operator==(const TransferRequest&) const = default;
};

// The request byte: bit 0 APnDP, bit 1 RnW, bits 3:2 A[3:2], bit 4 value match, bit 5 match mask.
uint8_t request_byte(const TransferRequest& request);
// Bytes a transfer adds to a DAP_Transfer command (1, or 5 with data), and to its response (0 or 4).
size_t request_size(const TransferRequest& request);
size_t response_size(const TransferRequest& request);

// Commands. DAP index 0 (SWD has one DAP).
std::vector<uint8_t> encode_info(InfoId id);
std::vector<uint8_t> encode_host_status(HostStatus which, bool on);
std::vector<uint8_t> encode_connect(uint8_t port);
std::vector<uint8_t> encode_disconnect();
// Idle cycles after each transfer, WAIT retries, value-match retries.
std::vector<uint8_t> encode_transfer_configure(uint8_t idle_cycles, uint16_t wait_retries, uint16_t match_retries);
std::vector<uint8_t> encode_transfer(std::span<const TransferRequest> requests);
// DAP_TransferBlock: `count` reads of one register, or a write of each value to it.
std::vector<uint8_t> encode_transfer_block_read(bool ap, uint8_t address, uint16_t count);
std::vector<uint8_t> encode_transfer_block_write(bool ap, uint8_t address, std::span<const uint32_t> values);
std::vector<uint8_t> encode_write_abort(uint32_t abort);
// `output` the levels, `select` which pins to drive, `wait_us` how long to wait for them to read back.
std::vector<uint8_t> encode_swj_pins(uint8_t output, uint8_t select, uint32_t wait_us);
std::vector<uint8_t> encode_swj_clock(uint32_t hz);
// `count` bits (1..256) from `bits`, LSB of the first byte first.
std::vector<uint8_t> encode_swj_sequence(std::span<const uint8_t> bits, unsigned count);
// Turnaround 1..4 clocks; data phase on WAIT/FAULT (off for SWD as ADIv5 uses it by default).
std::vector<uint8_t> encode_swd_configure(uint8_t turnaround, bool data_phase);

// Responses. Each throws core::Error(Protocol) when the bytes are not an answer to `command`
// (another command byte, too short) — the probe and the host have lost step.
// A status answer: true for DAP_OK.
bool decode_status(std::span<const uint8_t> response, Command command);
// DAP_Info: the bytes of the value (empty: the probe has none).
std::vector<uint8_t> decode_info(std::span<const uint8_t> response);
std::string info_string(std::span<const uint8_t> value);  // without the trailing NUL
std::optional<uint32_t> info_number(std::span<const uint8_t> value);  // 1, 2 or 4 bytes little-endian
uint8_t decode_connect(std::span<const uint8_t> response);  // the port connected (0: failed)
uint8_t decode_swj_pins(std::span<const uint8_t> response);

struct TransferResponse {
    unsigned count = 0;           // transfers done before it stopped (all of them on success)
    uint8_t ack = kAckOk;         // of the last one tried
    bool protocol_error = false;
    bool value_mismatch = false;
    std::vector<uint32_t> reads;  // what the done reads returned
    bool ok() const { return ack == kAckOk && !protocol_error && !value_mismatch; }
};
// `requests` is what was sent: the data words in the answer belong to the done plain reads.
TransferResponse decode_transfer(std::span<const uint8_t> response, std::span<const TransferRequest> requests);
// `expected_reads`: the words read (0 for a write block).
TransferResponse decode_transfer_block(std::span<const uint8_t> response, unsigned expected_reads);

// How many transfers of a block fit one packet of `packet_size` bytes (the request for writes, the
// answer for reads).
unsigned block_capacity(size_t packet_size);

// A CMSIS-DAP v2 interface in a configuration descriptor: vendor class (0xFF) with bulk endpoints,
// the first OUT carrying commands and the first IN the answers (a third, SWO, is ignored). The
// interface's string names "CMSIS-DAP" (checked by the caller, who reads strings).
struct BulkInterface {
    uint8_t interface = 0;
    uint8_t string_index = 0;
    uint8_t out = 0, in = 0;
    uint16_t packet_size = 0;  // wMaxPacketSize of the OUT endpoint
};
std::vector<BulkInterface> vendor_bulk_interfaces(std::span<const uint8_t> configuration);
// HID interfaces: (interface number, string index).
std::vector<std::pair<uint8_t, uint8_t>> hid_interfaces(std::span<const uint8_t> configuration);

}  // namespace mcuflash::link::swd::dap

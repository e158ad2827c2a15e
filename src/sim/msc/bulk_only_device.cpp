#include "sim/msc/bulk_only_device.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mcuflash::sim::msc {

namespace {

// The device side's own constants (BOT 1.0, SPC-2, SBC-2), not shared with any host code.
constexpr uint32_t kCbwSignature = 0x43425355;  // "USBC"
constexpr uint32_t kCswSignature = 0x53425355;  // "USBS"
constexpr size_t kCbwSize = 31, kCswSize = 13;
constexpr uint8_t kGetMaxLun = 0xFE, kMassStorageReset = 0xFF;
constexpr uint8_t kStatusPassed = 0, kStatusFailed = 1, kStatusPhaseError = 2;
enum : uint8_t {
    kTestUnitReady = 0x00,
    kRequestSense = 0x03,
    kInquiry = 0x12,
    kModeSense6 = 0x1A,
    kStartStopUnit = 0x1B,
    kPreventAllowRemoval = 0x1E,
    kReadFormatCapacities = 0x23,
    kReadCapacity10 = 0x25,
    kRead10 = 0x28,
    kWrite10 = 0x2A,
    kVerify10 = 0x2F,
    kSynchronizeCache10 = 0x35,
    kModeSense10 = 0x5A,
};
constexpr uint8_t kCachingPage = 0x08, kAllPages = 0x3F;

uint32_t le32(std::span<const uint8_t> b, size_t at) {
    return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}
uint32_t be32(std::span<const uint8_t> b, size_t at) {
    return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | uint32_t{b[at + 3]};
}
uint16_t be16(std::span<const uint8_t> b, size_t at) { return uint16_t(b[at] << 8 | b[at + 1]); }
void put_be32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
void put_le32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
// A fixed-width, space-padded ASCII field of INQUIRY data.
void put_text(uint8_t* p, const std::string& text, size_t width) {
    std::memset(p, ' ', width);
    std::memcpy(p, text.data(), std::min(width, text.size()));
}

}  // namespace

BulkOnlyDevice::BulkOnlyDevice(DriveIdentity identity) : identity_(std::move(identity)) {}

std::vector<uint8_t> BulkOnlyDevice::device_descriptor() const {
    auto d = usb::device_descriptor_bytes(identity_.vendor, identity_.product, identity_.bcd_device,
                                          identity_.manufacturer.empty() ? 0 : 1, identity_.product_name.empty() ? 0 : 2,
                                          identity_.serial.empty() ? 0 : 3, 64);
    d[2] = 0x10, d[3] = 0x01;  // bcdUSB 1.10: a full-speed device
    return d;
}

std::vector<uint8_t> BulkOnlyDevice::configuration_descriptor() const {
    return {9, 2, 32, 0, 1, 1, 0, 0x80, 50,        // one interface; bus powered, 100 mA
            9, 4, 0, 0, 2, 0x08, 0x06, 0x50, 0,   // mass storage, SCSI transparent, bulk-only
            7, 5, kInEndpoint, 2, 64, 0, 0,        // bulk IN
            7, 5, kOutEndpoint, 2, 64, 0, 0};      // bulk OUT
}

std::string BulkOnlyDevice::string_descriptor(uint8_t index) const {
    switch (index) {
        case 1: return identity_.manufacturer;
        case 2: return identity_.product_name;
        case 3: return identity_.serial;
        default: return "";
    }
}

usb::ControlResult BulkOnlyDevice::class_request(const link::UsbSetup& setup, std::span<const uint8_t>,
                                                 Clock::time_point) {
    const bool class_to_interface = ((setup.request_type >> 5) & 3) == 1 && (setup.request_type & 0x1F) == 1;
    if (class_to_interface && setup.index == 0 && setup.value == 0) {
        if (setup.is_in() && setup.request == kGetMaxLun && setup.length == 1) return usb::ControlResult::ok({0});
        if (!setup.is_in() && setup.request == kMassStorageReset && setup.length == 0) {
            // Ready for the next CBW; the endpoints' halts stay until the host clears them.
            ++counters_.resets;
            awaiting_reset_ = false;
            phase_ = Phase::Command;
            data_.clear();
            csw_.clear();
            trace("Bulk-Only Mass Storage Reset");
            return usb::ControlResult::ok();
        }
    }
    trace(fmt::format("class request {:02x} {:02x}: stalled", setup.request_type, setup.request));
    return usb::ControlResult::stalled();
}

void BulkOnlyDevice::bus_reset(Clock::time_point) {
    out_halted_ = in_halted_ = awaiting_reset_ = false;
    phase_ = Phase::Command;
    data_.clear();
    csw_.clear();
    sense_ = Sense::none();
}

void BulkOnlyDevice::clear_halt(uint8_t address, Clock::time_point) {
    if (awaiting_reset_) return;  // an invalid CBW: stalled until the reset recovery's reset
    if (address == kOutEndpoint) out_halted_ = false;
    if (address == kInEndpoint) in_halted_ = false;
}

bool BulkOnlyDevice::bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) {
    tick(now);
    if (address != kOutEndpoint || out_halted_ || !attached()) return false;
    switch (phase_) {
        case Phase::Command:
            return start_command(data, now);  // a valid CBW is taken even when its data phase will stall
        case Phase::DataOut: {
            const size_t room = expected_ - data_.size();
            data_.insert(data_.end(), data.begin(), data.begin() + long(std::min(room, data.size())));
            if (data_.size() >= expected_) finish_write(now);
            return true;
        }
        case Phase::DataIn:
        case Phase::Status:
            trace("an OUT transfer while the device has data or a CSW to send: stalled");
            return false;
    }
    return false;
}

usb::EndpointIn BulkOnlyDevice::bulk_in(uint8_t address, size_t max_length, Clock::time_point now) {
    tick(now);
    if (address != kInEndpoint || in_halted_ || !attached()) return usb::EndpointIn::stalled();
    if (phase_ == Phase::DataIn) {
        const size_t n = std::min(max_length, data_.size());
        std::vector<uint8_t> out(data_.begin(), data_.begin() + long(n));
        data_.erase(data_.begin(), data_.begin() + long(n));
        if (data_.empty()) phase_ = Phase::Status;
        return usb::EndpointIn::ok(std::move(out));
    }
    if (phase_ == Phase::Status) {
        if (now < csw_at_) return usb::EndpointIn::nak();  // the medium is still busy
        phase_ = Phase::Command;
        return usb::EndpointIn::ok(std::move(csw_));
    }
    return usb::EndpointIn::nak();
}

void BulkOnlyDevice::queue_status(uint8_t status, uint32_t residue) {
    csw_.clear();
    put_le32(csw_, kCswSignature);
    put_le32(csw_, tag_);
    put_le32(csw_, residue);
    csw_.push_back(status);
    if (status != kStatusPassed) ++counters_.failed;
    if (phase_ != Phase::DataIn || data_.empty()) phase_ = Phase::Status;
}

void BulkOnlyDevice::fail(Sense sense) {
    sense_ = sense;
    trace(fmt::format("SCSI {:02X}: CHECK CONDITION, sense {:X}/{:02X}/{:02X}", cdb_.empty() ? 0 : cdb_[0], sense.key,
                      sense.asc, sense.ascq));
    // The data phase the host expects is cut short with a stall; the CSW follows the clear.
    if (expected_ > 0) (host_reads_ ? in_halted_ : out_halted_) = true;
    data_.clear();
    phase_ = Phase::Command;
    queue_status(kStatusFailed, expected_);
}

bool BulkOnlyDevice::start_command(std::span<const uint8_t> cbw, Clock::time_point now) {
    if (cbw.size() != kCbwSize || le32(cbw, 0) != kCbwSignature || (cbw[13] & 0x0F) != 0 || cbw[14] == 0 ||
        cbw[14] > 16) {
        ++counters_.invalid_cbws;
        out_halted_ = in_halted_ = awaiting_reset_ = true;
        trace(fmt::format("an invalid CBW ({} bytes): both endpoints stalled until a reset recovery", cbw.size()));
        return false;
    }
    ++counters_.commands;
    tag_ = le32(cbw, 4);
    expected_ = le32(cbw, 8);
    host_reads_ = (cbw[12] & 0x80) != 0;
    cdb_.assign(cbw.begin() + 15, cbw.begin() + 15 + cbw[14]);
    data_.clear();
    moved_ = 0;
    out_wanted_ = 0;
    csw_at_ = {};
    opcodes_.push_back(cdb_[0]);
    if (cdb_[0] != kRequestSense) sense_ = Sense::none();
    execute(now);
    if (phase_ != Phase::DataOut) command_done(cdb_[0], now);
    return true;
}

std::vector<uint8_t> BulkOnlyDevice::inquiry() const {
    std::vector<uint8_t> d(36, 0);
    d[0] = 0x00;  // a direct-access block device
    d[1] = identity_.removable ? 0x80 : 0x00;
    d[2] = 0x02;  // SCSI-2: the level USB flash drives report
    d[3] = 0x02;  // response data format
    d[4] = 31;    // additional length
    put_text(&d[8], identity_.scsi_vendor, 8);
    put_text(&d[16], identity_.scsi_product, 16);
    put_text(&d[32], identity_.scsi_revision, 4);
    return d;
}

std::vector<uint8_t> BulkOnlyDevice::mode_sense(bool ten_byte_cdb, uint8_t page) const {
    std::vector<uint8_t> out(ten_byte_cdb ? 8 : 4, 0);
    if (page == kCachingPage || page == kAllPages) {
        // Write cache off (WCE 0): what the device takes is on its medium when the CSW says so.
        std::vector<uint8_t> caching(20, 0);
        caching[0] = kCachingPage;
        caching[1] = 0x12;
        out.insert(out.end(), caching.begin(), caching.end());
    }
    const uint8_t wp = medium_write_protected() ? 0x80 : 0x00;
    if (ten_byte_cdb) {
        out[0] = uint8_t((out.size() - 2) >> 8), out[1] = uint8_t(out.size() - 2);
        out[3] = wp;
    } else {
        out[0] = uint8_t(out.size() - 1);
        out[2] = wp;
    }
    return out;
}

void BulkOnlyDevice::execute(Clock::time_point now) {
    const auto& c = cdb_;
    const uint8_t opcode = c[0];
    std::optional<std::vector<uint8_t>> reply;  // data for the host
    auto need = [&](size_t length) { return c.size() >= length; };
    switch (opcode) {
        case kTestUnitReady:
            if (!medium_present()) return fail(Sense::not_ready_no_medium());
            break;
        case kRequestSense: {
            std::vector<uint8_t> d(18, 0);
            d[0] = 0x70;  // current error, fixed format
            d[2] = sense_.key;
            d[7] = 10;
            d[12] = sense_.asc;
            d[13] = sense_.ascq;
            sense_ = Sense::none();
            if (need(5)) d.resize(std::min<size_t>(d.size(), c[4]));
            reply = std::move(d);
            break;
        }
        case kInquiry: {
            if (!need(6)) return fail(Sense::invalid_field());
            const size_t allocation = be16(c, 3);
            std::vector<uint8_t> d;
            if (c[1] & 0x01) {
                if (c[2] != 0x00) return fail(Sense::invalid_field());
                d = {0x00, 0x00, 0x00, 0x01, 0x00};  // vital product data: only the list of pages
            } else {
                if (c[2] != 0) return fail(Sense::invalid_field());
                d = inquiry();
            }
            d.resize(std::min(d.size(), allocation));
            reply = std::move(d);
            break;
        }
        case kReadCapacity10: {
            if (!medium_present()) return fail(Sense::not_ready_no_medium());
            std::vector<uint8_t> d(8, 0);
            const uint64_t last = medium_sectors() - 1;
            put_be32(&d[0], uint32_t(std::min<uint64_t>(last, 0xFFFFFFFF)));
            put_be32(&d[4], kSector);
            reply = std::move(d);
            break;
        }
        case kReadFormatCapacities: {
            if (!need(9)) return fail(Sense::invalid_field());
            std::vector<uint8_t> d(12, 0);
            d[3] = 8;
            put_be32(&d[4], uint32_t(std::min<uint64_t>(medium_sectors(), 0xFFFFFFFF)));
            d[8] = 0x02;  // formatted media
            d[10] = uint8_t(kSector >> 8);
            d.resize(std::min<size_t>(d.size(), be16(c, 7)));
            reply = std::move(d);
            break;
        }
        case kModeSense6:
        case kModeSense10: {
            const bool ten = opcode == kModeSense10;
            if (!need(ten ? 10 : 6)) return fail(Sense::invalid_field());
            const uint8_t page = c[2] & 0x3F;
            if (page != 0 && page != kCachingPage && page != kAllPages) return fail(Sense::invalid_field());
            auto d = mode_sense(ten, page);
            d.resize(std::min<size_t>(d.size(), ten ? be16(c, 7) : c[4]));
            reply = std::move(d);
            break;
        }
        case kRead10:
        case kWrite10:
        case kVerify10: {
            if (!need(10)) return fail(Sense::invalid_field());
            if (!medium_present()) return fail(Sense::not_ready_no_medium());
            const uint64_t lba = be32(c, 2), count = be16(c, 7);
            if (lba + count > medium_sectors()) return fail(Sense::out_of_range());
            if (opcode == kVerify10) {
                if (c[1] & 0x02) return fail(Sense::invalid_field());  // BYTCHK: comparing data is not offered
                break;
            }
            if (opcode == kRead10) {
                std::vector<uint8_t> d(count * kSector);
                if (count) medium_read(lba, d, now);
                counters_.sectors_read += count;
                reply = std::move(d);
                break;
            }
            if (medium_write_protected()) return fail(Sense::write_protected());
            out_wanted_ = uint32_t(count * kSector);
            if (out_wanted_ == 0) break;
            if (host_reads_ || expected_ != out_wanted_) {
                // The host sends another amount, or wants to read: a phase error (BOT cases 10, 13).
                trace(fmt::format("WRITE(10) of {} bytes, the CBW says {} {}: phase error", out_wanted_, expected_,
                                  host_reads_ ? "in" : "out"));
                if (expected_ > 0) (host_reads_ ? in_halted_ : out_halted_) = true;
                return queue_status(kStatusPhaseError, expected_);
            }
            phase_ = Phase::DataOut;
            return;
        }
        case kSynchronizeCache10:
            ++counters_.synchronizes;
            medium_synchronize(now);
            break;
        case kPreventAllowRemoval:
        case kStartStopUnit:
            break;
        default:
            return fail(Sense::invalid_opcode());
    }
    if (!reply || reply->empty()) {
        // No data from the device. A host that expects some gets a stall (or, sending, its data refused).
        if (expected_ > 0) (host_reads_ ? in_halted_ : out_halted_) = true;
        return queue_status(kStatusPassed, expected_);
    }
    if (expected_ == 0 || !host_reads_) {
        // The device has data the host does not read (BOT cases 2 and 10): a phase error.
        if (expected_ > 0) out_halted_ = true;
        return queue_status(kStatusPhaseError, expected_);
    }
    if (reply->size() > expected_) reply->resize(expected_);  // the host reads what it asked for
    const uint32_t residue = expected_ - uint32_t(reply->size());
    data_ = std::move(*reply);
    phase_ = Phase::DataIn;
    queue_status(kStatusPassed, residue);
}

void BulkOnlyDevice::finish_write(Clock::time_point now) {
    const uint64_t lba = be32(cdb_, 2);
    const MediumWrite outcome = medium_write(lba, data_, now);
    counters_.sectors_written += data_.size() / kSector;
    data_.clear();
    if (!outcome.ok) {
        sense_ = Sense::write_error();
        queue_status(kStatusFailed, 0);
    } else {
        csw_at_ = outcome.busy_until;
        queue_status(kStatusPassed, 0);
    }
    command_done(cdb_[0], now);
}

}  // namespace mcuflash::sim::msc

#pragma once
// A USB mass-storage device, device side: the Bulk-Only Transport (USB Mass Storage Class Bulk-Only
// Transport 1.0) carrying the SCSI commands Linux's usb-storage and sd drivers send, over one disk
// of 512-byte sectors that a personality provides (an MSC bootloader's small FAT volume, a UF2
// bootloader's virtual disk, a card reader's card).
//
// What it does, from the BOT and SCSI (SPC/SBC) descriptions, not from a host's code:
// - one interface, class 08 (mass storage), subclass 06 (SCSI transparent), protocol 50 (BOT); bulk
//   OUT 0x02 and bulk IN 0x81, 64-byte packets (full speed, as the RP2040 and the SAMD51 are);
// - GET MAX LUN answers 0 (one LUN); Bulk-Only Mass Storage Reset (class request 0xFF) makes the
//   device ready for the next CBW and keeps the endpoints' halts, which the host then clears;
// - a CBW is one 31-byte OUT transfer with the signature 'USBC'; anything else is an invalid CBW:
//   both endpoints stall until the host's reset recovery (reset, then CLEAR_FEATURE on each);
// - the data phase goes the way the CBW says; the device sends or takes what the command has, the
//   CSW (13 bytes, 'USBS', the CBW's tag) tells the residue. A command that fails, or has less to
//   send than the host asked for and nothing at all, stalls the data endpoint; the CSW follows once
//   the host has cleared the halt. Data the other way than the CBW says is a phase error (status 2);
// - SCSI: INQUIRY (standard data; vital product data page 0 only), TEST UNIT READY, REQUEST SENSE
//   (fixed format, the last error's sense, then "no sense"), READ CAPACITY(10), READ FORMAT
//   CAPACITIES, MODE SENSE(6) and (10) (no block descriptors; the caching page with write cache off,
//   so hosts send no SYNCHRONIZE CACHE unasked), READ(10), WRITE(10), VERIFY(10), PREVENT ALLOW MEDIUM
//   REMOVAL, START STOP UNIT, SYNCHRONIZE CACHE(10); every other command fails with ILLEGAL REQUEST /
//   INVALID COMMAND OPERATION CODE, a block outside the disk with LOGICAL BLOCK ADDRESS OUT OF RANGE,
//   a write to a write-protected disk with DATA PROTECT / WRITE PROTECTED;
// - the CSW of a write waits (the IN endpoint NAKs) until the personality's medium is done (flash
//   programming time), as a real device keeps the host waiting.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::msc {

// What the device says it is, on USB and to SCSI INQUIRY.
struct DriveIdentity {
    uint16_t vendor = 0, product = 0, bcd_device = 0x0100;
    std::string manufacturer, product_name, serial;
    std::string scsi_vendor, scsi_product, scsi_revision;  // 8, 16 and 4 characters (padded)
    bool removable = true;                                 // the RMB bit of INQUIRY
};

// SCSI sense: key, additional sense code and qualifier.
struct Sense {
    uint8_t key = 0, asc = 0, ascq = 0;
    static Sense none() { return {}; }
    static Sense invalid_opcode() { return {0x05, 0x20, 0x00}; }
    static Sense invalid_field() { return {0x05, 0x24, 0x00}; }
    static Sense out_of_range() { return {0x05, 0x21, 0x00}; }
    static Sense write_protected() { return {0x07, 0x27, 0x00}; }
    static Sense write_error() { return {0x03, 0x0C, 0x00}; }
    static Sense not_ready_no_medium() { return {0x02, 0x3A, 0x00}; }
};

// What happened to a write of sectors: done (the medium busy until `busy_until`), or failed.
struct MediumWrite {
    bool ok = true;
    Clock::time_point busy_until{};
};

class BulkOnlyDevice : public usb::UsbDeviceModel {
public:
    static constexpr uint8_t kOutEndpoint = 0x02, kInEndpoint = 0x81;
    static constexpr uint32_t kSector = 512;

    explicit BulkOnlyDevice(DriveIdentity identity);

    std::vector<uint8_t> device_descriptor() const override;
    std::vector<uint8_t> configuration_descriptor() const override;
    std::string string_descriptor(uint8_t index) const override;
    usb::ControlResult class_request(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                     Clock::time_point now) override;
    bool has_endpoint(uint8_t address) const override { return address == kOutEndpoint || address == kInEndpoint; }
    bool bulk_out(uint8_t address, std::span<const uint8_t> data, Clock::time_point now) override;
    usb::EndpointIn bulk_in(uint8_t address, size_t max_length, Clock::time_point now) override;
    void clear_halt(uint8_t address, Clock::time_point now) override;
    void bus_reset(Clock::time_point now) override;

    struct Counters {
        uint64_t commands = 0, failed = 0, invalid_cbws = 0, resets = 0;
        uint64_t sectors_read = 0, sectors_written = 0, synchronizes = 0;
    };
    const Counters& counters() const { return counters_; }
    const Sense& sense() const { return sense_; }
    // Opcodes seen, in order (tests: what the kernel sent).
    const std::vector<uint8_t>& opcodes() const { return opcodes_; }

protected:
    // The disk behind the transport (the personality's).
    virtual uint64_t medium_sectors() const = 0;
    virtual void medium_read(uint64_t lba, std::span<uint8_t> out, Clock::time_point now) = 0;
    virtual MediumWrite medium_write(uint64_t lba, std::span<const uint8_t> data, Clock::time_point now) = 0;
    virtual void medium_synchronize(Clock::time_point now) { (void)now; }
    virtual bool medium_write_protected() const { return false; }
    virtual bool medium_present() const { return true; }
    // After each command (its CSW queued): a personality's chance to look at what the host did.
    virtual void command_done(uint8_t opcode, Clock::time_point now) { (void)opcode, (void)now; }

    const DriveIdentity& drive_identity() const { return identity_; }

private:
    enum class Phase { Command, DataIn, DataOut, Status };
    // False: not a valid CBW (both endpoints stall until reset recovery).
    bool start_command(std::span<const uint8_t> cbw, Clock::time_point now);
    void execute(Clock::time_point now);
    void finish_write(Clock::time_point now);
    void fail(Sense sense);
    void queue_status(uint8_t status, uint32_t residue);
    std::vector<uint8_t> inquiry() const;
    std::vector<uint8_t> mode_sense(bool ten_byte_cdb, uint8_t page) const;

    DriveIdentity identity_;
    Phase phase_ = Phase::Command;
    bool out_halted_ = false, in_halted_ = false;
    bool awaiting_reset_ = false;  // after an invalid CBW: until a Bulk-Only Mass Storage Reset
    // The command in progress.
    uint32_t tag_ = 0, expected_ = 0;
    bool host_reads_ = false;
    std::vector<uint8_t> cdb_;
    std::vector<uint8_t> data_;   // IN: still to send; OUT: received so far
    uint32_t moved_ = 0;          // data bytes moved in the data phase
    uint32_t out_wanted_ = 0;     // OUT: what the command takes
    std::vector<uint8_t> csw_;
    Clock::time_point csw_at_{};  // the CSW is held until then (the medium is busy)
    Sense sense_;
    Counters counters_;
    std::vector<uint8_t> opcodes_;
};

}  // namespace mcuflash::sim::msc

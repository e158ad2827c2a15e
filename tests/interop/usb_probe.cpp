// usb-probe: LibusbDevice against real USB devices.
//   usb-probe list                 every USB device: port path, VID:PID, bcdDevice, serial
//   usb-probe echo-check VID:PID   the round trips of tests/interop/usbip_guest.sh against the echo test
//                                  device (usbip_echo_model.hpp), one "OK: ..." line per check; exit 1 at
//                                  the first failure ("FAIL: ...").
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "core/error.hpp"
#include "link/libusb_device.hpp"
#include "usbip_echo_model.hpp"

namespace {

using namespace mcuflash;
using link::LibusbDevice;
using link::UsbMatch;
using link::UsbSetup;
using test::UsbEchoModel;

struct CheckFailed {
    std::string what;
};

void check(bool condition, const std::string& what) {
    if (!condition) throw CheckFailed{what};
    fmt::print("OK: {}\n", what);
    std::fflush(stdout);
}

constexpr uint8_t kVendorOut = 0x40, kVendorIn = 0xC0;

int list() {
    for (const auto& id : LibusbDevice::enumerate())
        fmt::print("{:<10} {:04x}:{:04x} bcd {:04x} serial {}\n", id.port_path, id.vendor, id.product, id.bcd_device,
                   id.serial.empty() ? "-" : id.serial);
    return 0;
}

int echo_check(const std::string& vid_pid) {
    // Found by VID:PID and by port path; an absent device is NotFound.
    auto device = LibusbDevice::open(UsbMatch::parse(vid_pid));
    const auto id = device->identity();
    fmt::print("opened {} ({})\n", device->describe(), device->node_path());
    check(id.serial == UsbEchoModel::kSerial, "serial number read: " + id.serial);
    {
        auto by_port = LibusbDevice::open(UsbMatch::parse("usb:" + id.port_path));
        check(by_port->identity().vendor == id.vendor && by_port->identity().product == id.product,
              "opened again by port path " + id.port_path);
    }
    try {
        LibusbDevice::open(UsbMatch::parse("dead:beef"));
        check(false, "an absent device is NotFound");
    } catch (const core::Error& e) {
        check(e.kind() == core::ErrorKind::NotFound, std::string("an absent device is NotFound: ") + e.what());
    }

    // Standard requests through the kernel.
    auto device_descriptor = device->descriptor(link::usb::kDescriptorDevice, 0, 0, 18);
    check(device_descriptor.size() == 18, "device descriptor read (18 bytes)");
    check(device->string_descriptor(device_descriptor[15]) == UsbEchoModel::kProductName,
          std::string("product string: ") + UsbEchoModel::kProductName);
    device->claim_interface(0);
    device->set_alt_setting(0, 0);
    check(true, "interface 0 claimed, alternate setting 0 selected");

    // Vendor round trip: more than one 64-byte packet each way, and a short IN answer.
    std::vector<uint8_t> pattern(300);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
    device->control_out(UsbSetup{kVendorOut, UsbEchoModel::kStore, 0, 0, static_cast<uint16_t>(pattern.size())}, pattern,
                        1000);
    auto back = device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kFetch, 0, 0, 512}, 1000);
    check(back == pattern, fmt::format("vendor control OUT then IN round trip: {} bytes back (asked for 512)", back.size()));

    // A stall is Protocol with "stalled", and the device goes on answering afterwards.
    try {
        device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kStall, 0, 0, 4}, 1000);
        check(false, "a stalled request throws");
    } catch (const core::Error& e) {
        check(e.kind() == core::ErrorKind::Protocol && std::string(e.what()).find("stalled") != std::string::npos,
              std::string("stall mapped to Protocol: ") + e.what());
    }
    check(device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kFetch, 0, 0, 8}, 1000).size() == 8,
          "the device answers after the stall");

    // Bulk endpoints: OUT then IN (several packets; the IN waits while the device NAKs), a read with
    // nothing queued times out, a halted endpoint stalls until its halt is cleared.
    std::vector<uint8_t> bulk(1000);
    for (size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<uint8_t>(i * 13 + 1);
    device->endpoint_out(0x01, bulk, 1000);
    auto bulk_back = device->endpoint_in(0x81, 1024, 1000);
    check(bulk_back == bulk, fmt::format("bulk OUT then IN round trip: {} bytes back", bulk_back.size()));
    try {
        device->endpoint_in(0x81, 64, 300);
        check(false, "a bulk IN with nothing to send times out");
    } catch (const core::Error& e) {
        check(e.kind() == core::ErrorKind::Timeout, std::string("bulk IN NAKed until the timeout: ") + e.what());
    }
    try {
        device->endpoint_out(0x02, pattern, 1000);
        check(false, "a halted endpoint stalls");
    } catch (const core::Error& e) {
        check(e.kind() == core::ErrorKind::Protocol, std::string("bulk OUT to a halted endpoint stalled: ") + e.what());
    }
    device->clear_halt(0x02);
    device->endpoint_out(0x02, pattern, 1000);
    check(true, "bulk OUT taken after clear_halt");

    // A port reset reaches the simulated device (vhci resets locally; the server sees the
    // enumeration that follows). Import was reset 1; this makes at least 2.
    auto resets_before = device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kResetCount, 0, 0, 1}, 1000);
    device->reset_port();
    auto resets_after = device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kResetCount, 0, 0, 1}, 1000);
    check(resets_before.size() == 1 && resets_after.size() == 1 && resets_after[0] == resets_before[0] + 1,
          fmt::format("port reset seen by the device (bus resets {} -> {})", resets_before.at(0), resets_after.at(0)));

    // Re-enumeration as another product (what a DFU detach + reset does): the old handle dies, and
    // reopen_after_reenumeration() finds the device again at the same port.
    device->control_out(UsbSetup{kVendorOut, UsbEchoModel::kSwitchOnReset, 0, 0, 0}, {}, 1000);
    const auto started = std::chrono::steady_clock::now();
    device->reset_port();
    device->reopen_after_reenumeration(std::chrono::milliseconds(8000));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    check(device->identity().product == UsbEchoModel::kSwitchedProduct && device->identity().port_path == id.port_path,
          fmt::format("re-enumerated as {} and reopened in {} ms", device->describe(), took.count()));

    // Leaving the bus: the server closes the connection, the kernel sees an unplug.
    device->control_out(UsbSetup{kVendorOut, UsbEchoModel::kLeave, 0, 0, 0}, {}, 1000);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        gone = !device->present();
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    check(gone, "the device dropped off the bus after leave");
    try {
        device->control_in(UsbSetup{kVendorIn, UsbEchoModel::kFetch, 0, 0, 8}, 1000);
        check(false, "a transfer to a gone device throws");
    } catch (const core::Error& e) {
        check(e.kind() == core::ErrorKind::Io, std::string("a transfer to the gone device is Io: ") + e.what());
    }
    fmt::print("ALL CHECKS PASSED\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    try {
        if (mode == "list" && argc == 2) return list();
        if (mode == "echo-check" && argc == 3) return echo_check(argv[2]);
        fmt::print(stderr, "usage: usb-probe list | usb-probe echo-check VID:PID\n");
        return 64;
    } catch (const CheckFailed& f) {
        fmt::print("FAIL: {}\n", f.what);
        return 1;
    } catch (const core::Error& e) {
        fmt::print("FAIL: {} error: {}\n", core::kind_name(e.kind()), e.what());
        if (!e.hint().empty()) fmt::print("  hint: {}\n", e.hint());
        return 1;
    }
}

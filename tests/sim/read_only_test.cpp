// Read-only commands never change a device: for every protocol's simulator (and each SAM-BA flavour,
// whose start_application changes a boot setting), connect, read, verify by reading, and leave as
// `info`, `read` and `verify` do; the simulated flash must be byte for byte what it was, and a chip
// left in its bootloader must still be there.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/error.hpp"
#include "plan/flash_plan.hpp"
#include "link/usb_hid_device.hpp"
#include "protocol/bootloader.hpp"
#include "sim/in_process_link.hpp"
#include "sim/open.hpp"
#include "sim/samba/samba_monitor_device.hpp"
#include "sim/usb/in_process_usb.hpp"

using namespace mcuflash;

namespace {

sim::FlashMemory& flash_of(link::Link& link) {
    if (link.kind() == link::LinkKind::Usb) return static_cast<sim::usb::InProcessUsb&>(link).model().flash();
    if (link.kind() == link::LinkKind::Hid)  // a HID bootloader's simulator, under its HID link
        return static_cast<sim::usb::InProcessUsb&>(static_cast<link::UsbHidDevice&>(link).usb()).model().flash();
    return static_cast<sim::InProcessLink&>(link).flash();
}

std::vector<uint8_t> snapshot(sim::FlashMemory& flash) {
    std::vector<uint8_t> bytes(flash.size());
    flash.read(flash.base(), bytes);
    return bytes;
}

// What else than flash a device keeps: the GPNVM bits of a SAM3/SAM4 (bit 1: boot from flash).
uint32_t boot_settings(link::Link& link) {
    if (link.kind() != link::LinkKind::ByteStream) return 0;
    auto* samba = dynamic_cast<sim::samba::SambaMonitorDevice*>(&static_cast<sim::InProcessLink&>(link).device());
    return samba ? samba->chip().gpnvm() : 0;
}

struct Case {
    std::string protocol, chip;
};

}  // namespace

TEST(ReadOnly, InfoReadAndVerifyLeaveEveryDeviceAsItWas) {
    std::vector<Case> cases;
    // Cards and drives have no simulated device here (tests/interop/storage_* read them back).
    for (const auto& p : protocol::protocols())
        if (p.runs_on != link::LinkKind::Volume) cases.push_back({p.name, ""});
    for (const char* chip : {"sam3x8e", "sam4e8e", "samd51j19a"}) cases.push_back({"samba", chip});
    for (const auto& c : cases) {
        SCOPED_TRACE(fmt::format("{} {}", c.protocol, c.chip));
        const auto& proto = protocol::find_protocol(c.protocol);
        sim::SimulatedOptions options;
        options.chip = c.chip;
        options.timing = false;
        options.settings = proto.serial;
        auto link = sim::open_simulated(c.protocol, options);
        const auto before = snapshot(flash_of(*link));
        const uint32_t settings_before = boot_settings(*link);
        auto client = proto.make(*link, protocol::ConnectOptions{});
        auto info = client->connect();
        if (client->capabilities().can_read) {  // a write-only bootloader (HalfKay): connect and leave only
            auto data = client->read(info.app_start, 512);
            plan::verify_pages(*client, {{info.app_start, data}}, core::Progress());
        }
        client->leave();
        EXPECT_EQ(snapshot(flash_of(*link)), before) << "a read-only command changed the flash";
        EXPECT_EQ(boot_settings(*link), settings_before) << "a read-only command changed the boot settings";
    }
}

// `mcuflash list` (serial ports and USB devices, and what mcuflash knows them as) and
// `mcuflash udev-rules` (the rules that let a user open every USB bootloader mcuflash knows).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "discover/serial_ports.hpp"
#include "link/libusb_device.hpp"
#include "protocol/dfu/client.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

namespace {

using json = nlohmann::json;

void list_command(GlobalOptions& global) {
    run(global, [&](Reporter& reporter) {
        json serial = json::array(), usb = json::array();
        std::string human = "serial ports:\n";
        for (const auto& port : discover::serial_candidates()) {
            serial.push_back({{"path", port.path}, {"resolved", port.resolved}});
            human += fmt::format("  {}{}\n", port.path, port.path == port.resolved ? "" : " -> " + port.resolved);
        }
        if (serial.empty()) human += "  (none)\n";
        human += "USB devices:\n";
        std::vector<link::UsbIdentity> devices;
        try {
            devices = link::LibusbDevice::enumerate();
        } catch (const core::Error& e) {
            reporter.warning(fmt::format("cannot list USB devices: {}", e.what()));
        }
        for (const auto& id : devices) {
            const auto* bl = targets::Knowledge::builtin().bootloader_by_usb_id(id.vendor, id.product);
            json entry{{"vid", fmt::format("{:04x}", id.vendor)}, {"pid", fmt::format("{:04x}", id.product)},
                       {"port", id.port_path}, {"serial", id.serial}, {"bootloader", bl ? bl->name : ""}};
            std::string line = fmt::format("  usb:{:04x}:{:04x} at {}{}{}", id.vendor, id.product, id.port_path,
                                           id.serial.empty() ? "" : " serial " + id.serial,
                                           bl ? fmt::format(": {} (-p {})", bl->description, bl->protocol) : "");
            if (bl && bl->protocol == "dfu") {
                // What the DFU device says about its memory: its alternate settings.
                try {
                    link::UsbMatch match;
                    match.port_path = id.port_path;
                    auto device = link::LibusbDevice::open(match);
                    protocol::ConnectOptions options;
                    protocol::dfu::Client client(*device, options);
                    auto info = client.connect();
                    entry["chip"] = info.chip;
                    for (const auto& [key, value] : info.details)
                        if (key.rfind("alt ", 0) == 0) {
                            entry["alts"].push_back(value);
                            line += fmt::format("\n      {}: {}", key, value);
                        }
                    line += fmt::format("\n      chip: {}", info.chip);
                } catch (const core::Error& e) {
                    line += fmt::format("\n      (could not open it: {})", e.what());
                }
            }
            usb.push_back(std::move(entry));
            human += line + "\n";
        }
        if (devices.empty()) human += "  (none)\n";
        reporter.result({{"command", "list"}, {"serial", serial}, {"usb", usb}}, human);
    });
}

void udev_rules_command(GlobalOptions& global) {
    run(global, [&](Reporter& reporter) {
        std::string rules =
            "# mcuflash: let logged-in users (uaccess) open the USB bootloaders mcuflash knows.\n"
            "# Install: mcuflash udev-rules | sudo tee /etc/udev/rules.d/70-mcuflash.rules && "
            "sudo udevadm control --reload\n";
        json ids = json::array();
        for (const auto& [name, bl] : targets::Knowledge::builtin().bootloaders())
            for (auto [vendor, product] : bl.usb_ids) {
                rules += fmt::format("# {}\nSUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{:04x}\", ATTR{{idProduct}}==\"{:04x}\", "
                                     "MODE=\"0660\", TAG+=\"uaccess\"\n",
                                     bl.description, vendor, product);
                ids.push_back(fmt::format("{:04x}:{:04x}", vendor, product));
            }
        reporter.result({{"command", "udev-rules"}, {"usb_ids", ids}, {"rules", rules}}, rules);
    });
}

}  // namespace

void register_usb_commands(CLI::App& app, GlobalOptions& global) {
    auto* list = app.add_subcommand("list", "list serial ports and USB devices, and the bootloaders among them");
    list->callback([&global] { list_command(global); });
    auto* rules = app.add_subcommand("udev-rules", "print udev rules giving users access to every USB bootloader mcuflash knows");
    rules->callback([&global] { udev_rules_command(global); });
}

}  // namespace mcuflash::cli

// `mcuflash list` (every device the transports discover, and what mcuflash knows them as) and
// `mcuflash udev-rules` (the rules that let a user open every USB bootloader mcuflash knows).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/operations.hpp"
#include "cli/reporter.hpp"
#include "core/error.hpp"
#include "device/device.hpp"
#include "link/swd/open_probe.hpp"
#include "protocol/bootloader.hpp"
#include "targets/knowledge.hpp"

namespace mcuflash::cli {

namespace {

using json = nlohmann::json;

// `list --can IFACE`: the nodes that answer on that bus (asked only on request: the query makes
// Katapult nodes forget their node ids).
void list_can_nodes(const std::string& interface, json& groups, std::string& human) {
    groups["can"] = json::array();
    human += fmt::format("CAN nodes on {} (answering the query; a node a running Klipper host gave its id to "
                         "does not):\n",
                         interface);
    const auto nodes = device::can_nodes(interface);
    for (const auto& node : nodes) {
        json entry = {{"device", node.device}};
        for (const auto& [key, value] : node.facts) entry[key] = value;
        groups["can"].push_back(entry);
        human += fmt::format("  {}  {}\n      flash it: mcuflash flash klipper.bin -d {}\n", node.device, node.detail,
                             node.device);
    }
    if (nodes.empty()) human += "  (none)\n";
}

// CMSIS-DAP probes (found by their USB strings), with the --probe that names each.
void list_debug_probes(json& groups, std::string& human) {
    groups["probes"] = json::array();
    human += "debug probes (SWD):\n";
    size_t unreadable = 0;
    const auto probes = link::swd::find_cmsis_dap_probes({}, &unreadable);
    for (const auto& p : probes) {
        groups["probes"].push_back({{"probe", p.spec}, {"product", p.product}, {"cmsis_dap_version", p.version}});
        human += fmt::format("  {}  {} (CMSIS-DAP v{})\n      use it: mcuflash info --probe {}\n", p.spec, p.product,
                             p.version, p.spec);
    }
    if (probes.empty()) human += "  (none)\n";
    if (unreadable)
        human += fmt::format("  ({} USB device(s) could not be opened to look for a probe: `mcuflash udev-rules`)\n",
                             unreadable);
}

}  // namespace

void list_devices(Reporter& reporter, const std::string& can_interface) {
    const auto& knowledge = targets::Knowledge::builtin();
    link::WarningSink warn = [&reporter](const std::string& m) { reporter.warning(m); };
    json groups = json::object();
    std::string human;
    const auto found = device::discover_all(knowledge, warn);
    for (auto kind : {link::LinkKind::ByteStream, link::LinkKind::Usb, link::LinkKind::Volume}) {
        const std::string key = kind == link::LinkKind::ByteStream ? "serial"
                                : kind == link::LinkKind::Usb      ? "usb"
                                                                   : "cards";
        groups[key] = json::array();
        human += kind == link::LinkKind::Volume ? std::string("SD cards and drives:\n")
                                                : fmt::format("{}s:\n", link::link_kind_name(kind));
        size_t shown = 0;
        for (const auto& c : found) {
            if (c.kind != kind) continue;
            json entry = c.facts;
            entry["device"] = c.device;
            std::string line = fmt::format("  {}{}", c.device, c.detail.empty() ? "" : "  " + c.detail);
            const bool spoken = protocol::spoken_protocol(c.protocol) != nullptr;
            if (!c.protocol.empty() && !spoken) {
                // A bootloader mcuflash knows by its USB id but does not speak: not opened at all.
                line += fmt::format("\n      mcuflash does not speak {} yet (`mcuflash guide BOARD` gives the "
                                    "classic tool)", c.protocol);
                entry["supported"] = false;
            } else if (!c.protocol.empty()) {
                // What a known bootloader says about itself (a DFU device: its memory, per alternate setting).
                try {
                    device::DeviceOptions options;
                    options.device = c.device;
                    options.protocol = c.protocol;
                    options.no_reset = true;
                    auto session = device::connect(options, knowledge, warn);
                    entry["chip"] = session.info.chip;
                    line += fmt::format("\n      chip: {}", session.info.chip);
                    for (const auto& [name, value] : session.info.details) {
                        entry["details"][name] = value;
                        line += fmt::format("\n      {}: {}", name, value);
                    }
                } catch (const core::Error& e) {
                    line += fmt::format("\n      (could not open it: {})", e.what());
                }
            }
            groups[key].push_back(std::move(entry));
            human += line + "\n";
            ++shown;
        }
        if (!shown) human += "  (none)\n";
    }
    list_debug_probes(groups, human);
    if (!can_interface.empty()) list_can_nodes(can_interface, groups, human);
    groups["command"] = "list";
    reporter.result(groups, human);
}

namespace {

void list_command(GlobalOptions& global, const std::string& can_interface) {
    run(global, [&](Reporter& reporter) { list_devices(reporter, can_interface); });
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
                // A HID bootloader is opened through its hidraw node: that node needs the same rights.
                if (const auto* p = protocol::spoken_protocol(bl.protocol); p && p->runs_on == link::LinkKind::Hid)
                    rules += fmt::format("KERNEL==\"hidraw*\", ATTRS{{idVendor}}==\"{:04x}\", ATTRS{{idProduct}}==\"{:04x}\", "
                                         "MODE=\"0660\", TAG+=\"uaccess\"\n",
                                         vendor, product);
                ids.push_back(fmt::format("{:04x}:{:04x}", vendor, product));
            }
        // SWD probes (--probe): v2 through usbfs, v1 (HID) through hidraw.
        for (const auto& [name, probe] : targets::Knowledge::builtin().probes())
            for (auto [vendor, product] : probe.usb_ids) {
                rules += fmt::format("# {}\nSUBSYSTEM==\"usb\", ATTR{{idVendor}}==\"{:04x}\", ATTR{{idProduct}}==\"{:04x}\", "
                                     "MODE=\"0660\", TAG+=\"uaccess\"\n"
                                     "KERNEL==\"hidraw*\", ATTRS{{idVendor}}==\"{:04x}\", ATTRS{{idProduct}}==\"{:04x}\", "
                                     "MODE=\"0660\", TAG+=\"uaccess\"\n",
                                     probe.description, vendor, product, vendor, product);
                ids.push_back(fmt::format("{:04x}:{:04x}", vendor, product));
            }
        reporter.result({{"command", "udev-rules"}, {"usb_ids", ids}, {"rules", rules}}, rules);
    });
}

}  // namespace

void register_usb_commands(CLI::App& app, GlobalOptions& global) {
    auto* list = app.add_subcommand("list", "list serial ports and USB devices, and the bootloaders among them");
    static std::string can_interface;
    list->add_option("--can", can_interface,
                     "also ask the CAN bus on this interface (can0) which nodes are there, Klipper or Katapult");
    list->callback([&global] { list_command(global, can_interface); });
    auto* rules = app.add_subcommand("udev-rules", "print udev rules giving users access to every USB bootloader and debug probe mcuflash knows");
    rules->callback([&global] { udev_rules_command(global); });
}

}  // namespace mcuflash::cli

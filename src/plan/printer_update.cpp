#include "plan/printer_update.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "targets/klipper_config.hpp"

namespace mcuflash::plan {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

bool is_usb_serial(const std::string& port) {
    if (port.find("/usb-") != std::string::npos) return true;  // /dev/serial/by-id/usb-Klipper_...
    std::error_code ec;
    const auto node = fs::canonical(port, ec).filename().string();
    return !ec && node.starts_with("ttyACM");
}

// The CAN interface of "can:IFACE[:UUID]".
std::string can_interface(const std::string& device) {
    const auto rest = device.substr(4);
    return rest.substr(0, rest.find(':'));
}

// The .config an image was built with: `printer build` completes the manifest's into the image's
// folder (OUT/<mcu>/.config, with what make olddefconfig added); else the manifest's.
std::string built_with(const targets::ManifestMcu& mcu) {
    std::error_code ec;
    const auto completed = fs::path(mcu.image).parent_path() / ".config";
    return !mcu.image.empty() && fs::is_regular_file(completed, ec) ? completed.string() : mcu.kconfig;
}

// Whether an MCU is the USB-to-CAN bridge: the manifest says so, else the .config it is built with.
bool is_can_bridge(const targets::ManifestMcu& mcu) {
    if (mcu.can_bridge) return *mcu.can_bridge;
    const auto config = built_with(mcu);
    if (config.empty() || !fs::exists(config)) return false;
    try {
        return targets::read_klipper_config(config).interface == "USB to CAN bridge";
    } catch (const Error&) {
        return false;  // a broken .config is the build's problem: printer build says so
    }
}

// What the manifest says of an MCU, once its device is known.
void take_from_manifest(PrinterStep& step, const targets::ManifestMcu& entry) {
    step.board = entry.board;
    step.image = entry.image;
    step.kconfig = built_with(entry);
    step.bootloader = entry.bootloader;
    step.can_bridge = step.device.starts_with("can:") && is_can_bridge(entry);
    if (entry.skip) step.skip_reason = fmt::format("skip = true in {}", entry.where);
}

std::vector<std::string> resources_of(const PrinterStep& step) {
    const auto& d = step.device;
    if (d.starts_with("can:")) {
        std::vector<std::string> held{"can:" + can_interface(d)};
        if (step.can_bridge) held.push_back("usb");  // it comes back as a USB bootloader
        return held;
    }
    if (d.starts_with("usb:")) return {"usb"};
    if (d.starts_with("sim:")) return {"sim:" + step.mcu};
    if (d.starts_with("dir:") || d.starts_with("img:")) return {"storage:" + d.substr(4)};
    if (d.starts_with("/dev/sd") || d.starts_with("/dev/mmcblk") || d.starts_with("/dev/disk/")) return {"storage:" + d};
    return {is_usb_serial(d) ? "usb" : "serial:" + d};
}

}  // namespace

PrinterUpdatePlan plan_printer_update(const targets::PrinterConfig& config, const targets::PrinterManifest& manifest,
                                      const std::vector<std::string>& only) {
    auto in_config = [&](const std::string& name) {
        return std::any_of(config.mcus.begin(), config.mcus.end(), [&](auto& m) { return m.name == name; });
    };
    for (const auto& name : only) {
        if (!in_config(name) && !manifest.find(name))
            throw Error(ErrorKind::Usage, fmt::format("no MCU named '{}' in {} or {}", name, config.path, manifest.path));
    }
    auto wanted = [&](const std::string& name) {
        return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
    };

    PrinterUpdatePlan plan;
    for (const auto& mcu : config.mcus) {
        if (!wanted(mcu.name)) continue;
        PrinterStep step;
        step.mcu = mcu.name;
        step.device = mcu.canbus_uuid.empty() ? mcu.serial : fmt::format("can:{}:{}", mcu.canbus_interface, mcu.canbus_uuid);
        const auto* entry = manifest.find(mcu.name);
        const bool own_device = entry && !entry->device.empty();
        if (own_device) step.device = entry->device;
        if (!own_device && mcu.serial.find("klipper_host_mcu") != std::string::npos) {
            step.skip_reason = "the Raspberry Pi as an MCU (Klipper's Linux process): updated with Klipper itself, "
                               "not flashed";
        } else if (!entry) {
            step.skip_reason = fmt::format("not in {}", manifest.path);
        } else {
            take_from_manifest(step, *entry);
        }
        if (!own_device && !mcu.serial.empty() && !is_usb_serial(mcu.serial)) step.uart_baud = mcu.baud;
        plan.steps.push_back(std::move(step));
    }
    for (const auto& entry : manifest.mcus) {
        if (in_config(entry.name) || !wanted(entry.name)) continue;
        if (entry.device.empty())
            throw Error(ErrorKind::BadInput,
                        fmt::format("{}: [mcu.{}] is not an MCU of {}, and names no device", entry.where, entry.name,
                                    config.path),
                        "give it `device = \"...\"`, or remove it from the manifest");
        PrinterStep step;
        step.mcu = entry.name;
        step.device = entry.device;
        take_from_manifest(step, entry);
        plan.steps.push_back(std::move(step));
    }

    // A bridge goes after every other node of its bus; one bus has one bridge.
    std::set<std::string> bridged_buses;
    for (auto& step : plan.steps) {
        step.resources = resources_of(step);
        if (!step.can_bridge || !step.skip_reason.empty()) continue;
        const auto bus = can_interface(step.device);
        if (!bridged_buses.insert(bus).second)
            throw Error(ErrorKind::BadInput, fmt::format("two MCUs are marked as the USB-to-CAN bridge of {}", bus),
                        "one board carries a CAN bus; set can_bridge = false on the other in the manifest");
        for (const auto& other : plan.steps)
            if (&other != &step && other.device.starts_with("can:") && can_interface(other.device) == bus &&
                other.skip_reason.empty())
                step.after.push_back(other.mcu);
    }
    return plan;
}

std::vector<size_t> ready_steps(const PrinterUpdatePlan& plan, const std::vector<StepState>& states) {
    std::set<std::string> held;
    for (size_t i = 0; i < plan.steps.size(); ++i)
        if (states[i] == StepState::Running) held.insert(plan.steps[i].resources.begin(), plan.steps[i].resources.end());
    auto finished = [&](const std::string& mcu) {
        for (size_t i = 0; i < plan.steps.size(); ++i)
            if (plan.steps[i].mcu == mcu) return states[i] == StepState::Finished;
        return true;
    };
    std::vector<size_t> ready;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        const auto& step = plan.steps[i];
        if (states[i] != StepState::Waiting) continue;
        if (!std::all_of(step.after.begin(), step.after.end(), finished)) continue;
        if (std::any_of(step.resources.begin(), step.resources.end(), [&](auto& r) { return held.count(r); })) continue;
        held.insert(step.resources.begin(), step.resources.end());
        ready.push_back(i);
    }
    return ready;
}

}  // namespace mcuflash::plan

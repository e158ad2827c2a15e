#pragma once
// What the client-against-simulator tests share: images of random bytes, a flash through the plan,
// and checking that a simulated flash holds an image and its bootloader.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <type_traits>

#include "core/error.hpp"
#include "image/image.hpp"
#include "link/usb_hid_device.hpp"
#include "plan/flash_plan.hpp"
#include "protocol/bootloader.hpp"
#include "sim/flash_memory.hpp"
#include "sim/in_process_link.hpp"
#include "sim/usb/in_process_usb.hpp"

namespace mcuflash::test {

inline image::Image random_image(uint32_t address, size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> data(size);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    image::Image img;
    img.add(address, data, "test");
    return img;
}

inline bool flash_holds(const sim::FlashMemory& flash, const image::Image& img) {
    for (const auto& [address, bytes] : img.runs())
        for (size_t i = 0; i < bytes.size(); ++i)
            if (flash.at(address + static_cast<uint32_t>(i)) != bytes[i]) return false;
    return true;
}

inline bool flash_holds(sim::InProcessLink& link, const image::Image& img) { return flash_holds(link.flash(), img); }

// Connects, plans and runs a flash as the CLI does: nullopt on success, else the error's kind (whose
// message must say something; `error` gets it).
inline std::optional<core::ErrorKind> flash_through_plan(protocol::Bootloader& client, const image::Image& img,
                                                         const plan::PlanOptions& options = {},
                                                         plan::FlashReport* report = nullptr,
                                                         std::string* error = nullptr) {
    try {
        auto info = client.connect();
        auto plan = plan::make_plan(img, info, client.capabilities(), options);
        auto result = plan::execute(client, plan, options, core::Progress());
        if (report) *report = result;
        return std::nullopt;
    } catch (const core::Error& e) {
        EXPECT_FALSE(std::string(e.what()).empty());
        if (error) *error = e.what();
        return e.kind();
    }
}

// No write into a protected range was even attempted, and each still holds its placeholder.
inline void expect_bootloader_untouched(const sim::FlashMemory& flash) {
    EXPECT_TRUE(flash.violations().empty()) << flash.violations().front();
    EXPECT_TRUE(flash.protected_ranges_intact());
}

// A USB bootloader's client on its simulated device in process (sim/usb: waits skipped), and what
// the client warned.
template <class Client, class Device>
struct UsbRun {
    std::unique_ptr<sim::usb::InProcessUsb> usb;
    std::unique_ptr<link::UsbHidDevice> hid;  // for a client of a HID device: the HID link over `usb`
    std::unique_ptr<Client> client;
    std::vector<std::string> warnings;
    Device& device() { return dynamic_cast<Device&>(usb->model()); }
    sim::FlashMemory& flash() { return usb->model().flash(); }
};

// `model` with the USB faults `faults` ("stall@3,vanish@40"), and a Client(UsbDevice&, ConnectOptions)
// on it given `connect` (a Client(HidDevice&, ...) on a UsbHidDevice over it).
template <class Client, class Device>
std::unique_ptr<UsbRun<Client, Device>> usb_run(std::unique_ptr<sim::usb::UsbDeviceModel> model,
                                                const std::string& faults, protocol::ConnectOptions connect) {
    auto run = std::make_unique<UsbRun<Client, Device>>();
    run->usb = std::make_unique<sim::usb::InProcessUsb>(std::move(model), false, sim::usb::UsbFaults::parse(faults));
    connect.warn = [r = run.get()](const std::string& w) { r->warnings.push_back(w); };
    if constexpr (std::is_constructible_v<Client, link::HidDevice&, protocol::ConnectOptions>) {
        run->hid = std::make_unique<link::UsbHidDevice>(*run->usb);
        run->client = std::make_unique<Client>(*run->hid, connect);
    } else {
        run->client = std::make_unique<Client>(*run->usb, connect);
    }
    return run;
}

}  // namespace mcuflash::test

#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::usb {

using namespace link::usb;

std::vector<uint8_t> device_descriptor_bytes(uint16_t vendor, uint16_t product, uint16_t bcd_device,
                                             uint8_t manufacturer, uint8_t product_string, uint8_t serial,
                                             uint8_t max_packet0) {
    return {18,
            kDescriptorDevice,
            0x00, 0x02,  // bcdUSB 2.00
            0x00, 0x00, 0x00,  // class, subclass, protocol: per interface
            max_packet0,
            static_cast<uint8_t>(vendor), static_cast<uint8_t>(vendor >> 8),
            static_cast<uint8_t>(product), static_cast<uint8_t>(product >> 8),
            static_cast<uint8_t>(bcd_device), static_cast<uint8_t>(bcd_device >> 8),
            manufacturer, product_string, serial,
            1};  // one configuration
}

std::vector<uint8_t> string_descriptor_bytes(const std::string& text) {
    std::vector<uint8_t> out{static_cast<uint8_t>(2 + 2 * text.size()), kDescriptorString};
    for (char c : text) {
        out.push_back(static_cast<uint8_t>(c));
        out.push_back(0);
    }
    return out;
}

link::UsbIdentity UsbDeviceModel::identity() const {
    auto d = device_descriptor();
    link::UsbIdentity id;
    id.vendor = static_cast<uint16_t>(d[8] | (d[9] << 8));
    id.product = static_cast<uint16_t>(d[10] | (d[11] << 8));
    id.bcd_device = static_cast<uint16_t>(d[12] | (d[13] << 8));
    id.serial = d[16] ? string_descriptor(d[16]) : "";
    id.port_path = "1-1";
    return id;
}

void UsbDeviceModel::set_interface(uint8_t interface, uint8_t alt, Clock::time_point now) {
    (void)interface;
    (void)now;
    alt_setting_ = alt;
}

ControlResult UsbDeviceModel::control(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                      Clock::time_point now) {
    tick(now);
    if (!attached()) return ControlResult::stalled();
    const uint8_t type = (setup.request_type >> 5) & 0x03;
    if (type != 0) return class_request(setup, data_out, now);
    switch (setup.request) {
        case kGetDescriptor: {
            const uint8_t kind = static_cast<uint8_t>(setup.value >> 8), index = static_cast<uint8_t>(setup.value);
            std::vector<uint8_t> data;
            if (kind == kDescriptorDevice) data = device_descriptor();
            else if (kind == kDescriptorConfiguration && index == 0) data = configuration_descriptor();
            else if (kind == kDescriptorString && index == 0) data = {4, kDescriptorString, 0x09, 0x04};
            else if (kind == kDescriptorString) {
                std::string text = string_descriptor(index);
                if (text.empty()) return ControlResult::stalled();
                data = string_descriptor_bytes(text);
            } else {
                data = other_descriptor(kind, index, setup.index);
                if (data.empty()) return ControlResult::stalled();
            }
            if (data.size() > setup.length) data.resize(setup.length);
            return ControlResult::ok(std::move(data));
        }
        case kSetConfiguration:
            configuration_ = static_cast<uint8_t>(setup.value);
            return ControlResult::ok();
        case 0x08:  // GET_CONFIGURATION
            return ControlResult::ok({configuration_});
        case kSetInterface:
            set_interface(static_cast<uint8_t>(setup.index), static_cast<uint8_t>(setup.value), now);
            return ControlResult::ok();
        case 0x0A:  // GET_INTERFACE
            return ControlResult::ok({alt_setting_});
        case kGetStatus:
            return ControlResult::ok({0, 0});
        case 0x01:  // CLEAR_FEATURE: ENDPOINT_HALT (feature 0) to an endpoint
            if ((setup.request_type & 0x1F) == 0x02 && setup.value == 0) {
                clear_halt(static_cast<uint8_t>(setup.index), now);
                return ControlResult::ok();
            }
            return ControlResult::ok();  // remote wakeup and the like: nothing to do here
        default:
            return ControlResult::stalled();
    }
}

}  // namespace mcuflash::sim::usb

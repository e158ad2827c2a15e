#include "sim/usb/usb_registry.hpp"

#include "sim/cmsis_dap/simulator.hpp"
#include "sim/dfu/simulator.hpp"
#include "sim/gs_usb/gs_usb_bridge.hpp"
#include "sim/halfkay/halfkay_device.hpp"
#include "sim/hid_stm32/hid_stm32_device.hpp"
#include "sim/msc/card_reader.hpp"
#include "sim/msc/msc_bootloader_device.hpp"
#include "sim/msc/uf2_bootloader_device.hpp"
#include "sim/picoboot/picoboot_device.hpp"

namespace mcuflash::sim::usb {

const std::vector<UsbSimulatorInfo>& usb_simulators() {
    static const std::vector<UsbSimulatorInfo> simulators = [] {
        UsbSimulatorInfo dfu{"dfu", "USB DFU bootloaders: ST's ROM DfuSe (0483:df11), stm32duino (1eaf:0003)",
                             "stm32f407xg",
                             [](const std::string& chip, const DeviceOptions& o) { return dfu::make_dfu_device(chip, o); }};
        for (const auto& entry : dfu::dfu_simulator_chips()) dfu.chips.push_back(entry.chip + " (" + entry.bootloader + ")");
        UsbSimulatorInfo halfkay{"halfkay", "PJRC's HalfKay on a Teensy (16c0:0478)", "at90usb1286",
                                 [](const std::string& chip, const DeviceOptions& o) { return halfkay::make_halfkay_device(chip, o); },
                                 halfkay::halfkay_simulator_chips()};
        UsbSimulatorInfo hid_stm32{"hid-stm32", "the STM32 HID bootloader (1209:beba; F1 and F4 builds)", "stm32f103xb",
                                   [](const std::string& chip, const DeviceOptions& o) { return hid_stm32::make_hid_stm32_device(chip, o); },
                                   hid_stm32::hid_stm32_simulator_chips()};
        halfkay.hid = hid_stm32.hid = true;
        // Only the PICOBOOT interface: the ROM as reset_usb_boot starts it with the UF2 drive disabled.
        UsbSimulatorInfo picoboot{"picoboot", "the RP2040/RP2350 boot ROM's PICOBOOT interface (2e8a:0003, 2e8a:000f; no UF2 drive)", "rp2040",
                                  [](const std::string& chip, const DeviceOptions& o) { return picoboot::make_picoboot_device(chip, o); },
                                  {"rp2040", "rp2350"}};
        // A Klipper USB-to-CAN bridge; `mcuflash-sim gs-usb --node ...` puts simulated CAN nodes behind it.
        UsbSimulatorInfo gs_usb{"gs-usb", "a Klipper USB-to-CAN bridge board (gs_usb, 1d50:606f) with CAN nodes behind it",
                                "stm32f072xb", [](const std::string& chip, const DeviceOptions& o) {
                                    gs_usb::GsUsbBridgeOptions options;
                                    if (!chip.empty()) options.chip = chip;
                                    options.timing = o.timing;
                                    options.log = o.trace;
                                    return std::unique_ptr<UsbDeviceModel>(std::make_unique<gs_usb::GsUsbBridge>(std::move(options)));
                                }};
        // USB mass storage (src/sim/msc): an MSC bootloader, UF2 drives, a card reader (needs --card-image).
        UsbSimulatorInfo msc{"msc", "an MSC bootloader: a USB drive that flashes the .bin copied onto it, then leaves (0483:5720)",
                             "stm32f103xb", [](const std::string& chip, const DeviceOptions& o) { return msc::make_msc_bootloader(chip, o); },
                             msc::msc_bootloader_chips()};
        UsbSimulatorInfo uf2{"uf2", "a UF2 bootloader's drive: RPI-RP2 of the RP2040 ROM, Adafruit's SAMD51 (FEATHERBOOT)", "rp2040",
                             [](const std::string& chip, const DeviceOptions& o) { return msc::make_uf2_bootloader(chip, o); },
                             msc::uf2_bootloader_chips()};
        UsbSimulatorInfo card_reader{"card-reader", "a USB SD-card reader holding a card image (--card-image F)", "",
                                     [](const std::string&, const DeviceOptions& o) { return msc::make_card_reader("", o); }};
        // A CMSIS-DAP debug probe (ARM DAPLink's 0d28:0204) with a simulated chip on its SWD port: v2
        // (bulk endpoints) and v1 (HID); `mcuflash-sim cmsis-dap --v1` serves the v1 one too.
        UsbSimulatorInfo cmsis_dap{"cmsis-dap", "a CMSIS-DAP v2 debug probe (DAPLink, 0d28:0204) with a simulated chip on its SWD port",
                                   cmsis_dap::kDefaultChip, [](const std::string& chip, const DeviceOptions& o) {
                                       return cmsis_dap::make_cmsis_dap_probe(chip, o, cmsis_dap::ProbeVersion::V2Bulk);
                                   }, cmsis_dap::cmsis_dap_chips()};
        UsbSimulatorInfo cmsis_dap_v1{"cmsis-dap-v1", "a CMSIS-DAP v1 (HID) debug probe (DAPLink, 0d28:0204) with a simulated chip on its SWD port",
                                      cmsis_dap::kDefaultChip, [](const std::string& chip, const DeviceOptions& o) {
                                          return cmsis_dap::make_cmsis_dap_probe(chip, o, cmsis_dap::ProbeVersion::V1Hid);
                                      }, cmsis_dap::cmsis_dap_chips()};
        cmsis_dap_v1.hid = true;
        return std::vector<UsbSimulatorInfo>{dfu, halfkay, hid_stm32, picoboot, gs_usb, msc, uf2, card_reader, cmsis_dap, cmsis_dap_v1};
    }();
    return simulators;
}

}  // namespace mcuflash::sim::usb

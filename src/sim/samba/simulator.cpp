#include "sim/samba/simulator.hpp"

#include "sim/samba/samba_monitor_device.hpp"

namespace mcuflash::sim::samba {

namespace {

Personality personality(std::string bootloader, Transport transport) {
    return {std::move(bootloader),
            [transport](const targets::Chip& chip, const targets::Bootloader& bl, const DeviceOptions& options) {
                return std::unique_ptr<Device>(std::make_unique<SambaMonitorDevice>(chip, bl, options, transport));
            }};
}

std::vector<Personality> personalities(Transport transport) {
    return {personality("arduino_zero", transport), personality("adafruit_samd51", transport),
            personality("samba_rom", transport)};
}

}  // namespace

SimulatorInfo usb_simulator_info() {
    return {"samba", "SAM-BA monitor on native USB: Arduino Zero, Adafruit SAMD51, SAM3X/SAM4E ROM (bossac -U 1)",
            personalities(Transport::Usb), "samd21g18a"};
}

SimulatorInfo uart_simulator_info() {
    return {"samba-uart", "SAM-BA monitor on a UART: autobaud, XMODEM-CRC data (bossac -U 0)",
            personalities(Transport::Uart), "samd21g18a"};
}

}  // namespace mcuflash::sim::samba

#include "sim/stk500v2/simulator.hpp"

#include "sim/stk500v2/arduino_m0_device.hpp"
#include "sim/stk500v2/isp_programmer_device.hpp"
#include "sim/stk500v2/stk500boot_device.hpp"

namespace mcuflash::sim::stk500v2 {

SimulatorInfo bootloader_simulator_info() {
    return {"stk500v2",
            "STK500v2 bootloaders: stk500boot_v2 on the Arduino Mega 2560 (avrdude -c wiring), the Arduino M0's "
            "(avrdude -c stk500v2 -p atmega2560)",
            {personality_of<Stk500bootDevice>("stk500boot_v2"), personality_of<ArduinoM0Device>("arduino_m0_stk500v2")},
            "atmega2560"};
}

SimulatorInfo isp_simulator_info() {
    Personality isp{"isp",
                    [](const targets::Chip& chip, const targets::Bootloader&, const DeviceOptions& options) {
                        return std::unique_ptr<Device>(std::make_unique<IspProgrammerDevice>(chip, options));
                    },
                    {"atmega168", "atmega328p", "atmega1280", "atmega1284p", "atmega2560"},
                    "STK500v2 ISP programmer (AVRISP_2) with a blank or --flash-file AVR on its cable"};
    return {"stk500v2-isp", "an STK500v2 ISP programmer with an AVR target (avrdude -c stk500v2 / -c avrispv2)",
            {isp},
            "atmega2560"};
}

}  // namespace mcuflash::sim::stk500v2

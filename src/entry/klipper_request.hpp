#pragma once
// Asking a running Klipper (or Kalico) to reboot into its bootloader. Klipper's firmware calls its
// bootloader_request() (which starts Katapult, the HID or stm32duino bootloader, the ST ROM's DFU,
// or the SAMD bootloader, whichever its build was made for) when:
//  - over USB (src/generic/usb_cdc.c): its CDC-ACM line coding says 1200 baud while DTR is clear;
//  - over a UART (src/generic/serial_irq.c): the 32 bytes kUartBootloaderRequest arrive.
#include <string>
#include <string_view>

#include "link/byte_link.hpp"

namespace mcuflash::entry {

inline constexpr std::string_view kUartBootloaderRequest = " \x1c Request Serial Bootloader!! ~";

// The USB request, in the order Klipper's scripts/flash_usb.py uses: the port opened (the kernel
// raises DTR), set to 1200 baud, DTR cleared, closed. Throws core::Error when the port cannot be
// opened.
void request_bootloader_by_1200_baud(const std::string& port, const link::WarningSink& warn);

// The UART request on an opened link.
void request_bootloader_over_uart(link::ByteLink& link);

}  // namespace mcuflash::entry

#include "entry/klipper_request.hpp"

#include "link/serial_port.hpp"

namespace mcuflash::entry {

void request_bootloader_by_1200_baud(const std::string& port, const link::WarningSink& warn) {
    link::SerialPort line(port, {1200, link::Parity::None}, warn);
    // A pty (a simulated Klipper) has no DTR: the baud rate alone stands for the request there.
    if (line.has_modem_lines()) line.set_dtr_rts(false, false);
}

void request_bootloader_over_uart(link::ByteLink& link) {
    link.write({reinterpret_cast<const uint8_t*>(kUartBootloaderRequest.data()), kUartBootloaderRequest.size()});
}

}  // namespace mcuflash::entry

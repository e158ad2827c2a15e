// Every protocol mcuflash speaks, and every programmer type: one line each.
#include "protocol/bootloader.hpp"
#include "protocol/programmer.hpp"
#include "protocol/dfu/client.hpp"
#include "protocol/halfkay/client.hpp"
#include "protocol/hid_stm32/client.hpp"
#include "protocol/katapult/client.hpp"
#include "protocol/picoboot/client.hpp"
#include "protocol/samba/client.hpp"
#include "protocol/sdcard/client.hpp"
#include "protocol/stk500v1/client.hpp"
#include "protocol/stk500v2/client.hpp"
#include "protocol/stk500v2/isp_programmer.hpp"
#include "protocol/stm32uart/client.hpp"
#include "protocol/uf2drive/client.hpp"

namespace mcuflash::protocol {

const std::vector<ProtocolInfo>& protocols() {
    static const std::vector<ProtocolInfo> all = {
        stk500v1::protocol_info(),
        stk500v2::protocol_info(),
        stm32uart::protocol_info(),
        samba::usb_protocol_info(),
        samba::uart_protocol_info(),
        dfu::protocol_info(),
        halfkay::protocol_info(),
        hid_stm32::protocol_info(),
        picoboot::protocol_info(),
        katapult::protocol_info(),
        sdcard::protocol_info(),
        sdcard::msc_protocol_info(),
        uf2drive::protocol_info(),
    };
    return all;
}

const std::vector<ProgrammerInfo>& programmers() {
    static const std::vector<ProgrammerInfo> all = {
        stk500v2::programmer_info(),
    };
    return all;
}

}  // namespace mcuflash::protocol

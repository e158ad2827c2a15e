// usbip-test-device: serves the test-only echo device (usbip_echo_model.hpp) over USB/IP on
// 127.0.0.1, for tests/interop/usbip_guest.sh. Prints "port N" on stdout once it listens; logs to
// stderr; stops on SIGINT/SIGTERM.
//   usbip-test-device [--port N] [--verbose]      (port 0 or none: any free port)
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "sim/usb/usbip_server.hpp"
#include "usbip_echo_model.hpp"

int main(int argc, char** argv) {
    using namespace mcuflash;
    sim::usb::UsbipServerOptions options;
    options.port = 0;
    options.log = [](const std::string& line) { fmt::print(stderr, "usbip-test-device: {}\n", line); };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--port" && i + 1 < argc) options.port = static_cast<uint16_t>(std::atoi(argv[++i]));
        else if (arg == "--verbose") options.log_transfers = true;
        else {
            fmt::print(stderr, "usage: usbip-test-device [--port N] [--verbose]\n");
            return 64;
        }
    }
    try {
        test::UsbEchoModel model;
        model.set_trace(options.log);
        sim::usb::UsbipServer server(model, options);
        fmt::print("port {}\n", server.port());
        std::fflush(stdout);
        server.run();
        auto c = server.counters();
        fmt::print(stderr, "usbip-test-device: stopped; {} imports, {} submits ({} stalled), {} unlinks, {} bus resets, {} unplugs\n",
                   c.imports, c.submits, c.stalls, c.unlinks, c.bus_resets, c.unplugs);
        return 0;
    } catch (const core::Error& e) {
        fmt::print(stderr, "usbip-test-device: error: {}\n", e.what());
        return core::exit_code(e.kind());
    }
}

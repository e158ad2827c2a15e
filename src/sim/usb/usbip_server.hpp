#pragma once
// A USB/IP server (Linux kernel Documentation/usb/usbip_protocol.rst, version 1.1.1) exporting one
// simulated USB device as bus id "1-1", so that a real Linux kernel (vhci-hcd, `usbip attach`) and
// everything above it (usbfs, libusb, dfu-util) sees the simulated device as a real one.
//
// - Listens on 127.0.0.1:port. Answers OP_REQ_DEVLIST (and closes that connection, as usbipd does)
//   and OP_REQ_IMPORT; after an import, the connection carries URBs: USBIP_CMD_SUBMIT on endpoint 0
//   goes to UsbDeviceModel::control() and is answered at once (status 0, or -EPIPE for a stall), or
//   at the result's done_at when the device is busy (the server waits: one device, one connection);
//   USBIP_CMD_UNLINK then comes too late and is answered with status 0. Endpoints the model has
//   (has_endpoint): OUT transfers go to bulk_out() and complete at once (-EPIPE when it stalls); IN
//   transfers are answered when bulk_in() has data (asked at once, then at every tick and after every
//   message; in submission order per endpoint), and held while it NAKs until the host unlinks them
//   (-ECONNRESET), as a CDC-ACM driver's waiting reads are. Other endpoints are answered with -EPIPE.
// - One imported connection at a time; a second import while one is active is refused.
// - Bus resets: vhci-hcd resets its port locally and never tells the server. An import is a plug-in,
//   so it resets the device; after that, the kernel's enumeration after a port reset (GET_DESCRIPTOR
//   of the device descriptor with wLength 64 or 8, which only the hub driver sends at address 0) is
//   taken as the reset it follows. This is how `libusb_reset_device()` / dfu-util -R in the guest
//   reach the device.
// - When the device drops off the bus (attached() turns false: a DFU bootloader starting its
//   application), the connection is closed, so the guest's kernel sees an unplug. A later import
//   plugs the device in again (bus reset) if it is attached by then; a device that rebooted into
//   another (UsbDeviceModel::successor) is that other one from then on.
// - The model's time is the wall clock (Clock::now()); tick() runs at least every 10 ms.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/usb/usb_device_model.hpp"

namespace mcuflash::sim::usb {

struct UsbipServerOptions {
    uint16_t port = 3240;        // 0: any free port (see UsbipServer::port())
    bool stop_on_signals = true;  // SIGINT/SIGTERM make run() return (blocked while the server exists)
    std::function<void(const std::string&)> log;  // connections, imports, resets, unplugs
    bool log_transfers = false;                   // also every control transfer
};

class UsbipServer {
public:
    static constexpr const char* kBusId = "1-1";
    static constexpr uint32_t kBusNumber = 1, kDeviceNumber = 2;

    // Binds and listens. Throws core::Error(Io) when the port cannot be bound (in use: says so).
    UsbipServer(UsbDeviceModel& model, UsbipServerOptions options);
    ~UsbipServer();
    UsbipServer(const UsbipServer&) = delete;
    UsbipServer& operator=(const UsbipServer&) = delete;

    uint16_t port() const { return port_; }
    // Serves until request_stop(), or SIGINT/SIGTERM with stop_on_signals.
    void run();
    // Makes run() return soon; may be called from any thread.
    void request_stop();

    // Counters for tests and the final log line.
    struct Counters {
        uint64_t imports = 0, submits = 0, stalls = 0, unlinks = 0, unplugs = 0, bus_resets = 0;
    };
    Counters counters() const { return counters_; }

private:
    struct Connection;
    enum class Step { Consumed, NeedMore, Close };  // after looking at the next buffered message
    void accept_connection();
    // False: the connection is to be closed.
    bool serve_readable(Connection& connection);
    Step handle_operation(Connection& connection);  // OP_REQ_DEVLIST, OP_REQ_IMPORT
    Step handle_urb(Connection& connection);        // USBIP_CMD_SUBMIT, USBIP_CMD_UNLINK
    // IN transfers the device can answer now are answered. False: the connection broke.
    bool deliver_pending_in(Connection& connection);
    bool send_ret_submit(Connection& connection, uint32_t seqnum, int32_t status, size_t actual_length,
                         uint32_t packets, const std::vector<uint8_t>& data_in);
    void answer_devlist(Connection& connection);
    bool answer_import(Connection& connection);
    std::vector<uint8_t> control_transfer(const link::UsbSetup& setup, std::span<const uint8_t> data_out,
                                          int32_t& status);
    void bus_reset(const std::string& why);
    void close_connection(size_t index, const std::string& why);
    void log(const std::string& message) const;

    // The device on the bus now: the model given, or its successor() once it has rebooted into one.
    UsbDeviceModel& model();
    UsbDeviceModel* model_;
    UsbipServerOptions options_;
    int listen_fd_ = -1;
    int wake_fd_ = -1;  // eventfd: request_stop()
    uint16_t port_ = 0;
    std::vector<std::unique_ptr<Connection>> connections_;
    bool imported_ = false;              // a connection carries URBs for the device
    bool awaiting_enumeration_ = false;  // reset done; the next enumeration request belongs to it
    Counters counters_;
    struct SignalBlock;
    std::unique_ptr<SignalBlock> signals_;
};

}  // namespace mcuflash::sim::usb

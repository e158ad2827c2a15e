#pragma once
// A simulated device behind a pseudo-terminal, for programs that open serial ports (avrdude,
// stm32flash, our own CLI). The pty's slave is reachable through a symlink at a chosen path.
//
// - A client opening the port resets the device into its bootloader (ptys have no DTR; this stands
//   in for the Arduino auto-reset). The server keeps no slave descriptor open, so the master sees
//   POLLHUP exactly while no client holds the port. Opens and closes are followed through inotify
//   (in order, so a quick close and reopen is still a reset), with POLLHUP as the fallback.
// - Bytes cost their wire time in both directions and are paced to the wall clock by absolute
//   schedule (no busy-waiting, no drift). The client's baud rate is read from the pty's settings:
//   when it does not match the device's, bytes are garbled, as on a real line.
// - A disconnect fault closes the pty and removes the symlink; with a duration, a new pty appears
//   at the same path afterwards, else run() returns.
// - SIGINT and SIGTERM are blocked while the server exists (so the symlink is never left behind) and
//   make run() return; the flash file is current at every moment (written through).
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "sim/device.hpp"
#include "sim/fault_injector.hpp"
#include "sim/simulated_line.hpp"

namespace mcuflash::sim {

struct PtyServerOptions {
    std::filesystem::path link_path;  // where the symlink to the pty goes
    bool timing = true;
    bool check_client_baud = true;    // false: any client baud rate is taken as matching
    std::function<void(const std::string&)> log;  // events in words (client opened, faults, ...)
    // run() returns once the device has left its bootloader for the application (a USB bootloader's
    // port goes away then; a board running Klipper comes back in its place).
    bool stop_when_application_runs = false;
    // A board behind a USB-serial adapter is reset when the port opens (DTR); one on a plain UART (a
    // Raspberry Pi's ttyAMA0, no DTR wired) is not.
    bool reset_on_open = true;
};

class PtyServer {
public:
    // Creates the pty and the symlink. Throws core::Error(Usage) if link_path exists and is not a
    // symlink, core::Error(Io) if the pty cannot be made.
    PtyServer(Device& device, FaultInjector faults, PtyServerOptions options);
    ~PtyServer();
    PtyServer(const PtyServer&) = delete;
    PtyServer& operator=(const PtyServer&) = delete;

    // Serves clients until SIGINT or SIGTERM arrives, request_stop() is called, or the link dies
    // for good (disconnect fault).
    void run();
    // Makes run() return soon; may be called from any thread.
    void request_stop();

    const std::string& slave_path() const { return slave_path_; }
    SimulatedLine& line() { return line_; }

private:
    void open_pty();
    void close_pty();
    bool client_present() const;
    void notice_client(Clock::time_point now);  // reads its bytes, notices it opening or closing the port
    void follow_open_and_close(Clock::time_point now);
    void client_arrived(Clock::time_point now);
    void client_left();
    void read_from_client(Clock::time_point now);
    void update_client_settings();
    void write_to_client(Clock::time_point now);
    bool follow_link_state(Clock::time_point now);       // false: the link died for good
    bool sleep_until_next_event(Clock::time_point now);  // false: asked to stop
    void log(const std::string& message) const;

    class SignalDescriptor;
    Device& device_;
    SimulatedLine line_;
    PtyServerOptions options_;
    std::unique_ptr<SignalDescriptor> signals_;
    int stop_fd_ = -1;  // eventfd behind request_stop()
    int master_ = -1;
    int inotify_ = -1;
    std::string slave_path_;
    bool connected_ = false;
    int openers_ = 0;  // descriptors clients hold on the slave (from inotify)
    std::vector<uint8_t> unsent_;  // due for the client but not yet accepted by the pty
    size_t fault_log_reported_ = 0;
};

// Whether a pty here carries any baud rate (the termios2 ioctls the server and its clients use): every
// Linux kernel does; qemu-user before 9.0 does not emulate them, so the cross-architecture tier asks.
bool pty_baud_settings_available();

}  // namespace mcuflash::sim

#include "sim/klipper/running_klipper.hpp"

#include <asm/termbits.h>  // termios2: the client's baud rate as it set it
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "sim/klipper/mcu_responder.hpp"

namespace mcuflash::sim::klipper {

namespace fs = std::filesystem;
using core::Error;
using core::ErrorKind;

namespace {

// The UART request (Klipper's src/generic/serial_irq.c).
constexpr std::string_view kUartRequest = " \x1c Request Serial Bootloader!! ~";

class Pty {
public:
    explicit Pty(const fs::path& link) : link_(link) {
        std::error_code ec;
        if (fs::exists(fs::symlink_status(link, ec)) && !fs::is_symlink(fs::symlink_status(link, ec)))
            throw Error(ErrorKind::Usage, fmt::format("{} exists and is not a symlink; not replacing it", link.string()));
        master_ = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0)
            throw Error(ErrorKind::Io, fmt::format("cannot make a pty: {}", std::strerror(errno)));
        const char* slave = ptsname(master_);
        fs::remove(link, ec);
        fs::create_symlink(slave, link);
    }
    ~Pty() {
        std::error_code ec;
        fs::remove(link_, ec);
        if (master_ >= 0) close(master_);
    }
    int master() const { return master_; }
    // The baud rate the client set on its side (TCGETS2 on the master reads the slave's settings).
    uint32_t client_baud() const {
        struct termios2 tio {};
        return ::ioctl(master_, TCGETS2, &tio) == 0 ? tio.c_ospeed : 0;
    }

private:
    fs::path link_;
    int master_ = -1;
};

}  // namespace

KlipperOutcome serve_running_klipper(const RunningKlipperOptions& options) {
    auto log = [&](const std::string& message) {
        if (options.log) options.log(message);
    };
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigset_t previous;
    pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
    const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

    KlipperOutcome outcome = KlipperOutcome::Stopped;
    std::optional<McuResponder> responder;
    if (!options.identify_data.empty()) responder.emplace(options.identify_data, log);
    {
        Pty pty(options.link_path);
        std::string received;
        for (;;) {
            std::array<pollfd, 2> fds{{{pty.master(), POLLIN, 0}, {signal_fd, POLLIN, 0}}};
            // The baud rate is a setting, not an event: it is looked at every 20 ms.
            poll(fds.data(), fds.size(), 20);
            if (fds[1].revents & POLLIN) {
                signalfd_siginfo info;
                (void)!read(signal_fd, &info, sizeof info);
                break;
            }
            if (fds[0].revents & POLLIN) {
                std::array<char, 256> buffer;
                const ssize_t n = read(pty.master(), buffer.data(), buffer.size());
                if (n > 0) received.append(buffer.data(), size_t(n));
                if (n > 0 && responder) {
                    auto answer = responder->receive(std::span(reinterpret_cast<const uint8_t*>(buffer.data()), size_t(n)),
                                                     core::Clock::now());
                    if (!answer.empty()) (void)!write(pty.master(), answer.data(), answer.size());
                }
                if (received.find(kUartRequest) != std::string::npos) {
                    log("the UART bootloader request arrived: rebooting into the bootloader");
                    outcome = KlipperOutcome::BootloaderRequested;
                    break;
                }
                if (received.size() > 4096) received.erase(0, received.size() - kUartRequest.size());
            }
            if (pty.client_baud() == 1200) {
                log("the port was set to 1200 baud: rebooting into the bootloader");
                outcome = KlipperOutcome::BootloaderRequested;
                break;
            }
        }
    }
    if (signal_fd >= 0) close(signal_fd);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return outcome;
}

std::string bootloader_port_name(const std::string& bootloader, const std::string& mcu, const std::string& serial) {
    if (bootloader == "katapult") return fmt::format("usb-katapult_{}_{}-if00", mcu, serial);
    return fmt::format("usb-{}_{}_{}-if00", bootloader, mcu, serial);
}

}  // namespace mcuflash::sim::klipper

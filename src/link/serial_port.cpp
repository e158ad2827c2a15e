#include "link/serial_port.hpp"

#include <asm/termbits.h>  // termios2, BOTHER
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"

namespace mcuflash::link {

using core::Error;
using core::ErrorKind;

namespace {

enum WarningBit { kParity = 1, kModemLines = 2 };

std::string open_error_hint(const std::string& path, int err) {
    if (err == EACCES || err == EPERM)
        return fmt::format("add yourself to the group that owns {} (usually 'dialout': sudo usermod -aG dialout $USER, "
                           "then log in again)", path);
    if (err == EBUSY)
        return fmt::format("another program holds {} open (Klipper, OctoPrint, a serial monitor?): "
                           "find it with `fuser -v {}` and stop it", path, path);
    if (err == ENOENT)
        return "the device is not there: check the cable, and list ports with `ls /dev/serial/by-id/`";
    return {};
}

ErrorKind open_error_kind(int err) {
    if (err == EACCES || err == EPERM) return ErrorKind::Permission;
    if (err == ENOENT || err == ENODEV || err == ENXIO) return ErrorKind::NotFound;
    return ErrorKind::Io;
}

}  // namespace

SerialPort::SerialPort(std::string path, const SerialSettings& settings, WarningSink warn)
    : path_(std::move(path)), warn_(std::move(warn)) {
    open_port();
    configure(settings);
    if (!has_modem_lines())
        warn_once(kModemLines, fmt::format("{} has no DTR/RTS lines (a pty?): boards are reset by reopening it", path_));
}

void SerialPort::open_port() {
    fd_ = ::open(path_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) {
        int err = errno;
        throw Error(open_error_kind(err), fmt::format("cannot open {}: {}", path_, std::strerror(err)),
                    open_error_hint(path_, err));
    }
    if (::ioctl(fd_, TIOCEXCL) != 0) { /* exclusive use is best effort */ }
    // A pty slave reports major 136..143 (Unix98); its real path is under /dev/pts.
    std::error_code ec;
    auto real = std::filesystem::canonical(path_, ec);
    is_pty_ = !ec && real.string().rfind("/dev/pts/", 0) == 0;
}

void SerialPort::reopen() {
    ::close(fd_);
    fd_ = -1;
    open_port();
    configure(settings_);
}

bool SerialPort::has_modem_lines() const {
    int lines = 0;
    return ::ioctl(fd_, TIOCMGET, &lines) == 0;
}

SerialPort::~SerialPort() {
    if (fd_ >= 0) ::close(fd_);
}

void SerialPort::warn_once(int bit, const std::string& message) {
    if (warned_ & bit) return;
    warned_ |= bit;
    if (warn_) warn_(message);
}

void SerialPort::configure(const SerialSettings& settings) {
    struct termios2 tio {};
    if (::ioctl(fd_, TCGETS2, &tio) != 0)
        throw Error(ErrorKind::Io, fmt::format("{} is not a serial port: {}", path_, std::strerror(errno)));
    tio.c_iflag = IGNBRK;
    tio.c_oflag = 0;
    tio.c_lflag = 0;
    tio.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS | CBAUD | (CBAUD << IBSHIFT));
    tio.c_cflag |= CS8 | CREAD | CLOCAL | BOTHER | (BOTHER << IBSHIFT);
    if (settings.parity == Parity::Even) {
        tio.c_cflag |= PARENB;
        tio.c_iflag |= INPCK;
    }
    tio.c_ispeed = tio.c_ospeed = settings.baud;
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    if (::ioctl(fd_, TCSETS2, &tio) != 0)
        throw Error(ErrorKind::Io, fmt::format("cannot set {} to {} baud: {}", path_, settings.baud, std::strerror(errno)));
    settings_ = settings;
    if (settings.parity == Parity::Even) {
        struct termios2 check {};
        if (::ioctl(fd_, TCGETS2, &check) == 0 && !(check.c_cflag & PARENB))
            warn_once(kParity, fmt::format("{} cannot keep even parity (a pty?): carrying on with 8N1", path_));
    }
}

void SerialPort::do_write(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p{fd_, POLLOUT, 0};
            ::poll(&p, 1, 1000);
            continue;
        }
        throw Error(ErrorKind::Io, fmt::format("write to {} failed: {}", path_, std::strerror(errno)),
                    "the device may have been unplugged or reset");
    }
}

size_t SerialPort::do_read_some(std::span<uint8_t> buffer, const core::Deadline& deadline) {
    for (;;) {
        ssize_t n = ::read(fd_, buffer.data(), buffer.size());
        if (n > 0) return static_cast<size_t>(n);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            // EIO on a pty whose other side is gone: the device disappeared.
            throw Error(ErrorKind::Io, fmt::format("read from {} failed: {}", path_, std::strerror(errno)),
                        "the device may have been unplugged or reset");
        }
        long wait = deadline.remaining_ms();
        if (wait <= 0) return 0;
        struct pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long>(wait, 1000)));
        if (r < 0 && errno != EINTR)
            throw Error(ErrorKind::Io, fmt::format("poll on {} failed: {}", path_, std::strerror(errno)));
        if (r > 0 && (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN)) {
            // Nothing to read and the other end hung up: wait out the deadline politely.
            struct timespec ts{0, 2'000'000};
            nanosleep(&ts, nullptr);
        }
    }
}

size_t SerialPort::do_drain_input() {
    ::ioctl(fd_, TCFLSH, TCIFLUSH);
    uint8_t scratch[256];
    size_t dropped = 0;
    for (ssize_t n; (n = ::read(fd_, scratch, sizeof scratch)) > 0;) dropped += static_cast<size_t>(n);
    return dropped;
}

void SerialPort::set_dtr_rts(bool dtr, bool rts) {
    int lines = 0;
    if (::ioctl(fd_, TIOCMGET, &lines) != 0) {
        warn_once(kModemLines, fmt::format("{} has no DTR/RTS lines (a pty?): cannot pulse reset, carrying on", path_));
        return;
    }
    lines = dtr ? (lines | TIOCM_DTR) : (lines & ~TIOCM_DTR);
    lines = rts ? (lines | TIOCM_RTS) : (lines & ~TIOCM_RTS);
    if (::ioctl(fd_, TIOCMSET, &lines) != 0)
        warn_once(kModemLines, fmt::format("{}: cannot set DTR/RTS: {}", path_, std::strerror(errno)));
}

}  // namespace mcuflash::link

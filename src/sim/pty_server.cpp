#include "sim/pty_server.hpp"

#include <asm/termbits.h>  // termios2, BOTHER: any baud rate on the pty
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace mcuflash::sim {

using core::Error;
using core::ErrorKind;

namespace {

[[noreturn]] void fail_errno(const std::string& what) {
    throw Error(ErrorKind::Io, fmt::format("{}: {}", what, std::strerror(errno)));
}

// Raw 8N1 at the device's baud rate, so that a client which sets nothing still talks to the device.
void make_raw(int fd, uint32_t baud) {
    struct termios2 tio {};
    if (::ioctl(fd, TCGETS2, &tio) != 0) fail_errno("pty: cannot read its settings");
    tio.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
    tio.c_oflag &= ~static_cast<tcflag_t>(OPOST);
    tio.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    tio.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | CBAUD);
    tio.c_cflag |= CS8 | CREAD | CLOCAL | BOTHER;
    tio.c_ispeed = tio.c_ospeed = baud;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (::ioctl(fd, TCSETS2, &tio) != 0) fail_errno("pty: cannot make it raw");
}

}  // namespace

// Blocks SIGINT and SIGTERM for the life of the object and delivers them through a descriptor.
class PtyServer::SignalDescriptor {
public:
    SignalDescriptor() {
        sigemptyset(&mask_);
        sigaddset(&mask_, SIGINT);
        sigaddset(&mask_, SIGTERM);
        if (::sigprocmask(SIG_BLOCK, &mask_, &previous_) != 0) fail_errno("sigprocmask");
        fd_ = ::signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd_ < 0) fail_errno("signalfd");
    }
    ~SignalDescriptor() {
        ::close(fd_);
        ::sigprocmask(SIG_SETMASK, &previous_, nullptr);
    }
    int fd() const { return fd_; }

private:
    sigset_t mask_{}, previous_{};
    int fd_ = -1;
};

namespace {

timespec to_timespec(Clock::duration d) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns < 0) ns = 0;
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

PtyServer::PtyServer(Device& device, FaultInjector faults, PtyServerOptions options)
    : device_(device),
      line_(device, std::move(faults), options.timing),
      options_(std::move(options)),
      signals_(std::make_unique<SignalDescriptor>()) {
    struct stat st {};
    if (::lstat(options_.link_path.c_str(), &st) == 0 && !S_ISLNK(st.st_mode))
        throw Error(ErrorKind::Usage,
                    fmt::format("{} exists and is not a symlink; refusing to replace it", options_.link_path.string()),
                    "choose another --pty path");
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) fail_errno("eventfd");
    try {
        open_pty();
    } catch (...) {
        close_pty();
        ::close(stop_fd_);
        throw;
    }
}

bool pty_baud_settings_available() {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return false;
    struct termios2 tio {};
    const bool available = ::ioctl(master, TCGETS2, &tio) == 0;
    ::close(master);
    return available;
}

PtyServer::~PtyServer() {
    close_pty();
    ::close(stop_fd_);
}

void PtyServer::request_stop() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
}

void PtyServer::log(const std::string& message) const {
    if (options_.log) options_.log(message);
}

void PtyServer::open_pty() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (master_ < 0) fail_errno("posix_openpt");
    if (::grantpt(master_) != 0 || ::unlockpt(master_) != 0) fail_errno("pty: cannot unlock");
    char name[128];
    if (::ptsname_r(master_, name, sizeof name) != 0) fail_errno("ptsname");
    slave_path_ = name;

    // Opening and closing the slave once puts the master in the hung-up state that a client's open
    // clears; the settings made meanwhile stay with the pty.
    int slave = ::open(slave_path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) fail_errno("pty: cannot open " + slave_path_);
    make_raw(slave, device_.line_settings().baud);
    ::close(slave);

    inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_ >= 0 && ::inotify_add_watch(inotify_, slave_path_.c_str(), IN_OPEN | IN_CLOSE) < 0) {
        ::close(inotify_);
        inotify_ = -1;  // fall back to polling for the client
    }

    // Made under a hidden temporary name (as udev does) and renamed into place, so whoever waits for
    // the path never sees it half made; a stale symlink from an earlier run is replaced.
    const std::string temporary = (options_.link_path.parent_path() /
                                   fmt::format(".{}.{}.tmp", options_.link_path.filename().string(), ::getpid()))
                                      .string();
    ::unlink(temporary.c_str());
    if (::symlink(slave_path_.c_str(), temporary.c_str()) != 0) fail_errno("cannot create " + temporary);
    if (::rename(temporary.c_str(), options_.link_path.c_str()) != 0) {
        ::unlink(temporary.c_str());
        fail_errno("cannot create " + options_.link_path.string());
    }
    connected_ = false;
    openers_ = 0;
}

void PtyServer::close_pty() {
    if (master_ < 0) return;
    // Remove the symlink only if it is still ours.
    char target[256];
    ssize_t n = ::readlink(options_.link_path.c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == slave_path_) ::unlink(options_.link_path.c_str());
    ::close(master_);
    master_ = -1;
    if (inotify_ >= 0) ::close(inotify_);
    inotify_ = -1;
    connected_ = false;
    unsent_.clear();
}

bool PtyServer::client_present() const {
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, 0) < 0) return connected_;
    return !(p.revents & POLLHUP);
}

void PtyServer::update_client_settings() {
    struct termios2 tio {};
    if (!options_.check_client_baud || ::ioctl(master_, TCGETS2, &tio) != 0 || tio.c_ospeed == 0) {
        line_.set_host_settings(device_.line_settings());
        return;
    }
    // A pty cannot keep the parity bit, so only the rate can be told.
    link::SerialSettings client = device_.line_settings();
    client.baud = tio.c_ospeed;
    bool matched = line_.settings_match();
    line_.set_host_settings(client);
    if (matched != line_.settings_match())
        log(line_.settings_match() ? fmt::format("client baud {} matches the device", client.baud)
                                   : fmt::format("client set {} baud but the device listens at {}: bytes will be garbled",
                                                 client.baud, device_.line_settings().baud));
}

void PtyServer::client_arrived(Clock::time_point now) {
    connected_ = true;
    unsent_.clear();
    line_.discard_host_input(now);
    update_client_settings();
    if (!options_.reset_on_open) {
        log("client opened the port");
        return;
    }
    log("client opened the port: reset into the bootloader");
    line_.reset_device(ResetCause::Pin, now);
}

void PtyServer::read_from_client(Clock::time_point now) {
    uint8_t buffer[4096];
    bool settings_checked = false;
    for (;;) {
        ssize_t n = ::read(master_, buffer, sizeof buffer);
        if (n <= 0) return;  // EAGAIN: all read; EIO: the client has gone (noticed by client_present)
        if (!std::exchange(settings_checked, true)) update_client_settings();
        line_.host_write(std::span(buffer, static_cast<size_t>(n)), now);
    }
}

void PtyServer::write_to_client(Clock::time_point now) {
    uint8_t buffer[4096];
    while (size_t n = line_.host_read(buffer, now)) unsent_.insert(unsent_.end(), buffer, buffer + n);
    if (unsent_.empty()) return;
    ssize_t written = ::write(master_, unsent_.data(), unsent_.size());
    if (written > 0) unsent_.erase(unsent_.begin(), unsent_.begin() + written);
}

void PtyServer::notice_client(Clock::time_point now) {
    if (master_ < 0) return;
    // What the client wrote before anything else happened goes first.
    if (connected_) read_from_client(now);
    if (inotify_ >= 0) return follow_open_and_close(now);
    bool present = client_present();
    if (!connected_ && present) client_arrived(now);
    if (connected_ && !present) client_left();
}

void PtyServer::follow_open_and_close(Clock::time_point now) {
    // Events come in order, so a close and a quick reopen between two looks are still two events.
    alignas(inotify_event) char events[4096];
    ssize_t n;
    while ((n = ::read(inotify_, events, sizeof events)) > 0) {
        for (ssize_t at = 0; at < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(events + at);
            if ((event->mask & IN_OPEN) && openers_++ == 0) client_arrived(now);
            if ((event->mask & IN_CLOSE) && openers_ > 0 && --openers_ == 0) client_left();
            at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        }
    }
}

void PtyServer::client_left() {
    connected_ = false;
    log("client closed the port");
}

bool PtyServer::follow_link_state(Clock::time_point now) {
    if (master_ >= 0 && line_.dead_at(now)) {
        log("link dead (disconnect fault): pty closed");
        close_pty();
        return line_.back_at().has_value();
    }
    if (master_ < 0 && !line_.dead_at(now)) {
        open_pty();
        log(fmt::format("link back: new pty {}", slave_path_));
    }
    return true;
}

bool PtyServer::sleep_until_next_event(Clock::time_point now) {
    auto earliest = [](std::optional<Clock::time_point>& wake, std::optional<Clock::time_point> t) {
        if (t && (!wake || *t < *wake)) wake = t;
    };
    std::optional<Clock::time_point> wake = line_.next_event();
    if (master_ >= 0 && line_.dead_since() > now) earliest(wake, line_.dead_since());  // the pty must close then
    if (master_ < 0) earliest(wake, line_.back_at());

    pollfd fds[4];
    nfds_t count = 0;
    fds[count++] = {signals_->fd(), POLLIN, 0};
    fds[count++] = {stop_fd_, POLLIN, 0};
    if (master_ >= 0 && connected_)
        fds[count++] = {master_, static_cast<short>(POLLIN | (unsent_.empty() ? 0 : POLLOUT)), 0};
    if (master_ >= 0 && inotify_ >= 0) fds[count++] = {inotify_, POLLIN, 0};
    // Without inotify: while no client holds the port the master reports POLLHUP all the time, so look
    // for an open every few milliseconds instead.
    if (master_ >= 0 && inotify_ < 0 && !connected_) earliest(wake, now + std::chrono::milliseconds(10));
    timespec timeout{};
    if (wake) timeout = to_timespec(*wake - Clock::now());
    if (::ppoll(fds, count, wake ? &timeout : nullptr, nullptr) < 0 && errno != EINTR) fail_errno("ppoll");
    if (fds[0].revents & POLLIN) {
        signalfd_siginfo info{};
        if (::read(signals_->fd(), &info, sizeof info) > 0) log(fmt::format("signal {}: stopping", info.ssi_signo));
        return false;
    }
    return !(fds[1].revents & POLLIN);
}

void PtyServer::run() {
    // Wake-ups are scheduled to the microsecond; the default 50 us timer slack would blur the pacing.
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    for (;;) {
        Clock::time_point now = Clock::now();
        notice_client(now);
        // Running ahead to the last byte already on its way to the device saves a wake-up per byte;
        // nothing the client sends later can arrive earlier.
        line_.advance(std::max(now, line_.input_scheduled_until()));
        for (const auto& faults = line_.faults().log(); fault_log_reported_ < faults.size(); ++fault_log_reported_)
            log("fault: " + faults[fault_log_reported_]);
        if (!follow_link_state(now)) return;
        if (connected_) write_to_client(now);
        else line_.discard_host_input(now);  // nobody is listening: what arrives is lost
        if (options_.stop_when_application_runs && !device_.in_bootloader()) {
            log("the application runs: the bootloader's port goes away");
            return;
        }
        if (!sleep_until_next_event(now)) return;
    }
}

}  // namespace mcuflash::sim

#include "cli/child_process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"

extern char** environ;

namespace mcuflash::cli {

using core::Error;
using core::ErrorKind;

ChildProcess::ChildProcess(const std::string& program, const std::vector<std::string>& args) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, fmt::format("pipe: {}", std::strerror(errno)));
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw Error(ErrorKind::Io, fmt::format("pipe: {}", std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // Its own process group: Ctrl-C on the terminal reaches the parent only, which passes it on once
    // (a second signal would stop the child at once, inside an exchange with its board).
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);
    const int failed = ::posix_spawnp(&pid_, program.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (failed) {
        ::close(out[0]);
        ::close(err[0]);
        throw Error(ErrorKind::Io, fmt::format("cannot start {}: {}", program, std::strerror(failed)));
    }
    stdout_fd_ = out[0];
    stderr_fd_ = err[0];
    ::fcntl(stdout_fd_, F_SETFL, O_NONBLOCK);
    ::fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

std::vector<int> ChildProcess::open_fds() const {
    std::vector<int> fds;
    if (stdout_fd_ >= 0) fds.push_back(stdout_fd_);
    if (stderr_fd_ >= 0) fds.push_back(stderr_fd_);
    return fds;
}

bool ChildProcess::read_available(const std::function<void(const std::string&)>& on_line) {
    char chunk[4096];
    auto drain = [&](int& fd, std::string& into) {
        while (fd >= 0) {
            const ssize_t n = ::read(fd, chunk, sizeof chunk);
            if (n > 0) {
                into.append(chunk, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            ::close(fd);  // end of file, or an error: nothing more comes
            fd = -1;
        }
    };
    drain(stdout_fd_, stdout_buffer_);
    drain(stderr_fd_, stderr_text_);
    for (size_t end; (end = stdout_buffer_.find('\n')) != std::string::npos;) {
        const std::string line = stdout_buffer_.substr(0, end);
        stdout_buffer_.erase(0, end + 1);
        on_line(line);
    }
    if (stdout_fd_ < 0 && !stdout_buffer_.empty()) {  // a last line without its newline
        on_line(stdout_buffer_);
        stdout_buffer_.clear();
    }
    return stdout_fd_ >= 0 || stderr_fd_ >= 0;
}

int ChildProcess::wait() {
    if (!reaped_) {
        while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
        }
        reaped_ = true;
    }
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
    return 70;
}

void ChildProcess::signal(int signal_number) {
    if (!reaped_ && pid_ > 0) ::kill(pid_, signal_number);
}

int run_to_end(const std::string& program, const std::vector<std::string>& args, std::string& output) {
    ChildProcess child(program, args);
    while (true) {
        std::vector<pollfd> fds;
        for (int fd : child.open_fds()) fds.push_back({fd, POLLIN, 0});
        if (fds.empty()) break;
        ::poll(fds.data(), fds.size(), 200);
        child.read_available([&](const std::string& line) { output += line + "\n"; });
    }
    output += child.error_text();
    return child.wait();
}

std::string own_executable() {
    std::error_code ec;
    const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? "mcuflash" : path.string();
}

}  // namespace mcuflash::cli

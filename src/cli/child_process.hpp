#pragma once
// Another mcuflash run as a child process, its JSON Lines read as they come: how `printer flash`
// updates several MCUs at once. Each MCU's flash runs in its own process, so one board's failure,
// hang or crash stays its own, and each speaks through the same JSON events a script would read.
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace mcuflash::cli {

class ChildProcess {
public:
    // Starts `program` (a path, or a name looked up in PATH) with `args`; stdout and stderr are
    // read through pipes, stdin is /dev/null. Throws core::Error(Io) when it cannot start.
    ChildProcess(const std::string& program, const std::vector<std::string>& args);
    ~ChildProcess();  // kills and reaps a child still running
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // The pipes still open, for poll().
    std::vector<int> open_fds() const;
    // Reads what is there; every complete stdout line goes to `on_line` (without its newline).
    // Returns false once both pipes are closed.
    bool read_available(const std::function<void(const std::string&)>& on_line);
    // Waits for the exit (after the pipes closed): its exit code, or 128 + the signal that ended it.
    int wait();
    void signal(int signal_number);

    const std::string& error_text() const { return stderr_text_; }  // what it wrote to stderr
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int stdout_fd_ = -1, stderr_fd_ = -1;
    std::string stdout_buffer_, stderr_text_;
    bool reaped_ = false;
    int status_ = 0;
};

// Runs `program args...` to its end: its exit code, and what it wrote to stdout and stderr together.
int run_to_end(const std::string& program, const std::vector<std::string>& args, std::string& output);

// This program's own path, to start it again.
std::string own_executable();

}  // namespace mcuflash::cli

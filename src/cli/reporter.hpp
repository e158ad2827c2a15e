#pragma once
// How the CLI shows things: a progress bar on a terminal, plain lines when piped,
// JSON Lines (one object per line on stdout) with --json.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "link/link.hpp"

namespace mcuflash::cli {

// Library: nothing printed; progress and messages go to a Listener, the result is kept (src/api).
enum class OutputMode { Terminal, Plain, Json, Library };

struct Listener {
    core::ProgressSink progress;
    std::function<void(const std::string& level, const std::string& text)> message;  // "info", "warning"
};

class Reporter {
public:
    explicit Reporter(OutputMode mode, bool quiet = false);
    explicit Reporter(Listener listener);

    OutputMode mode() const { return mode_; }
    core::ProgressSink sink();
    void on_progress(const core::ProgressEvent& event);
    void warning(const std::string& message);
    void info(const std::string& message);  // human lines (stderr), skipped in JSON mode
    // The command's result: JSON object on stdout in JSON mode; else `human` on stdout.
    void result(const nlohmann::json& data, const std::string& human);
    // What a command that goes on to fail did (a table of MCUs): `human` on stdout as result() prints
    // it, but in JSON mode it goes into the error event as "report", so a script reads one result or
    // one error, never a result before the error.
    void report_before_error(const nlohmann::json& data, const std::string& human);
    // Prints the error with its hint; returns the exit code.
    int error(const core::Error& error);
    // --trace: what crosses the link goes to stderr, or to `file` when it is not empty.
    void enable_trace(const std::string& file);
    link::TraceSink trace_sink();  // empty when tracing is off
    // Library mode: the last result reported.
    const nlohmann::json& result_data() const { return result_data_; }
    const std::string& result_text() const { return result_text_; }

private:
    void draw_bar(const core::ProgressEvent& event);
    void end_bar();

    OutputMode mode_;
    bool quiet_;
    bool bar_open_ = false;
    std::chrono::steady_clock::time_point stage_start_{};
    std::chrono::steady_clock::time_point last_draw_{};
    int last_percent_ = -1;
    bool trace_ = false;
    std::unique_ptr<FILE, int (*)(FILE*)> trace_file_{nullptr, &std::fclose};
    Listener listener_;
    nlohmann::json result_data_;
    std::string result_text_;
    std::optional<nlohmann::json> report_before_error_;
};

OutputMode detect_output_mode(bool json);

// One JSON line: bytes that are not UTF-8 (a file name, a device's answer) become U+FFFD rather than
// an exception.
std::string json_line(const nlohmann::json& j);

}  // namespace mcuflash::cli

#include "cli/reporter.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace mcuflash::cli {

using core::ProgressEvent;
using Kind = core::ProgressEvent::Kind;

OutputMode detect_output_mode(bool json) {
    if (json) return OutputMode::Json;
    return isatty(STDERR_FILENO) ? OutputMode::Terminal : OutputMode::Plain;
}

Reporter::Reporter(OutputMode mode, bool quiet) : mode_(mode), quiet_(quiet) {}

Reporter::Reporter(Listener listener) : mode_(OutputMode::Library), quiet_(true), listener_(std::move(listener)) {}

void Reporter::enable_trace(const std::string& file) {
    trace_ = true;
    if (file.empty()) return;
    trace_file_.reset(std::fopen(file.c_str(), "w"));
    if (!trace_file_)
        throw core::Error(core::ErrorKind::Usage, fmt::format("cannot write the trace to {}", file));
}

link::TraceSink Reporter::trace_sink() {
    if (!trace_) return {};
    return [this](const std::string& line) {
        FILE* out = trace_file_ ? trace_file_.get() : stderr;
        if (!trace_file_) end_bar();
        fmt::print(out, "trace: {}\n", line);
    };
}

core::ProgressSink Reporter::sink() {
    return [this](const ProgressEvent& e) { on_progress(e); };
}

namespace {
double rate_kib(uint64_t bytes, double seconds) { return seconds > 0 ? bytes / 1024.0 / seconds : 0; }
const char* kind_word(Kind k) {
    switch (k) {
        case Kind::Started: return "started";
        case Kind::Advanced: return "progress";
        case Kind::Finished: return "finished";
        case Kind::Note: return "note";
    }
    return "?";
}
}  // namespace

void Reporter::on_progress(const ProgressEvent& e) {
    if (mode_ == OutputMode::Library) {
        if (listener_.progress) listener_.progress(e);
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (e.kind == Kind::Started) {
        stage_start_ = now;
        last_percent_ = -1;
    }
    double elapsed = std::chrono::duration<double>(now - stage_start_).count();
    if (mode_ == OutputMode::Json) {
        // Throttle progress lines to whole percents so a pipe is not flooded.
        if (e.kind == Kind::Advanced && e.total) {
            int percent = static_cast<int>(e.done * 100 / e.total);
            if (percent == last_percent_) return;
            last_percent_ = percent;
        }
        nlohmann::json j = {{"event", kind_word(e.kind)}, {"stage", core::stage_name(e.stage)}};
        if (e.kind != Kind::Note) {
            j["done"] = e.done;
            j["total"] = e.total;
            j["seconds"] = elapsed;
        }
        if (!e.message.empty()) j["message"] = e.message;
        std::cout << json_line(j) << std::endl;
        return;
    }
    if (quiet_) return;
    if (e.kind == Kind::Note) {
        end_bar();
        fmt::print(stderr, "{}: {}\n", core::stage_name(e.stage), e.message);
        return;
    }
    if (mode_ == OutputMode::Terminal) {
        if (e.kind == Kind::Finished) {
            if (!e.done && !bar_open_) return;  // a stage with nothing to count (starting the app)
            draw_bar(e);
            end_bar();
            if (!e.message.empty()) fmt::print(stderr, "  {}\n", e.message);
        } else if (e.total) {
            if (e.kind == Kind::Started || now - last_draw_ > std::chrono::milliseconds(50)) draw_bar(e);
        }
        return;
    }
    // Plain: one line when a stage starts, at each quarter, and when it ends.
    if (e.kind == Kind::Started) {
        if (e.total) fmt::print(stderr, "{}: {} bytes\n", core::stage_name(e.stage), e.total);
    } else if (e.kind == Kind::Advanced && e.total) {
        int quarter = static_cast<int>(e.done * 4 / e.total);
        if (quarter != last_percent_ && quarter > 0 && quarter < 4)
            fmt::print(stderr, "{}: {}%\n", core::stage_name(e.stage), quarter * 25);
        last_percent_ = quarter;
    } else if (e.kind == Kind::Finished && e.done) {
        fmt::print(stderr, "{}: done, {} bytes in {:.2f} s ({:.1f} KiB/s){}{}\n", core::stage_name(e.stage), e.done,
                   elapsed, rate_kib(e.done, elapsed), e.message.empty() ? "" : "; ", e.message);
    }
}

void Reporter::draw_bar(const ProgressEvent& e) {
    last_draw_ = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(last_draw_ - stage_start_).count();
    const int width = 30;
    double fraction = e.total ? static_cast<double>(e.done) / e.total : 1.0;
    int filled = static_cast<int>(fraction * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    fmt::print(stderr, "\r{:<7} [{}] {:3.0f}% {:>8} B {:6.1f} KiB/s", core::stage_name(e.stage), bar, fraction * 100,
               e.done, rate_kib(e.done, elapsed));
    std::fflush(stderr);
    bar_open_ = true;
}

void Reporter::end_bar() {
    if (bar_open_) fmt::print(stderr, "\n");
    bar_open_ = false;
}

void Reporter::warning(const std::string& message) {
    if (mode_ == OutputMode::Library) {
        if (listener_.message) listener_.message("warning", message);
        return;
    }
    if (mode_ == OutputMode::Json) {
        std::cout << json_line({{"event", "warning"}, {"message", message}}) << std::endl;
        return;
    }
    end_bar();
    fmt::print(stderr, "warning: {}\n", message);
}

void Reporter::info(const std::string& message) {
    if (mode_ == OutputMode::Library) {
        if (listener_.message) listener_.message("info", message);
        return;
    }
    if (mode_ == OutputMode::Json || quiet_) return;
    end_bar();
    fmt::print(stderr, "{}\n", message);
}

void Reporter::result(const nlohmann::json& data, const std::string& human) {
    if (mode_ == OutputMode::Library) {
        result_data_ = data;
        result_text_ = human;
        return;
    }
    if (mode_ == OutputMode::Json) {
        nlohmann::json j = data;
        j["event"] = "result";
        std::cout << json_line(j) << std::endl;
        return;
    }
    end_bar();
    if (!human.empty()) fmt::print("{}", human);
    std::fflush(stdout);
}

void Reporter::report_before_error(const nlohmann::json& data, const std::string& human) {
    if (mode_ == OutputMode::Json) {
        report_before_error_ = data;
        return;
    }
    result(data, human);
}

int Reporter::error(const core::Error& error) {
    int code = core::exit_code(error.kind());
    if (mode_ == OutputMode::Json) {
        nlohmann::json j = {{"event", "error"}, {"kind", core::kind_name(error.kind())},
                            {"message", error.full_message()}, {"exit_code", code}};
        if (!error.operation().empty()) j["during"] = error.operation();
        if (!error.hint().empty()) j["hint"] = error.hint();
        if (error.address()) j["address"] = *error.address();
        if (report_before_error_) j["report"] = *report_before_error_;
        std::cout << json_line(j) << std::endl;
        return code;
    }
    end_bar();
    fmt::print(stderr, "error: {}\n", error.full_message());
    if (!error.hint().empty()) fmt::print(stderr, "hint: {}\n", error.hint());
    return code;
}

std::string json_line(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mcuflash::cli

#pragma once
// Typed progress events: the library emits them, the CLI renders them (bar, lines or JSON).
#include <cstdint>
#include <functional>
#include <string>

namespace mcuflash::core {

enum class Stage { Connect, Erase, Write, Verify, Read, Start };
const char* stage_name(Stage stage);

struct ProgressEvent {
    enum class Kind { Started, Advanced, Finished, Note };
    Kind kind = Kind::Advanced;
    Stage stage = Stage::Connect;
    uint64_t done = 0;    // bytes (or steps) done in this stage
    uint64_t total = 0;   // 0 when unknown
    std::string message;  // for Note (and optional detail on Started/Finished)
};

using ProgressSink = std::function<void(const ProgressEvent&)>;

// Small helper so callers need not check for an empty sink.
class Progress {
public:
    explicit Progress(ProgressSink sink = {}) : sink_(std::move(sink)) {}
    void started(Stage s, uint64_t total, std::string message = {}) const {
        emit({ProgressEvent::Kind::Started, s, 0, total, std::move(message)});
    }
    void advanced(Stage s, uint64_t done, uint64_t total) const {
        emit({ProgressEvent::Kind::Advanced, s, done, total, {}});
    }
    void finished(Stage s, uint64_t done, std::string message = {}) const {
        emit({ProgressEvent::Kind::Finished, s, done, done, std::move(message)});
    }
    void note(Stage s, std::string message) const {
        emit({ProgressEvent::Kind::Note, s, 0, 0, std::move(message)});
    }
    void emit(const ProgressEvent& e) const {
        if (sink_) sink_(e);
    }

private:
    ProgressSink sink_;
};

}  // namespace mcuflash::core

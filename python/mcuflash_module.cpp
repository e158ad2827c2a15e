// The Python module `mcuflash`: the library's calls (include/mcuflash/mcuflash.hpp, and nothing
// else of mcuflash) for Python programs such as Moonraker or KIAUH. Each call releases the GIL while
// the device is worked on and takes it back only to call the program's progress and message
// callbacks; results are the command's `--json` result as a dict; failures raise mcuflash.Error.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "mcuflash/mcuflash.hpp"

namespace py = pybind11;

namespace {

// The exception classes, made when the module is imported; the module keeps them alive.
PyObject* error_class = nullptr;
PyObject* verify_mismatch_class = nullptr;

// Raises the library's error as mcuflash.Error (mcuflash.VerifyMismatch for a device that differs),
// with the kind, exit code, hint and address as attributes.
[[noreturn]] void raise_error(const mcuflash::Error& error) {
    PyObject* cls = error.kind() == "verify_mismatch" ? verify_mismatch_class : error_class;
    py::object exception = py::reinterpret_borrow<py::object>(cls)(error.what());
    exception.attr("kind") = error.kind();
    exception.attr("exit_code") = error.exit_code();
    exception.attr("hint") = error.hint();
    exception.attr("address") = error.address() ? py::object(py::int_(*error.address())) : py::none();
    PyErr_SetObject(cls, exception.ptr());
    throw py::error_already_set();
}

// Thrown into the library from a callback that raised, so the operation stops at that point; the
// library reports it as its own error, which the call then replaces by the Python exception.
class CallbackRaised : public std::runtime_error {
public:
    CallbackRaised() : std::runtime_error("a Python callback raised an exception") {}
};

// The program's progress and message callables, called from the library's thread with the GIL taken
// back. A Python exception must not unwind through the library's C++ frames, so it is kept here and
// raised again once the call has returned.
class Callbacks {
public:
    Callbacks(py::object progress, py::object messages)
        : progress_(std::move(progress)), messages_(std::move(messages)) {
        if (!progress_.is_none() && !PyCallable_Check(progress_.ptr()))
            throw py::type_error("progress must be a callable taking one dict, or None");
        if (!messages_.is_none() && !PyCallable_Check(messages_.ptr()))
            throw py::type_error("messages must be a callable taking (level, text), or None");
    }

    void install(mcuflash::Options& options) {
        // Installed even without a progress callable: each event is also where Ctrl-C (a pending
        // KeyboardInterrupt) stops the operation.
        options.on_progress = [this](const mcuflash::ProgressEvent& event) { on_progress(event); };
        if (!messages_.is_none())
            options.on_message = [this](const std::string& level, const std::string& text) {
                on_message(level, text);
            };
    }

    // With the GIL held, after the call: raises what a callback raised, if one did.
    void raise_if_raised() {
        if (!raised_) return;
        raised_->restore();
        raised_.reset();
        throw py::error_already_set();
    }

private:
    void on_progress(const mcuflash::ProgressEvent& event) {
        py::gil_scoped_acquire gil;
        if (raised_) throw CallbackRaised();  // the library went on after the first one: stop again
        try {
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (progress_.is_none()) return;
            py::dict data;
            data["event"] = event.event;
            data["stage"] = event.stage;
            data["done"] = event.done;
            data["total"] = event.total;
            data["message"] = event.message;
            progress_(data);
        } catch (py::error_already_set& e) {
            raised_.emplace(std::move(e));
            throw CallbackRaised();
        }
    }

    void on_message(const std::string& level, const std::string& text) {
        py::gil_scoped_acquire gil;
        if (raised_) return;  // already stopping; messages said while failing are not worth another
        try {
            messages_(level, text);
        } catch (py::error_already_set& e) {
            raised_.emplace(std::move(e));
            throw CallbackRaised();
        }
    }

    py::object progress_;
    py::object messages_;
    std::optional<py::error_already_set> raised_;
};

// Runs one library call without the GIL; its result object as a dict.
template <typename Call>
py::dict run(Callbacks& callbacks, Call&& call) {
    mcuflash::Result result;
    std::optional<mcuflash::Error> failure;
    {
        py::gil_scoped_release release;
        try {
            result = call();
        } catch (const mcuflash::Error& e) {
            failure = e;
        }
    }
    callbacks.raise_if_raised();  // before the library's error: that one only says a callback raised
    if (failure) raise_error(*failure);
    return py::module_::import("json").attr("loads")(result.json).cast<py::dict>();
}

// The options every command that talks to a device has.
struct DeviceArgs {
    std::optional<std::string> device, board, chip, protocol, bootloader, klipper_config;
    std::optional<uint32_t> baud;
    bool no_reset = false;
    bool sim_fast = false;
    std::optional<std::string> sim_faults;
};

mcuflash::Options options_for(const DeviceArgs& args) {
    mcuflash::Options options;
    options.device = args.device.value_or("");
    options.board = args.board.value_or("");
    options.chip = args.chip.value_or("");
    options.protocol = args.protocol.value_or("");
    options.bootloader = args.bootloader.value_or("");
    options.klipper_config = args.klipper_config.value_or("");
    options.baud = args.baud;
    options.no_reset = args.no_reset;
    options.sim_fast = args.sim_fast;
    options.sim_faults = args.sim_faults.value_or("");
    return options;
}

const char* const module_doc = R"(Flash Klipper firmware onto printer micro-controllers through their bootloaders.

Each call does what the `mcuflash` command of the same name does (the same checks against the
board, the same refusals, the same verify) and returns the object `mcuflash --json COMMAND` prints as
its result, as a dict. Nothing is printed: pass `progress` and `messages` callables to see what
happens. Failures raise mcuflash.Error.

    import mcuflash
    result = mcuflash.flash("klipper.bin", "/dev/serial/by-id/usb-Klipper_stm32f446xx_1234-if00",
                            progress=lambda p: print(p["stage"], p["done"], p["total"]))
    print(result["verified"])

The GIL is released while the device is worked on, so other Python threads run; the callbacks are
called on the calling thread with the GIL held. An exception raised in a callback stops the
operation at the next progress event and is raised by the call.)";

const char* const common_args_doc = R"(
    device: what -d names: a serial port, usb:VID:PID, can:IFACE:UUID, sim:PROTOCOL[:CHIP], ...;
        None = the one bootloader or serial port found.
    board: a board ID, name or alias (`mcuflash boards`), checked against the device.
    chip, protocol, bootloader: --chip, -p, --bootloader (None = what the device says it is).
    klipper_config: Klipper's .config to check the image against (None = the one beside the image's
        Klipper build; "none" = no check).
    baud: the serial speed (None = the bootloader's usual one).
    no_reset: do not reset the board into its bootloader (it already runs it).
    sim_fast, sim_faults: for sim: devices, no simulated delays; faults to inject (--sim-faults).
    progress: called with a dict {"event": "started"|"advanced"|"finished"|"note", "stage":
        "connect"|"erase"|"write"|"verify"|"read"|"start", "done": int, "total": int (0 = not
        known), "message": str} for each progress event.
    messages: called with (level, text), level "info" or "warning", for each line the command would
        print on stderr.

Raises:
    mcuflash.Error: with kind, exit_code, hint and address (mcuflash.VerifyMismatch when the device
        differs from the image).)";

std::string doc(const char* head) { return std::string(head) + common_args_doc; }

}  // namespace

PYBIND11_MODULE(mcuflash, m) {
    m.doc() = module_doc;
    const std::string version_text = mcuflash::version();
    m.attr("__version__") = version_text.substr(0, version_text.find(' '));
    m.def("version", &mcuflash::version,
          "The version as `mcuflash --version` says it, with the git description of the build.");

    error_class = PyErr_NewExceptionWithDoc(
        "mcuflash.Error",
        "What went wrong, in the words the mcuflash command would print.\n\n"
        "Attributes:\n"
        "    kind: \"usage\", \"bad_input\", \"not_found\", \"io\", \"timeout\", \"permission\",\n"
        "        \"verify_mismatch\", \"unsafe\", \"protocol\", \"unsupported\", \"internal\",\n"
        "        \"interrupted\" or \"terminated\" (as `mcuflash --json` names errors).\n"
        "    exit_code: the exit code the command would end with (65 bad input or unsafe, 69 not found, ...).\n"
        "    hint: what to do about it (\"\" when there is nothing to add).\n"
        "    address: the flash address the failure concerns, or None.",
        PyExc_Exception, nullptr);
    if (!error_class) throw py::error_already_set();
    m.add_object("Error", py::handle(error_class));  // the module's reference keeps it alive
    py::object error = m.attr("Error");
    error.attr("kind") = "internal";
    error.attr("exit_code") = 70;
    error.attr("hint") = "";
    error.attr("address") = py::none();

    verify_mismatch_class = PyErr_NewExceptionWithDoc(
        "mcuflash.VerifyMismatch",
        "The device's flash differs from the image (kind \"verify_mismatch\", exit code 1); address is\n"
        "the first address that differs.",
        error_class, nullptr);
    if (!verify_mismatch_class) throw py::error_already_set();
    m.add_object("VerifyMismatch", py::handle(verify_mismatch_class));

    using namespace pybind11::literals;

    m.def(
        "flash",
        [](const std::filesystem::path& image, std::optional<std::string> device, std::optional<std::string> board,
           std::optional<std::string> chip, std::optional<std::string> protocol,
           std::optional<std::string> bootloader, std::optional<std::string> klipper_config,
           std::optional<uint32_t> baud, std::optional<uint32_t> address, std::optional<std::string> format,
           bool verify, bool start, bool no_reset, bool rewrite_unchanged, std::optional<unsigned> time_limit,
           bool sim_fast, std::optional<std::string> sim_faults, py::object progress, py::object messages) {
            Callbacks callbacks(std::move(progress), std::move(messages));
            mcuflash::Options options = options_for(
                {device, board, chip, protocol, bootloader, klipper_config, baud, no_reset, sim_fast, sim_faults});
            options.address = address;
            options.format = format.value_or("");
            options.verify = verify;
            options.start = start;
            options.rewrite_unchanged = rewrite_unchanged;
            options.time_limit_seconds = time_limit;
            callbacks.install(options);
            const std::string file = image.string();
            return run(callbacks, [&] { return mcuflash::flash(file, options); });
        },
        "image"_a, "device"_a = py::none(), py::kw_only(), "board"_a = py::none(), "chip"_a = py::none(),
        "protocol"_a = py::none(), "bootloader"_a = py::none(), "klipper_config"_a = py::none(),
        "baud"_a = py::none(), "address"_a = py::none(), "format"_a = py::none(), "verify"_a = true,
        "start"_a = true, "no_reset"_a = false, "rewrite_unchanged"_a = false, "time_limit"_a = py::none(),
        "sim_fast"_a = false, "sim_faults"_a = py::none(), "progress"_a = py::none(), "messages"_a = py::none(),
        doc(R"(Writes an image to the device, verifies it and starts it (`mcuflash flash`).

Returns the result as a dict: {"command": "flash", "bytes_written": int, "verified": bool, ...};
"verified" is False, with the reason, for a write-only bootloader.

Args:
    image: the firmware file (Intel HEX, S-record, ELF, raw .bin, UF2).
    address: where a raw .bin goes (None = the application start).
    format: the image's format (None = from its contents and name).
    verify: False skips the verify (--no-verify).
    start: False leaves the bootloader running (--no-start).
    rewrite_unchanged: write pages that already hold the image too.
    time_limit: whole seconds the operation may take (None = far above what the flash and the link
        need, as --time-limit's default).)")
            .c_str());

    m.def(
        "verify",
        [](const std::filesystem::path& image, std::optional<std::string> device, std::optional<std::string> board,
           std::optional<std::string> chip, std::optional<std::string> protocol,
           std::optional<std::string> bootloader, std::optional<std::string> klipper_config,
           std::optional<uint32_t> baud, std::optional<uint32_t> address, std::optional<std::string> format,
           bool no_reset, bool sim_fast, std::optional<std::string> sim_faults, py::object progress,
           py::object messages) {
            Callbacks callbacks(std::move(progress), std::move(messages));
            mcuflash::Options options = options_for(
                {device, board, chip, protocol, bootloader, klipper_config, baud, no_reset, sim_fast, sim_faults});
            options.address = address;
            options.format = format.value_or("");
            callbacks.install(options);
            const std::string file = image.string();
            return run(callbacks, [&] { return mcuflash::verify(file, options); });
        },
        "image"_a, "device"_a = py::none(), py::kw_only(), "board"_a = py::none(), "chip"_a = py::none(),
        "protocol"_a = py::none(), "bootloader"_a = py::none(), "klipper_config"_a = py::none(),
        "baud"_a = py::none(), "address"_a = py::none(), "format"_a = py::none(), "no_reset"_a = false,
        "sim_fast"_a = false, "sim_faults"_a = py::none(), "progress"_a = py::none(), "messages"_a = py::none(),
        doc(R"(Compares the device's flash with an image (`mcuflash verify`).

Returns the result as a dict; raises mcuflash.VerifyMismatch when they differ.

Args:
    image: the firmware file.
    address, format: as for flash().)")
            .c_str());

    m.def(
        "read",
        [](const std::filesystem::path& out_file, std::optional<std::string> device, std::optional<uint32_t> address,
           std::optional<uint32_t> length, std::optional<std::string> format, std::optional<std::string> board,
           std::optional<std::string> chip, std::optional<std::string> protocol,
           std::optional<std::string> bootloader, std::optional<std::string> klipper_config,
           std::optional<uint32_t> baud, bool no_reset, bool sim_fast, std::optional<std::string> sim_faults,
           py::object progress, py::object messages) {
            Callbacks callbacks(std::move(progress), std::move(messages));
            mcuflash::Options options = options_for(
                {device, board, chip, protocol, bootloader, klipper_config, baud, no_reset, sim_fast, sim_faults});
            options.format = format.value_or("");
            callbacks.install(options);
            const std::string file = out_file.string();
            return run(callbacks, [&] { return mcuflash::read(file, options, address, length); });
        },
        "out_file"_a, "device"_a = py::none(), py::kw_only(), "address"_a = py::none(), "length"_a = py::none(),
        "format"_a = py::none(), "board"_a = py::none(), "chip"_a = py::none(), "protocol"_a = py::none(),
        "bootloader"_a = py::none(), "klipper_config"_a = py::none(), "baud"_a = py::none(),
        "no_reset"_a = false, "sim_fast"_a = false, "sim_faults"_a = py::none(), "progress"_a = py::none(),
        "messages"_a = py::none(),
        doc(R"(Reads the device's flash into a file (`mcuflash read -o OUT_FILE`).

Returns the result as a dict.

Args:
    out_file: the file to write (hex, srec or bin, from its extension unless format says).
    address: the first address to read (None = the start of flash).
    length: how many bytes (None = up to the end of the flash).
    format: "hex", "srec" or "bin" (None = from out_file's extension).)")
            .c_str());

    m.def(
        "info",
        [](std::optional<std::string> device, std::optional<std::string> board, std::optional<std::string> chip,
           std::optional<std::string> protocol, std::optional<std::string> bootloader,
           std::optional<std::string> klipper_config, std::optional<uint32_t> baud, bool no_reset, bool sim_fast,
           std::optional<std::string> sim_faults, py::object progress, py::object messages) {
            Callbacks callbacks(std::move(progress), std::move(messages));
            mcuflash::Options options = options_for(
                {device, board, chip, protocol, bootloader, klipper_config, baud, no_reset, sim_fast, sim_faults});
            callbacks.install(options);
            return run(callbacks, [&] { return mcuflash::info(options); });
        },
        "device"_a = py::none(), py::kw_only(), "board"_a = py::none(), "chip"_a = py::none(),
        "protocol"_a = py::none(), "bootloader"_a = py::none(), "klipper_config"_a = py::none(),
        "baud"_a = py::none(), "no_reset"_a = false, "sim_fast"_a = false, "sim_faults"_a = py::none(),
        "progress"_a = py::none(), "messages"_a = py::none(),
        doc(R"(Asks the device what it is: chip, bootloader and flash layout (`mcuflash info`).

Returns the result as a dict.
)")
            .c_str());

    m.def(
        "list_devices",
        [] {
            Callbacks callbacks{py::none(), py::none()};
            return run(callbacks, [] { return mcuflash::list(); });
        },
        R"(The serial ports, USB devices and debug probes present and what mcuflash knows them as
(`mcuflash list`), as a dict.)");
}

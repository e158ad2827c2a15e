// Flashes an image with libmcuflash, as `mcuflash flash` would, showing the progress of each stage.
//   example IMAGE [DEVICE]     (DEVICE: default the simulated ATmega1284P, sim:stk500v1:atmega1284p)
// Build: this folder's CMakeLists.txt (find_package), or
//   g++ -std=c++17 example.cpp $(pkg-config --cflags --libs mcuflash) -o example
#include <mcuflash/mcuflash.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " IMAGE [DEVICE]\n";
        return 64;
    }
    mcuflash::Options options;
    options.device = argc > 2 ? argv[2] : "sim:stk500v1:atmega1284p";
    // A simulated board answers at once instead of at the speed of a serial line.
    options.sim_fast = options.device.rfind("sim:", 0) == 0;
    options.on_progress = [](const mcuflash::ProgressEvent& event) {
        if (event.event == "finished") {
            std::cout << event.stage << ": " << event.done << " done\n";
        } else if (event.event == "note") {
            std::cout << "note: " << event.message << "\n";
        }
    };
    options.on_message = [](const std::string& level, const std::string& text) {
        std::cerr << level << ": " << text << "\n";
    };

    std::cout << "libmcuflash " << mcuflash::version() << "\n";
    try {
        mcuflash::Result result = mcuflash::flash(argv[1], options);
        std::cout << result.text;
        if (!result.text.empty() && result.text.back() != '\n') std::cout << "\n";
        std::cout << "result: " << result.json << "\n";
        return 0;
    } catch (const mcuflash::Error& error) {
        std::cerr << "flash failed (" << error.kind() << "): " << error.what() << "\n";
        if (!error.hint().empty()) std::cerr << "hint: " << error.hint() << "\n";
        return error.exit_code();
    }
}

#pragma once
// Klipper's host stopped while its MCUs are flashed (it holds their ports and reconnects to a board
// that reboots), and started again afterwards: through Moonraker's HTTP API when it answers (no root
// needed: POST /machine/services/stop?service=klipper), else through systemd's systemctl.
#include <string>

namespace mcuflash::cli {

class Reporter;

class KlipperService {
public:
    // Stops the klipper service now. Throws core::Error when neither way works (Permission when
    // systemctl refuses, NotFound when there is neither Moonraker nor systemctl).
    KlipperService(const std::string& moonraker_url, Reporter& reporter);
    ~KlipperService();  // starts it again, if start_again() was not called
    KlipperService(const KlipperService&) = delete;
    KlipperService& operator=(const KlipperService&) = delete;

    // Starts the service again if it was stopped here; a failure is a warning (the flash is done).
    void start_again();

private:
    enum class Via { Nothing, Moonraker, Systemctl };
    std::string moonraker_url_;
    Reporter& reporter_;
    Via stopped_via_ = Via::Nothing;
};

// Moonraker's answer to POST `path` at `url` (http://HOST:PORT): the HTTP status, or 0 when nothing
// answers there. Throws nothing.
int moonraker_post(const std::string& url, const std::string& path, std::string* body = nullptr);

}  // namespace mcuflash::cli

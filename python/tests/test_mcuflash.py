"""The Python module against mcuflash's in-process simulators (-d sim:...).

Run by ctest as python.bindings, with PYTHONPATH naming the build's python/ folder. A simulated
device is fresh at each call: its application flash is blank (0xFF) and its bootloader region holds
the simulator's placeholder, so verify and read are checked against that state.
"""
import os
import pathlib
import signal
import threading
import time
import zlib

import pytest

import mcuflash

SOURCE_DIR = pathlib.Path(os.environ.get("SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
DEMO_HEX = SOURCE_DIR / "examples" / "demo-atmega1284p.hex"
AVR = "sim:stk500v1:atmega1284p"


def read_intel_hex(path):
    """address -> byte for the data records of an Intel HEX file (types 00, 02, 04)."""
    data, base = {}, 0
    for line in pathlib.Path(path).read_text().split():
        record = bytes.fromhex(line[1:])
        count, offset, kind, payload = record[0], int.from_bytes(record[1:3], "big"), record[3], record[4:-1]
        assert len(payload) == count and sum(record) & 0xFF == 0, line
        if kind == 0:
            for i, value in enumerate(payload):
                data[base + offset + i] = value
        elif kind == 2:
            base = int.from_bytes(payload, "big") << 4
        elif kind == 4:
            base = int.from_bytes(payload, "big") << 16
    return data


def test_version():
    assert mcuflash.__version__.count(".") == 2
    assert mcuflash.version().startswith(mcuflash.__version__)


def test_flash_writes_verifies_and_reports_progress_and_messages():
    events, messages = [], []
    result = mcuflash.flash(DEMO_HEX, AVR, sim_fast=True, progress=events.append,
                            messages=lambda level, text: messages.append((level, text)))
    assert result["command"] == "flash"
    assert result["verified"] is True
    assert result["bytes_written"] > 0
    seen = {(e["event"], e["stage"]) for e in events}
    for stage in ("write", "verify"):
        assert ("started", stage) in seen, seen
        assert ("finished", stage) in seen, seen
    finished_write = [e for e in events if e["event"] == "finished" and e["stage"] == "write"][-1]
    assert finished_write["done"] == finished_write["total"] > 0
    assert set(events[0]) == {"event", "stage", "done", "total", "message"}
    assert any(level == "info" for level, _ in messages), messages
    assert all(level in ("info", "warning") and isinstance(text, str) for level, text in messages)


def test_flash_without_verify_says_so():
    result = mcuflash.flash(str(DEMO_HEX), device=AVR, sim_fast=True, verify=False)
    assert result["verified"] is False
    assert result["bytes_written"] > 0


def test_flash_over_a_usb_protocol(tmp_path):
    image = tmp_path / "app.bin"
    image.write_bytes(os.urandom(5000))
    stages = set()
    result = mcuflash.flash(image, "sim:picoboot", sim_fast=True, progress=lambda e: stages.add(e["stage"]))
    assert result["verified"] is True
    assert result["bytes_written"] >= 5000
    assert {"write", "verify"} <= stages


def test_a_missing_file_is_bad_input(tmp_path):
    with pytest.raises(mcuflash.Error) as raised:
        mcuflash.flash(tmp_path / "missing.hex", AVR, sim_fast=True)
    error = raised.value
    assert error.kind == "bad_input"
    assert error.exit_code == 65
    assert "missing.hex" in str(error)
    assert isinstance(error, Exception) and not isinstance(error, mcuflash.VerifyMismatch)


def test_the_wrong_chip_is_refused_with_a_hint():
    with pytest.raises(mcuflash.Error) as raised:
        mcuflash.flash(DEMO_HEX, AVR, chip="atmega328p", sim_fast=True)
    assert "atmega1284p" in str(raised.value)
    assert raised.value.hint
    assert raised.value.exit_code != 0


def test_a_board_of_another_chip_is_refused_with_a_hint():
    with pytest.raises(mcuflash.Error) as raised:
        mcuflash.flash(DEMO_HEX, AVR, board="anycubic-i3-mega", sim_fast=True)  # an atmega2560 board
    assert "atmega2560" in str(raised.value) and "atmega1284p" in str(raised.value)
    assert raised.value.hint
    # A board with this chip (the Anet mainboard, an atmega1284p) is accepted.
    assert mcuflash.flash(DEMO_HEX, AVR, board="anet", sim_fast=True)["verified"] is True


def test_an_unknown_board_is_refused_with_the_nearest_names():
    with pytest.raises(mcuflash.Error) as raised:
        mcuflash.flash(DEMO_HEX, AVR, board="no-such-board", sim_fast=True)
    assert raised.value.kind == "usage"
    assert "mcuflash boards" in raised.value.hint


def test_verify_of_another_image_is_a_mismatch():
    # The simulated device is blank: the demo image differs from its first byte on.
    with pytest.raises(mcuflash.VerifyMismatch) as raised:
        mcuflash.verify(DEMO_HEX, AVR, sim_fast=True)
    assert isinstance(raised.value, mcuflash.Error)
    assert raised.value.kind == "verify_mismatch"
    assert raised.value.exit_code == 1
    assert raised.value.address == 0


def test_verify_of_what_the_device_holds_matches(tmp_path):
    blank = tmp_path / "blank.bin"
    blank.write_bytes(b"\xff" * 1024)
    result = mcuflash.verify(blank, AVR, sim_fast=True)
    assert result["command"] == "verify"
    assert result["match"] is True


def test_read_writes_the_device_bytes(tmp_path):
    # The last 4 KiB: blank application flash, then optiboot's region with the simulator's placeholder.
    binary, hexfile = tmp_path / "top.bin", tmp_path / "top.hex"
    result = mcuflash.read(binary, AVR, address=0x1F000, length=4096, sim_fast=True)
    data = binary.read_bytes()
    assert result["length"] == len(data) == 4096
    assert result["crc32"] == zlib.crc32(data)
    assert data[:0xC00] == b"\xff" * 0xC00
    assert data[0xC00:].startswith(b"[mcuflash-sim placeholder: optiboot]")

    mcuflash.read(hexfile, AVR, address=0x1F000, length=4096, sim_fast=True)
    from_hex = read_intel_hex(hexfile)
    assert all(from_hex.get(0x1F000 + i, 0xFF) == value for i, value in enumerate(data))
    assert all(0x1F000 <= address < 0x20000 for address in from_hex)


def test_info_names_the_chip_and_bootloader():
    result = mcuflash.info(AVR, sim_fast=True)
    assert result["chip"] == "atmega1284p"
    assert result["bootloader"] == "optiboot"
    assert result["flash_size"] == 128 * 1024


def test_list_devices_returns_what_is_present():
    result = mcuflash.list_devices()
    assert result["command"] == "list"
    assert {"serial", "usb"} <= set(result)


class Stop(Exception):
    pass


def test_an_exception_in_the_progress_callback_stops_the_flash_and_propagates():
    events = []

    def progress(event):
        events.append(event)
        if event["stage"] == "write" and event["event"] == "advanced":
            raise Stop("stop here")

    with pytest.raises(Stop, match="stop here"):
        mcuflash.flash(DEMO_HEX, AVR, sim_fast=True, progress=progress)
    # Stopped where it raised: nothing after the first write step reached the callback.
    assert events[-1]["stage"] == "write" and events[-1]["event"] == "advanced"
    assert not any(e["stage"] == "verify" for e in events)


def test_an_exception_in_the_messages_callback_propagates():
    def messages(level, text):
        raise KeyError(text)

    with pytest.raises(KeyError):
        mcuflash.flash(DEMO_HEX, AVR, sim_fast=True, messages=messages)


def test_callbacks_must_be_callable():
    with pytest.raises(TypeError):
        mcuflash.flash(DEMO_HEX, AVR, sim_fast=True, progress="not a function")


def test_options_after_the_device_are_keywords_only():
    with pytest.raises(TypeError):
        mcuflash.flash(DEMO_HEX, AVR, "stk500v1")


def test_flashes_run_from_several_python_threads():
    # Each call releases the GIL while it works and takes it back on its own thread for the callbacks.
    results, errors = [], []

    def worker():
        try:
            results.append(mcuflash.flash(DEMO_HEX, AVR, sim_fast=True, progress=lambda e: None))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [r["verified"] for r in results] == [True, True]


def test_other_threads_run_while_a_call_works(tmp_path):
    # With the simulator's own timing, writing 2 KiB takes a while in C++. The progress callback is a
    # C function (list.append), so the call runs no Python code between its first and last event: a
    # Python thread that sees a count of events in between ran while the call held no GIL.
    image = tmp_path / "app.bin"
    image.write_bytes(os.urandom(2048))
    events, seen = [], []
    done = threading.Event()

    def watcher():
        while not done.is_set():
            seen.append(len(events))
            time.sleep(0.001)

    thread = threading.Thread(target=watcher)
    thread.start()
    try:
        result = mcuflash.flash(image, AVR, progress=events.append)
    finally:
        done.set()
        thread.join()
    assert result["verified"] is True
    assert any(0 < count < len(events) for count in seen), (len(events), sorted(set(seen)))


def test_ctrl_c_stops_the_call_with_keyboard_interrupt():
    # SIGINT arrives while the call works (with the simulator's timing, for seconds); Python's handler
    # runs at the next progress event and the call raises KeyboardInterrupt there.
    events = []
    call_over = threading.Event()

    def interrupt_once_writing():
        while not call_over.is_set():
            if any(e["stage"] == "write" for e in list(events)):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)

    thread = threading.Thread(target=interrupt_once_writing)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mcuflash.flash(DEMO_HEX, AVR, progress=events.append)
    finally:
        call_over.set()
        thread.join()
    assert not any(e["stage"] == "start" for e in events)

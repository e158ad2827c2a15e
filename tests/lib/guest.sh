# Shared set-up of the tests that run commands under a real Linux kernel (../shared/tools/guest-run.sh),
# sourced after common.sh.

# use_guest COMMAND...: sets GUEST_RUN, or skips (77) when guest-run.sh, one of the COMMANDs (usbip,
# the real peers the test needs) or QEMU is missing.
use_guest() {
  GUEST_RUN=${GUEST_RUN_SH:-$SOURCE_DIR/../shared/tools/guest-run.sh}
  [ -x "$GUEST_RUN" ] || GUEST_RUN=/work/shared/tools/guest-run.sh
  [ -x "$GUEST_RUN" ] || skip "guest-run.sh not found"
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || skip "$tool not installed (scripts/setup.sh installs it)"; done
  "$GUEST_RUN" --build-only >"$WORK/build-only.log" 2>&1 || { tail -5 "$WORK/build-only.log" >&2; skip "guest-run.sh cannot prepare QEMU"; }
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 unavailable"
}

# make_guest_dir NAME: GUEST_DIR, a folder the guest shares with mcuflash copied into it. It is inside
# the build folder: the guest cannot see the host's /tmp. Removed at exit (kept with KEEP_GUEST_DIR=1).
make_guest_dir() {
  mkdir -p "$BUILD_DIR/tests/interop"
  GUEST_DIR=$(mktemp -d "$BUILD_DIR/tests/interop/$1.XXXXXX")
  trap '[ -n "${KEEP_GUEST_DIR:-}" ] || rm -rf "$GUEST_DIR"; cleanup' EXIT
  cp "$MCUFLASH" "$GUEST_DIR/mcuflash"
  cp "$SOURCE_DIR/tests/lib/in_guest_usbip.sh" "$GUEST_DIR/"
}

# case_fail MESSAGE: fails after showing the tail of what the guest and the simulators wrote.
case_fail() {
  local log
  for log in "${GUEST_DIR:-/nonexistent}"/*.txt "$WORK"/guest.out "$WORK"/guest.err "$WORK"/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
  done
  fail "$*"
}

# guest_succeeded RC MEANINGS: fails on a guest that timed out (124) or did not boot (125), or a guest
# command that exited with another code than 0 (MEANINGS says what each of its exit codes means).
guest_succeeded() {
  [ "$1" -eq 124 ] && case_fail "the guest timed out"
  [ "$1" -eq 125 ] && case_fail "the guest itself failed"
  [ "$1" -eq 0 ] || case_fail "guest command failed (exit $1: $2)"
}

# expect TEXT FILE: FILE, in the guest's folder, holds TEXT.
expect() { grep -qF -- "$1" "$GUEST_DIR/$2" || case_fail "expected in $2: $1"; }

#!/usr/bin/env bash
# `cmake --install` into a fresh prefix: the two programs, the udev rules (the same as `mcuflash
# udev-rules` prints), the README, CHANGELOG and docs, the man page and the bash, zsh and fish
# completions; the installed mcuflash says its version and
# flashes a simulated board from where it was installed, with the build tree out of its reach.
source "$(dirname "$0")/../lib/common.sh"

prefix="$WORK/prefix"
cmake --install "$BUILD_DIR" --prefix "$prefix" >"$WORK/install.log" 2>&1 || fail "cmake --install: $(cat "$WORK/install.log")"
for f in bin/mcuflash bin/mcuflash-sim lib/udev/rules.d/70-mcuflash.rules share/doc/mcuflash/README.md \
         share/doc/mcuflash/CHANGELOG.md share/doc/mcuflash/architecture.md share/man/man1/mcuflash.1 \
         share/bash-completion/completions/mcuflash share/zsh/vendor-completions/_mcuflash \
         share/fish/vendor_completions.d/mcuflash.fish; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
"$MCUFLASH" udev-rules | cmp - "$prefix/lib/udev/rules.d/70-mcuflash.rules" || fail "the installed udev rules are not what mcuflash udev-rules prints"
version=$("$prefix/bin/mcuflash" --version)
[[ "$version" =~ ^mcuflash\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "--version says '$version'"
# From elsewhere, with the build and source trees unreadable by name: the knowledge base is inside.
cd "$WORK"
random_hex "$WORK/app.hex" 3000 0
env -i PATH="$prefix/bin:/usr/bin:/bin" mcuflash flash "$WORK/app.hex" -d sim:stk500v1:atmega1284p --sim-fast -q \
  >"$WORK/out" 2>&1 || fail "the installed mcuflash cannot flash: $(cat "$WORK/out")"
grep -q "verified" "$WORK/out" || fail "not verified: $(cat "$WORK/out")"
echo "ok: installed into a prefix ($version), and the installed mcuflash flashes a simulated board"

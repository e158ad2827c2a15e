#!/usr/bin/env bash
# The man page and the shell completions (`mcuflash generate man|bash|zsh|fish`, written at build
# time) against `--help`: every command and every option `--help` shows, for every command and
# sub-command, is in the man page and completes in bash; the man page renders without a groff
# warning; bash completes command names, sub-commands and options as typed; zsh and fish get every
# command and option too.
source "$(dirname "$0")/../lib/common.sh"
cd "$WORK"
"$MCUFLASH" generate man >mcuflash.1
"$MCUFLASH" generate bash >mcuflash.bash
"$MCUFLASH" generate zsh >_mcuflash
"$MCUFLASH" generate fish >mcuflash.fish
for f in mcuflash.1 mcuflash.bash _mcuflash mcuflash.fish; do
  cmp -s "$f" "$BUILD_DIR/$f" || fail "$BUILD_DIR/$f is not what mcuflash generate writes now"
done
! "$MCUFLASH" --help | grep -q generate || fail "generate shows in --help (it is for packaging)"

python3 - "$MCUFLASH" <<'PY' || fail "the man page or the completions miss what --help shows"
import re, subprocess, sys
mcuflash = sys.argv[1]
man = open("mcuflash.1").read().replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
bash = open("mcuflash.bash").read()
zsh = open("_mcuflash").read()
fish = open("mcuflash.fish").read()

def help_of(path):
    return subprocess.run([mcuflash, *path, "--help"], capture_output=True, text=True).stdout

def sections(text):
    options, subcommands, where = [], [], None
    for line in text.splitlines():
        if line.startswith("Options:"): where = "options"; continue
        if line.startswith("Subcommands:"): where = "subcommands"; continue
        if line.startswith("Positionals:") or not line.strip(): where = None if not line.strip() else "positionals"; continue
        m = re.match(r"^  (\S+)", line)
        if not m: continue
        if where == "options":
            options += re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line.split("  ")[1] if line.startswith("  ") else line)[:3]
        elif where == "subcommands":
            subcommands.append(m.group(1))
    return options, subcommands

checked = 0
todo = [[]]
while todo:
    path = todo.pop()
    options, subcommands = sections(help_of(path))
    name = " ".join(path)
    if path:
        assert f'.SS "mcuflash {name}"' in man, f"no man section for {name}"
        assert f"'{name}')" in bash, f"bash does not know the command {name}"
        assert f"'{name}'" in zsh, f"zsh does not know the command {name}"
    table = re.search(r"^    '%s'\) words='([^']*)'" % re.escape(name), bash, re.M)
    assert table, f"no bash completions for '{name}'"
    words = table.group(1).split()
    for option in options:
        assert option in words, f"bash: {name} {option} does not complete"
        assert option in man, f"man: {name} {option} missing"
        checked += 1
    for sub in subcommands:
        assert sub in words, f"bash: {name} {sub} does not complete"
        assert f"-a {sub} " in fish, f"fish: {sub} missing"
        todo.append(path + [sub])
assert checked > 150, f"only {checked} options checked: --help was not read"
print(f"{checked} options of every command checked")
PY

# groff: no warnings (a stray request or escape would be one).
warnings=$(groff -man -ww -z mcuflash.1 2>&1)
[ -z "$warnings" ] || fail "groff warns about the man page: $warnings"

# bash, as typed.
complete_line() {
  bash -c 'source ./mcuflash.bash; read -ra COMP_WORDS <<<"$1"; [[ "$1" == *" " ]] && COMP_WORDS+=("");
           COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _mcuflash; echo "${COMPREPLY[*]}"' _ "$1"
}
[ "$(complete_line "mcuflash fl")" = "flash" ] || fail "mcuflash fl<TAB>: $(complete_line "mcuflash fl")"
[[ " $(complete_line "mcuflash printer ") " == *" flash "* ]] || fail "mcuflash printer <TAB>: $(complete_line "mcuflash printer ")"
[[ " $(complete_line "mcuflash --json printer flash --st") " == *" --stop-klipper "* ]] ||
  fail "mcuflash --json printer flash --st<TAB>: $(complete_line "mcuflash --json printer flash --st")"
[[ " $(complete_line "mcuflash flash --bo") " == *" --board "* ]] || fail "mcuflash flash --bo<TAB>: $(complete_line "mcuflash flash --bo")"
echo "man page and completions: ok"

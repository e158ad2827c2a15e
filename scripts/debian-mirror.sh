# Sourced by scripts/deb-check.sh and scripts/cross.sh: sets `mirror` to the Debian mirror to make
# roots from: $MCUFLASH_DEBIAN_MIRROR, else the one this machine's apt uses (deb822 URIs: or one-line
# deb entries; not its security one), else deb.debian.org.
mirror=${MCUFLASH_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
           grep -oE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' |
           awk '{print $2}' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}

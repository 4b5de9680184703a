#!/usr/bin/env bash
# Checks Coffer's packaging end to end, on Debian, as root (or with sudo):
#   1. the launcher and the AppStream metadata validate;
#   2. the icon PNGs exist at every hicolor size;
#   3. the .deb builds (from the debug binary, see build-deb.sh --dev) and
#      holds the binary, every icon size, the launcher, the metainfo, the
#      completions and the man pages;
#   4. it installs with apt-get, after which `coffer --version`, `man -w coffer`
#      and bash completion of `coffer sy<TAB>` work.
# Safe to run again: it reinstalls the package each time. It installs the
# tools it needs (desktop-file-utils, appstream, man-db) with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
fail() { echo "check-packaging: FAIL: $*" >&2; exit 1; }
step() { echo "== check-packaging: $*"; }

missing=()
for p in desktop-file-utils appstream man-db; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "validate the launcher and the metainfo"
desktop-file-validate packaging/coffer.desktop
desktop-file-validate packaging/coffer-agent.desktop
appstreamcli validate --no-net packaging/org.coffer.Coffer.metainfo.xml

sizes=(16 32 48 64 128 256 512)
step "icons"
for n in "${sizes[@]}"; do
  f="icons/hicolor/${n}x${n}/apps/coffer.png"
  [ -f "$f" ] || fail "$f is missing; run icons/render.sh"
  file "$f" | grep -q "PNG image data, $n x $n" || fail "$f is not a ${n}x${n} PNG"
done

step "build the .deb (dev profile)"
scripts/build-deb.sh --dev
target="${CARGO_TARGET_DIR:-target}"
debs=("$target"/debian/coffer_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb in $target/debian, found: ${debs[*]}"
deb="$(realpath "${debs[0]}")"

step "contents of $deb"
contents="$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')"
want=(/usr/bin/coffer
      /usr/share/applications/coffer.desktop
      /etc/xdg/autostart/coffer-agent.desktop
      /usr/lib/systemd/user/coffer-agent.service
      /usr/share/metainfo/org.coffer.Coffer.metainfo.xml
      /usr/share/icons/hicolor/scalable/apps/coffer.svg
      /usr/share/bash-completion/completions/coffer
      /usr/share/zsh/vendor-completions/_coffer
      /usr/share/fish/vendor_completions.d/coffer.fish
      /usr/share/man/man1/coffer.1.gz
      /usr/share/man/man1/coffer-sync.1.gz)
for n in "${sizes[@]}"; do want+=("/usr/share/icons/hicolor/${n}x${n}/apps/coffer.png"); done
for w in "${want[@]}"; do
  grep -qxF "$w" <<<"$contents" || fail "$w is not in the package"
done
dpkg-deb -f "$deb" Depends | grep -q libxkbcommon-x11-0 || fail "Depends lacks the window's libraries"

step "install it"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --reinstall "$deb" >/dev/null

step "coffer --version"
version="$(/usr/bin/coffer --version)"
expected="coffer $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')"
[ "$version" = "$expected" ] || fail "coffer --version says '$version', expected '$expected'"

step "man coffer"
page="$(man -w coffer)"
[ "$page" = /usr/share/man/man1/coffer.1.gz ] || fail "man -w coffer found '$page'"
rendered="$(MANWIDTH=80 man -P cat coffer 2>/dev/null)"
grep -q "EXIT STATUS" <<<"$rendered" || fail "man coffer lacks EXIT STATUS"
man -w coffer-sync >/dev/null || fail "no man page for coffer-sync"

step "bash completion"
# bash-completion loads /usr/share/bash-completion/completions/<command> on
# the first <TAB>; source it the same way and complete `coffer sy`.
bash_dir="$(pkg-config --variable=completionsdir bash-completion 2>/dev/null || echo /usr/share/bash-completion/completions)"
[ -f "$bash_dir/coffer" ] || fail "no completion file in $bash_dir"
got="$(bash -c "source '$bash_dir/coffer'; COMP_WORDS=(coffer sy); COMP_CWORD=1; COMP_LINE='coffer sy'; COMP_POINT=9; _coffer coffer sy coffer; echo \"\${COMPREPLY[*]}\"")"
[ "$got" = "sync" ] || fail "completing 'coffer sy' gave '$got'"

step "desktop integration"
desktop-file-validate /usr/share/applications/coffer.desktop
desktop-file-validate /etc/xdg/autostart/coffer-agent.desktop
grep -qx 'ExecStart=/usr/bin/coffer agent' /usr/lib/systemd/user/coffer-agent.service || fail "the agent's user unit does not run /usr/bin/coffer agent"
[ -f /usr/share/icons/hicolor/48x48/apps/coffer.png ] || fail "icon not installed"

echo "check-packaging: OK ($(basename "$deb"))"

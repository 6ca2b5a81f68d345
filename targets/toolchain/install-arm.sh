#!/usr/bin/env bash
# Installs the ARM cross toolchain Tern's target jobs need, from Debian's registry only
# (bookworm + bookworm-backports). Idempotent: does nothing when everything is there.
#
#   rustc-web/cargo-web 1.96      Debian's Rust, registered with rustup as `deb-1.96`
#   libstd-rust-web-dev:arm64     the aarch64-unknown-linux-gnu std (needs the arm64 arch)
#   rust-web-src                  library sources, for -Zbuild-std=core on Cortex-M
#   gcc-aarch64-linux-gnu,        linker (and libc) for aarch64 Linux
#   libc6-dev-arm64-cross
#   lld-22                        linker for the Cortex-M firmware (no rust-lld in Debian)
#   gcc-arm-none-eabi,            C compiler, libgcc and binutils for the freestanding C
#   binutils-arm-none-eabi        firmware (targets/cortex-m-c; no newlib: -nostdlib -lgcc)
#   qemu-user, qemu-system-arm    qemu-aarch64 (Cortex-A CPUs) and the mps2/mps3 boards
#                                 (from bookworm-backports: QEMU 10)
#
# Elsewhere (rustup with network) `rustup target add aarch64-unknown-linux-gnu
# thumbv7em-none-eabihf thumbv8m.main-none-eabihf` replaces the Rust packages; the build
# works with either toolchain (see targets/xtask: TERN_RUST_TOOLCHAIN).
set -euo pipefail

need_files=(
  /usr/bin/rustc /usr/bin/cargo
  /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib
  /usr/lib/rustlib/src/rust/library/core/Cargo.toml
  /usr/bin/aarch64-linux-gnu-gcc /usr/aarch64-linux-gnu/lib/crti.o
  /usr/bin/ld.lld-22 /usr/bin/qemu-aarch64 /usr/bin/qemu-system-arm
  /usr/bin/arm-none-eabi-gcc /usr/bin/arm-none-eabi-size
)
missing=()
for f in "${need_files[@]}"; do [ -e "$f" ] || missing+=("$f"); done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    SUDO="sudo -n"
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      echo "install-arm.sh: missing ${missing[*]}" >&2
      echo "install-arm.sh: run this script as root (or with password-less sudo) to install the ARM toolchain" >&2
      exit 2
    fi
  else
    SUDO=""
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "install-arm.sh: installing the ARM cross toolchain (missing: ${missing[*]})" >&2
  # arm64 only: adding armhf broke `apt-get update` on these machines.
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  backports=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee "$backports" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -q || { echo "install-arm.sh: apt-get update failed" >&2; exit 1; }
  pkgs=(rustc-web cargo-web libstd-rust-web-dev:arm64 rust-web-src
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross lld-22
        gcc-arm-none-eabi binutils-arm-none-eabi)
  if ! $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
    echo "install-arm.sh: could not install ${pkgs[*]}; install them by hand (Debian bookworm)" >&2
    exit 1
  fi
  if ! $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports \
      qemu-user qemu-system-arm qemu-utils; then
    echo "install-arm.sh: could not install qemu-user qemu-system-arm from bookworm-backports" >&2
    exit 1
  fi
  for f in "${need_files[@]}"; do
    [ -e "$f" ] || { echo "install-arm.sh: $f still missing after apt-get install" >&2; exit 1; }
  done
fi

# Debian's rustc beside rustup's: a local link, no download.
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q '^deb-1.96'; then
  rustup toolchain link deb-1.96 /usr
fi
echo "install-arm.sh: ARM toolchain ready ($(/usr/bin/rustc -V), $(qemu-aarch64 --version | head -1))" >&2

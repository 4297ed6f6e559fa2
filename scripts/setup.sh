#!/usr/bin/env bash
# Installs what building and testing Stockade needs, skipping what is there.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again and again.
#
# - Debian packages: LLVM (dev files, to build bpf-linker against the same LLVM
#   major version as the nightly rustc), iproute2, iputils-ping and curl
#   (test hosts in network namespaces, and talking to their nodes), bpftool
#   (tests look at what is attached to a cgroup), iptables and nftables (the
#   dataplane benchmark's peers), rsyslog with its TLS driver (the SIEM the
#   alerting tests deliver to), graphviz (`stockade topology --svg` draws
#   with its `dot`), wireguard-go and wireguard-tools (the tunnel
#   benchmark's userspace WireGuard peer), chromium (the web console's test
#   drives it headless).
# - rustup: the nightly toolchain's rust-src (the eBPF crate builds `core`
#   itself for bpfel-unknown-none), rustfmt and clippy on stable.
# - bpf-linker, built against nightly's LLVM major.
set -euo pipefail

[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v rustup >/dev/null || fail "rustup is missing; install Rust stable and nightly with rustup first"
rustup toolchain list | grep -q '^nightly' || fail "the nightly toolchain is missing (rustup toolchain install nightly)"

# The eBPF object is compiled by nightly rustc and linked by bpf-linker; both
# must use one LLVM major version (bpf/build.rs checks it again).
llvm_major=$(rustc +nightly -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[ -n "$llvm_major" ] || fail "cannot read the LLVM version of rustc +nightly"

missing=()
for pkg in "llvm-${llvm_major}-dev" iproute2 iputils-ping curl bpftool iptables nftables rsyslog rsyslog-gnutls graphviz wireguard-go wireguard-tools chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

installed_components() { rustup component list --toolchain "$1" --installed 2>/dev/null; }
installed_components nightly | grep -q '^rust-src' || { say "adding rust-src to nightly"; rustup component add rust-src --toolchain nightly; }
for component in rustfmt clippy; do
  installed_components stable | grep -q "^${component}" || { say "adding ${component} to stable"; rustup component add "$component" --toolchain stable; }
done

# bpf-linker reports the LLVM it carries when asked through --llvm-args.
linker_llvm_major() {
  bpf-linker --llvm-args=--version --output /dev/null /dev/null 2>/dev/null \
    | sed -n 's/.*LLVM version \([0-9]*\).*/\1/p' | head -n1
}
if ! command -v bpf-linker >/dev/null || [ "$(linker_llvm_major)" != "$llvm_major" ]; then
  say "building bpf-linker against LLVM ${llvm_major} (a few minutes, once)"
  LLVM_PREFIX="/usr/lib/llvm-${llvm_major}" \
    cargo install bpf-linker --locked --force --no-default-features --features "llvm-${llvm_major}"
fi
say "toolchain ready: nightly LLVM ${llvm_major}, bpf-linker $(linker_llvm_major)"

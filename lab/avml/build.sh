#!/bin/bash
# build.sh: builds the avml binary the lab's avml scenario runs in its
# guest ($KINSPECT_AVML), from Debian's Rust packages only: no crates.io.
#
#   lab/avml/build.sh AVML_SRC ELF_SRC OUT
#
# AVML_SRC is a checkout of github.com/microsoft/avml at v0.14.0 (the last
# release whose dependencies bookworm packages: clap 4, thiserror 1,
# elf 0.7); ELF_SRC one of github.com/cole14/rust-elf at v0.7.4 (the one
# crate bookworm lacks). The build drops avml's upload features (HTTP PUT,
# Azure blobs: reqwest, tokio, azure_*), which capturing does not use, and
# lowers the version floors to what bookworm ships; the capture code is
# avml's own, unchanged.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 AVML_SRC ELF_SRC OUT" >&2; exit 2; }
avml=$(realpath "$1"); elfsrc=$(realpath "$2"); out=$3
grep -q '^version = "0.14.0"' "$avml/Cargo.toml" || { echo "$avml: not avml 0.14.0" >&2; exit 1; }
apt-get install -y -qq rustc-web cargo-web librust-clap-dev librust-snap-dev \
	librust-thiserror-dev librust-byteorder-dev librust-libc-dev >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$avml/src" "$work/src"
rm -f "$work/src/bin/avml-upload.rs"
cp -r "$elfsrc" "$work/elf"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "avml"
version = "0.14.0"
license = "MIT"
edition = "2021"

[features]
default = []
put = []
blobstore = []
status = []

[dependencies]
byteorder = "1.4"
clap = {version="4.0", default-features=false, features=["derive", "std", "usage", "error-context", "help"]}
elf = {path = "elf"}
snap = "1.1"
thiserror = "1.0"
libc = "0.2"

[[bin]]
name = "avml"
path = "src/bin/avml.rs"
TOML
mkdir -p "$work/.cargo"
cat > "$work/.cargo/config.toml" <<TOML
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
TOML
cargo=$(command -v cargo-web || command -v cargo)
(cd "$work" && "$cargo" build --release --bin avml)
install -m 755 "$work/target/release/avml" "$out"
"$out" --version

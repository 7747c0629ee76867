#!/usr/bin/env bash
# Builds the harness's own image, for running workers under an orchestrator (deploy/): the
# `e2ee-harness` binary (and `reference-server`, when built) on a minimal Debian, made the same
# way as the PostgreSQL image (docker/postgres/build-image.sh): debootstrap and `docker import`,
# no registry needed.
#
#   docker/harness/build-image.sh [--bin-dir DIR] [--base-only]
#
# Two images:
# - `e2ee-harness/debian:bookworm`: debootstrap --variant=minbase of bookworm from the mirror
#   apt already uses (or DEBIAN_MIRROR), the suite of e2ee-harness/postgres:15, plus
#   ca-certificates (the HTTP client needs the platform's TLS roots). Needs root
#   and debootstrap; cached by a label with the hash of its recipe and mirror. `--base-only`
#   stops here (CI builds it beside the PostgreSQL images).
# - `e2ee-harness/harness:latest` (or E2EE_HARNESS_IMAGE): that base plus the binaries of
#   DIR (default: the release build, ${CARGO_TARGET_DIR:-target}/release; build it first with
#   `cargo build --release --bins`), entry point `e2ee-harness`. Cached by a label with the
#   hash of the binaries, the base image and this script: a second call with the same
#   binaries does nothing. The binaries are linked against the host's glibc, so the host must
#   not be newer than bookworm (glibc 2.36); the script runs `e2ee-harness --version` in the
#   new image to prove it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
suite=bookworm
base_tag="e2ee-harness/debian:$suite"
tag="${E2EE_HARNESS_IMAGE:-e2ee-harness/harness:latest}"
bin_dir="${CARGO_TARGET_DIR:-$root/target}/release"
base_only=0

die() { echo "build-image: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; bin_dir="$2"; shift 2 ;;
    --base-only) base_only=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# The Debian archive apt is configured with here (deb822 or one-line format).
apt_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m="$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
          grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } \
        | grep -E '/debian/?$' | head -n1 )"
  [ -n "$m" ] || die "no Debian mirror in apt's sources; set DEBIAN_MIRROR"
  echo "${m%/}"
}

label_of() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# What the base is made of; changing it (not the rest of this script) rebuilds the base.
# ca-certificates: reqwest (through goose) verifies TLS with the platform's roots, and its
# client refuses to build ("builder error") on a system that has none, even for http URLs.
base_packages="ca-certificates"
base_recipe="debootstrap --variant=minbase --include=$base_packages $suite; apt lists, docs and man pages removed"

build_base() {
  local mirror inputs rootfs started
  mirror="$(apt_mirror)"
  inputs="$(echo "$base_recipe $mirror" | sha256sum | cut -c1-16)"
  if [ "$(label_of "$base_tag" e2ee-harness.inputs)" = "$inputs" ]; then
    echo "build-image: $base_tag is up to date (inputs $inputs); nothing to do"
    return
  fi
  [ "$(id -u)" = 0 ] || die "building $base_tag needs root (debootstrap and chroot)"
  command -v debootstrap >/dev/null || die "debootstrap is missing (Debian: apt-get install debootstrap)"
  started=$(date +%s)
  rootfs="$(mktemp -d /tmp/e2ee-harness-rootfs.XXXXXX)"
  chmod 0755 "$rootfs"
  trap 'rm -rf "$rootfs" "$rootfs.log"; trap - RETURN' RETURN
  echo "build-image: $base_tag: debootstrap $suite (minbase) from $mirror"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed"; }
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/usr/share/doc" "$rootfs/usr/share/man" \
    "$rootfs/var/cache/debconf/"*-old
  tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL e2ee-harness.inputs=$inputs e2ee-harness.suite=$suite" \
    - "$base_tag" >/dev/null
  echo "build-image: $base_tag built in $(( $(date +%s) - started )) s"
}

build_harness() {
  local bins=() b inputs base_id cid started
  [ -x "$bin_dir/e2ee-harness" ] \
    || die "$bin_dir/e2ee-harness is missing: build it first (cargo build --release --bins), or give --bin-dir"
  bins+=("$bin_dir/e2ee-harness")
  [ -x "$bin_dir/reference-server" ] && bins+=("$bin_dir/reference-server")
  base_id="$(docker image inspect --format '{{.Id}}' "$base_tag")"
  inputs="$( { cat "$0"; echo "$base_id"; sha256sum "${bins[@]}" | awk '{print $1}'; } | sha256sum | cut -c1-16)"
  if [ "$(label_of "$tag" e2ee-harness.inputs)" = "$inputs" ]; then
    echo "build-image: $tag is up to date (inputs $inputs); nothing to do"
    return
  fi
  started=$(date +%s)
  cid="$(docker create "$base_tag")"
  trap 'docker rm -f "$cid" >/dev/null 2>&1 || true; trap - RETURN' RETURN
  for b in "${bins[@]}"; do
    docker cp "$b" "$cid:/usr/local/bin/$(basename "$b")"
  done
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/e2ee-harness"]' \
    --change 'CMD ["--help"]' \
    --change 'WORKDIR /harness' \
    --change "LABEL e2ee-harness.inputs=$inputs e2ee-harness.suite=$suite e2ee-harness.binaries=$(basename -a "${bins[@]}" | paste -sd, -)" \
    "$cid" "$tag" >/dev/null
  # The binaries were linked on this host: prove they run on the image's glibc.
  docker run --rm "$tag" --version >/dev/null \
    || die "$tag: e2ee-harness does not run in the image (host glibc newer than $suite's?)"
  echo "build-image: $tag built in $(( $(date +%s) - started )) s from $bin_dir ($(basename -a "${bins[@]}" | paste -sd' ' -))"
}

docker version >/dev/null 2>&1 || die "no Docker engine answers (docker version failed)"
build_base
[ "$base_only" = 1 ] || build_harness

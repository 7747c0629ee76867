#!/usr/bin/env bash
# Builds a PostgreSQL image from Debian's packages and loads it into the local Docker engine,
# for engines that cannot pull (air-gapped CI, machines without a registry).
#
#   docker/postgres/build-image.sh [MAJOR ...]     (default: 15)
#
# MAJOR is a PostgreSQL major version that a Debian suite ships: 15 (bookworm) or 17 (trixie).
# Each becomes the image `e2ee-harness/postgres:MAJOR` (override the repository with
# E2EE_HARNESS_IMAGE_REPO). The image behaves like the official one for what the harness relies
# on (see entrypoint.sh). Use it with `--db docker --pg-image e2ee-harness/postgres:15`, or
# set E2EE_HARNESS_PG_IMAGE=e2ee-harness/postgres:15 so that `--db auto` finds it.
#
# Idempotent and cached: the image carries a label with the hash of its inputs (this script,
# the entry point, the suite, the major, the mirror); a second call with the same inputs finds
# the label and does nothing. Needs root, debootstrap and a Docker engine. The Debian mirror is
# the one apt already uses on this machine (or DEBIAN_MIRROR).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="${E2EE_HARNESS_IMAGE_REPO:-e2ee-harness/postgres}"

die() { echo "build-image: $*" >&2; exit 1; }

suite_for() {
  case "$1" in
    15) echo bookworm ;;
    17) echo trixie ;;
    *) die "no Debian suite known to ship PostgreSQL $1 (known: 15 bookworm, 17 trixie)" ;;
  esac
}

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

build_one() {
  local major="$1" suite mirror tag inputs have started rootfs
  suite="$(suite_for "$major")"
  mirror="$(apt_mirror)"
  tag="$repo:$major"
  inputs="$( { cat "$0" "$here/entrypoint.sh"; echo "$suite $major $mirror"; } | sha256sum | cut -c1-16)"
  have="$(docker image inspect --format '{{ index .Config.Labels "e2ee-harness.inputs" }}' "$tag" 2>/dev/null || true)"
  if [ "$have" = "$inputs" ]; then
    echo "build-image: $tag is up to date (inputs $inputs); nothing to do"
    return
  fi
  started=$(date +%s)
  command -v debootstrap >/dev/null || die "debootstrap is missing (Debian: apt-get install debootstrap)"
  rootfs="$(mktemp -d /tmp/e2ee-pg-rootfs.XXXXXX)"
  chmod 0755 "$rootfs"   # it becomes the image's "/": mktemp's 0700 would lock out `postgres`
  # Unmount and remove the tree however this function ends.
  trap 'umount -l "$rootfs/proc" 2>/dev/null || true; rm -rf "$rootfs"' RETURN
  echo "build-image: $tag: debootstrap $suite (minbase) from $mirror"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }
  rm -f "$rootfs.log"

  # Install without starting services in the chroot and without Debian's default cluster:
  # the entry point creates the cluster in $PGDATA on first start, as the official image does.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  mkdir -p "$rootfs/etc/postgresql-common"
  echo "create_main_cluster = false" > "$rootfs/etc/postgresql-common/createcluster.conf"
  mount -t proc proc "$rootfs/proc"
  echo "build-image: $tag: installing postgresql-$major"
  chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "postgresql-$major" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; die "installing postgresql-$major failed (log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  umount "$rootfs/proc"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/usr/sbin/policy-rc.d" \
    "$rootfs/usr/share/doc" "$rootfs/usr/share/man" "$rootfs/var/cache/debconf/"*-old
  install -m 0755 "$here/entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"

  echo "build-image: $tag: importing into the Docker engine"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8' \
    --change 'EXPOSE 5432' \
    --change "LABEL e2ee-harness.inputs=$inputs e2ee-harness.suite=$suite e2ee-harness.postgres-major=$major" \
    - "$tag" >/dev/null
  echo "build-image: $tag built in $(( $(date +%s) - started )) s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot)"
docker version >/dev/null 2>&1 || die "no Docker engine answers (docker version failed)"
for major in "${@:-15}"; do
  build_one "$major"
done

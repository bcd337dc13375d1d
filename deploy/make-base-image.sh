#!/usr/bin/env bash
# Build a minimal Debian bookworm base image with Python 3.11 + venv + pip, locally,
# with debootstrap, and import it into podman as localhost/attnviz-base:bookworm.
#
# Why: on machines where no registry image (python:3.11-slim) can be pulled, this gives
# the Dockerfile an equivalent BASE_IMAGE:
#     podman build --build-arg BASE_IMAGE=localhost/attnviz-base:bookworm ...
#
# The Debian mirror is read from this machine's own apt sources (deb822 *.sources files
# or one-line sources.list); nothing is hard-coded.  Needs root, debootstrap, podman.
#
# Usage: deploy/make-base-image.sh [IMAGE_TAG]      (env FORCE=1 rebuilds an existing tag)
set -euo pipefail

TAG="${1:-${BASE_TAG:-localhost/attnviz-base:bookworm}}"
SUITE="${SUITE:-bookworm}"
PODMAN="${PODMAN:-podman}"

if [[ "${FORCE:-0}" != 1 ]] && "$PODMAN" image exists "$TAG" 2>/dev/null; then
  echo "base image $TAG already exists (FORCE=1 to rebuild)"
  exit 0
fi

[[ $(id -u) == 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }
missing=()
for tool in debootstrap:debootstrap "$PODMAN":podman tar:tar; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || { echo "missing: ${missing[*]} (install them)" >&2; exit 1; }
  echo "installing Debian packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
    || { echo "apt-get install ${missing[*]} failed" >&2; exit 1; }
fi

# --- find the Debian mirror in the machine's apt sources -------------------------------
find_mirror() {
  local f
  # deb822 format: a stanza with "URIs:" and "Suites:" lines; pick the one serving $SUITE
  # (not -security / -updates).
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""; types=""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[[:space:]]*#/) continue
          if (line ~ /^URIs:/)   { sub(/^URIs:[[:space:]]*/, "", line); uris = line }
          if (line ~ /^Suites:/) { sub(/^Suites:[[:space:]]*/, "", line); suites = " " line " " }
          if (line ~ /^Types:/)  { types = line }
        }
        if (types ~ /deb([^-]|$)/ && suites ~ (" " suite " ")) { split(uris, u, " "); print u[1]; exit }
      }' "$f"
  done
  # one-line format: "deb [opts] URI SUITE components"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f"
  done
}
MIRROR="${MIRROR:-$(find_mirror | head -n1)}"
[[ -n "$MIRROR" ]] || { echo "no apt source for suite $SUITE found in /etc/apt" >&2; exit 1; }
echo "Debian mirror (from apt sources): $MIRROR"

WORK="$(mktemp -d /tmp/attnviz-base.XXXXXX)"
cleanup() {
  # an interrupted debootstrap may leave proc/sys mounted inside the root
  for m in proc sys dev/pts dev; do umount -l "$WORK/root/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ROOT="$WORK/root"
echo "debootstrap $SUITE into $ROOT (a few minutes)..."
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

# Slim it down, like the official -slim images: no apt lists, docs, man pages, caches.
chroot "$ROOT" /bin/sh -c 'apt-get clean' || true
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log "$ROOT"/tmp/*
# The official python images have `python` and `pip` on PATH; give the same names.
ln -sf python3 "$ROOT/usr/bin/python"
# Keep the image's apt sources consistent with the mirror it was built from.
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"

echo "importing into podman as $TAG"
tar -C "$ROOT" --numeric-owner -c . | "$PODMAN" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$TAG" >/dev/null
"$PODMAN" image ls "$TAG"

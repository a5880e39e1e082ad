#!/bin/sh
# make image-test: builds the Dockerfile with Debian's podman and tries the
# image, without any image registry (none is reachable here):
#   1. the bases debian:12 and debian:12-slim are made with mmdebstrap from
#      the Debian mirror (variant apt) and imported with `podman import`,
#      unless podman already has them;
#   2. `podman build --isolation chroot --network host` of the Dockerfile;
#   3. the image's root filesystem is exported (podman create + export) and
#      its entrypoint run under `chroot --userspec=10001:10001` with the
#      image's environment (this VM's cgroups and rlimits stop `podman run`),
#      on a generated tiny model and the MiniLM tokenizer, on a loopback port;
#   4. checks /health and one prediction (a miss, then the same text a hit).
# Operators with Docker: `docker build -t erserve .` and the README's
# `docker run` line do the same.
# Exit 0 pass, 1 fail, 77 skipped (podman or mmdebstrap missing or unable to
# run here).  Minutes; not part of make test.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD="${BUILD:-build}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
for b in podman mmdebstrap curl; do
  command -v "$b" >/dev/null 2>&1 || { echo "SKIP: image_test: $b is not installed (apt-get install podman mmdebstrap)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: image_test: needs root (chroot, mounts)"; exit 77; }
timeout 60 podman info >/dev/null 2>&1 || { echo "SKIP: image_test: podman cannot run here (podman info failed)"; exit 77; }
[ -x "$BUILD/bin/erserve-genmodel" ] || { echo "image_test: $BUILD/bin/erserve-genmodel is missing (make)"; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/erserve-image.XXXXXX")
R="$W/rootfs"
SRV=""
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  for m in dev proc; do mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"; done
  [ -n "${CTR:-}" ] && podman rm -f "$CTR" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "image_test: FAIL: $*"; exit 1; }

for tag in 12 12-slim; do
  podman image exists "debian:$tag" && continue
  echo "image_test: making debian:$tag with mmdebstrap ($MIRROR)"
  mmdebstrap --quiet --variant=apt --format=tar bookworm "$W/base-$tag.tar" "$MIRROR" ||
    fail "mmdebstrap of debian:$tag"
  podman import "$W/base-$tag.tar" "docker.io/library/debian:$tag" >/dev/null || fail "podman import debian:$tag"
  rm -f "$W/base-$tag.tar"
done

t0=$(date +%s)
podman build --isolation chroot --network host -t localhost/erserve:image-test . >"$W/build.log" 2>&1 ||
  { tail -n 30 "$W/build.log"; fail "podman build"; }
echo "image_test: podman build: $(($(date +%s) - t0)) s"

CTR=$(podman create localhost/erserve:image-test) || fail "podman create"
mkdir -p "$R"
podman export "$CTR" | tar -x -C "$R" || fail "podman export"
ENTRY=$(podman image inspect --format '{{range .Config.Entrypoint}}{{.}} {{end}}' localhost/erserve:image-test)
USER=$(podman image inspect --format '{{.Config.User}}' localhost/erserve:image-test)
[ "$USER" = erserve ] || fail "the image runs as '$USER', not erserve"
grep -q '^erserve:x:10001:' "$R/etc/passwd" || fail "no user erserve (uid 10001) in the image"

# the model and tokenizer, readable by uid 10001; the store volume is its own
mkdir -p "$R/models/cls" "$R/store"
"$BUILD/bin/erserve-genmodel" --out "$R/models/cls" --preset tiny --head seqcls --seed 3 >/dev/null
cp tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json "$R/models/cls/tokenizer.json"
chown -R 10001:10001 "$R/store"
mount --bind /dev "$R/dev" && mount -t proc proc "$R/proc" || fail "mounting /dev and /proc in the root"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# the image's environment (ERSERVE_STORE, OPENBLAS_NUM_THREADS, ...), then
# the port for this test; the entrypoint as the image declares it
env -i $(podman image inspect --format '{{range .Config.Env}}{{.}} {{end}}' localhost/erserve:image-test) \
  ERSERVE_HOST=127.0.0.1 ERSERVE_PORT="$PORT" \
  chroot --userspec=10001:10001 "$R" $ENTRY --task cls=/models/cls --workers 1 >"$W/erserve.log" 2>&1 &
SRV=$!
i=0
until curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 100 ] && { tail -n 20 "$W/erserve.log"; fail "no /health within 10 s"; }
  kill -0 "$SRV" 2>/dev/null || { tail -n 20 "$W/erserve.log"; fail "erserve exited"; }
  sleep 0.1
done
echo "image_test: /health answered"
for want in miss hit; do
  out=$(curl -fsS -H 'Content-Type: application/json' -d '{"inputs": "the image serves a prediction"}' \
    "http://127.0.0.1:$PORT/v1/tasks/cls/predict") || fail "predict"
  echo "$out" | grep -q "\"cache\":\"$want\"" || fail "predict: expected a $want: $out"
  echo "image_test: predict ($want): $out"
done
[ -f "$R/store/data.mdb" ] || fail "no store written under /store"
echo "image_test: passed"

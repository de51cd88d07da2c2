#!/bin/bash
# Bench: unpack a realistic multi-layer image (Debian minbase made with
# debootstrap, cached in $BENCH_DIR, plus two layers on top) with chrun-unpack,
# umoci unpack and `tar -xzf` of each layer in order, and chrun-unpack with
# one file creation thread against the default (CHRUN_APPLY_THREADS). Prints
# the times, the ratios, user and sys time of both chrun runs and
# chrun-unpack's peak RSS. Run from the repo root with bin/ on PATH.
set -euo pipefail
: "${BENCH_DIR:?BENCH_DIR must be set}"
repo=$(pwd)
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
. tests/lib-unpack.sh

work=$BENCH_DIR/unpack
mkdir -p "$work"
base=$work/minbase.tar
if [ ! -s "$base" ]; then
    rm -rf "$work/deb"
    debootstrap --variant=minbase bookworm "$work/deb" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1
    tar --numeric-owner --xattrs -C "$work/deb" -cf "$base.tmp" . && mv "$base.tmp" "$base"
    rm -rf "$work/deb"
fi
if [ ! -s "$work/top2.tar" ]; then
    # layer 2: a copy of /usr/share (docs, locales, ...) and some deletions
    # (whiteouts); layer 3: an opaque /var/cache and a replaced /etc file
    tar -C / --numeric-owner -cf "$work/l2.tmp" usr/share/doc usr/share/zoneinfo usr/lib/python3 2>/dev/null || true
    mkdir -p "$work/wh" && : >"$work/wh/.wh.motd" && mkdir -p "$work/wh/etc" && mv "$work/wh/.wh.motd" "$work/wh/etc/"
    tar -C "$work/wh" -rf "$work/l2.tmp" etc/.wh.motd && mv "$work/l2.tmp" "$work/top1.tar"
    mkdir -p "$work/l3/var/cache" "$work/l3/etc" && : >"$work/l3/var/cache/.wh..wh..opq" &&
        echo bench >"$work/l3/etc/hostname" && head -c 20000000 /dev/urandom >"$work/l3/blob.bin"
    tar -C "$work/l3" --numeric-owner -cf "$work/top2.tar" . && rm -rf "$work/l3" "$work/wh"
fi
export CHRUN_ROOT=$work/store
if [ ! -s "$work/image.digest" ]; then
    rm -rf "$CHRUN_ROOT"
    unpack_mkimage bench:1 "$base:gzip" "$work/top1.tar:gzip" "$work/top2.tar:gzip" >"$work/image.digest"
fi
size_mb=$(( ($(stat -c %s "$base") + $(stat -c %s "$work/top1.tar") + $(stat -c %s "$work/top2.tar")) / 1048576 ))
manifest=$CHRUN_ROOT/blobs/sha256/$(cut -c8- "$work/image.digest")
mapfile -t layers < <(jq -r '.layers[].digest' "$manifest" | sed "s|sha256:|$CHRUN_ROOT/blobs/sha256/|")

# t CMD...: wall seconds of CMD; a failure is said and never counts as fast
t() {
    local s e
    s=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then echo "bench: '$*' failed" >&2; echo 999999; return; fi
    e=$(date +%s.%N)
    echo "$e - $s" | bc
}
untar_all() { mkdir -p "$work/out/rootfs"; for l in "${layers[@]}"; do tar --numeric-owner -xzf "$l" -C "$work/out/rootfs"; done; }

# Rounds interleave the contenders, so that the disk's drift (this
# machine's file creation time varies by 2x from minute to minute) falls on
# all of them alike; each keeps its best round.
chrun_s=999999 one_s=999999 umoci_s=999999 tar_s=999999
keep_best() { echo "if ($2 < $1) $2 else $1" | bc; }
for round in 1 2 3; do
    rm -rf "$work/out"; sync; chrun_s=$(keep_best "$chrun_s" "$(t chrun-unpack bench:1 "$work/out")")
    rm -rf "$work/out"; sync
    one_s=$(keep_best "$one_s" "$(t env CHRUN_APPLY_THREADS=1 chrun-unpack bench:1 "$work/out")")
    rm -rf "$work/out"; sync
    umoci_s=$(keep_best "$umoci_s" "$(t umoci unpack --image "$CHRUN_ROOT:docker.io/library/bench:1" "$work/out")")
    rm -rf "$work/out"; sync; tar_s=$(keep_best "$tar_s" "$(t untar_all)")
done
rm -rf "$work/out"
/usr/bin/time -f %M -o "$work/rss" chrun-unpack bench:1 "$work/out" >/dev/null
rm -rf "$work/out"
sync
/usr/bin/time -f '%U %S' -o "$work/cpu" chrun-unpack bench:1 "$work/out" >/dev/null
rm -rf "$work/out"
sync
/usr/bin/time -f '%U %S' -o "$work/cpu1" env CHRUN_APPLY_THREADS=1 chrun-unpack bench:1 "$work/out" >/dev/null
rm -rf "$work/out"
printf 'unpack (%d MB, %d layers): chrun %.2f s, peer umoci %.2f s, ratio %.2f\n' \
    "$size_mb" "${#layers[@]}" "$chrun_s" "$umoci_s" "$(echo "$chrun_s / $umoci_s" | bc -l)"
printf 'unpack (%d MB, %d layers): chrun %.2f s, peer tar -xzf %.2f s, ratio %.2f\n' \
    "$size_mb" "${#layers[@]}" "$chrun_s" "$tar_s" "$(echo "$chrun_s / $tar_s" | bc -l)"
printf 'unpack (%d MB, %d layers): chrun %.2f s, chrun with one file thread %.2f s, ratio %.2f\n' \
    "$size_mb" "${#layers[@]}" "$chrun_s" "$one_s" "$(echo "$chrun_s / $one_s" | bc -l)"
read -r u s <"$work/cpu" && read -r u1 s1 <"$work/cpu1"
echo "unpack: chrun user $u s sys $s s; with one file thread user $u1 s sys $s1 s"
echo "unpack: chrun peak RSS $(cat "$work/rss") KiB"

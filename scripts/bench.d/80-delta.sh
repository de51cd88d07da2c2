#!/bin/bash
# Delta archive size: an image of a ~100 MB base (random data, no gzip gain)
# plus one changed layer of 1% of its bytes, saved with --have the
# receiver's inventory (it holds the previous version), against the full
# archive of the same image. Target: delta <= 2% of full.
set -eu
. "$REPO_ROOT/tests/lib-fixtures.sh"
size_mb=${CHRUN_BENCH_DELTA_MB:-100}
archive=$BENCH_DIR/big-${size_mb}m.docker.tar
[ -f "$archive" ] || fixture_make_big "$BENCH_DIR" "$size_mb" >/dev/null
work=$BENCH_DIR/delta
rm -rf "$work" && mkdir -p "$work/ctx"
export CHRUN_ROOT=$work/sender

base=$(chrun-load -q "$archive")
chrun-tag "$base" bench/base:1 >/dev/null
printf 'FROM bench/base:1\nCOPY payload /payload\n' >"$work/ctx/Dockerfile"
# one layer of 1% of the base's bytes, new content in each version
layer_bytes=$((size_mb * 1024 * 1024 / 100))
for v in 1 2; do
    head -c "$layer_bytes" /dev/urandom >"$work/ctx/payload"
    chrun-build -q -t "bench/app:$v" "$work/ctx" >/dev/null
done

chrun-save -o "$work/app1.tar" bench/app:1
CHRUN_ROOT=$work/receiver chrun-load -q "$work/app1.tar" >/dev/null
CHRUN_ROOT=$work/receiver chrun-images --inventory >"$work/inventory.json"

chrun-save -o "$work/full.tar" bench/app:2
chrun-save -q --have "$work/inventory.json" -o "$work/delta.tar" bench/app:2
full=$(stat -c %s "$work/full.tar")
delta=$(stat -c %s "$work/delta.tar")
# the delta loads on the receiver: the numbers are of a working hand-over
CHRUN_ROOT=$work/receiver chrun-load -q "$work/delta.tar" >/dev/null
pct=$(awk "BEGIN{printf \"%.2f\", 100 * $delta / $full}")
echo "delta-archive: full $((full / 1024)) KiB, delta $((delta / 1024)) KiB, $pct % of full (target <= 2 %)"
rm -rf "$work"

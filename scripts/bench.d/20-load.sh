#!/bin/bash
# chrun-load of a ~120 MB docker-archive (4 layers of random data over a
# busybox layer) against `skopeo copy docker-archive:X oci:Y`, same input,
# fresh destination each. Targets: chrun <= 0.5x skopeo, peak RSS < 32 MB.
set -eu
. "$REPO_ROOT/tests/lib-fixtures.sh"
size_mb=${CHRUN_BENCH_LOAD_MB:-120}
archive=$BENCH_DIR/big-${size_mb}m.docker.tar
[ -f "$archive" ] || fixture_make_big "$BENCH_DIR" "$size_mb" >/dev/null
store=$BENCH_DIR/load-store
peer=$BENCH_DIR/load-skopeo

now() { date +%s.%N; }

# Warm the page cache so both read the archive from memory.
cat "$archive" >/dev/null

# Best of three runs each: the disk's writeback makes single runs noisy.
chrun_s= peer_s=
for run in 1 2 3; do
    rm -rf "$store"
    sync
    t0=$(now)
    CHRUN_ROOT=$store /usr/bin/time -f %M -o "$BENCH_DIR/load.rss.$run" \
        chrun-load -q "$archive" >"$BENCH_DIR/load.out"
    t1=$(now)
    chrun_s=$(python3 -c "print('%.3f' % min(float('${chrun_s:-1e9}'), $t1 - $t0))")

    rm -rf "$peer"
    sync
    t0=$(now)
    skopeo --insecure-policy copy -q "docker-archive:$archive" "oci:$peer:big" >/dev/null
    t1=$(now)
    peer_s=$(python3 -c "print('%.3f' % min(float('${peer_s:-1e9}'), $t1 - $t0))")
done
sort -n "$BENCH_DIR"/load.rss.? | tail -n1 >"$BENCH_DIR/load.rss"
rm -f "$BENCH_DIR"/load.rss.?

ratio=$(python3 -c "print('%.2f' % ($chrun_s / $peer_s))")
printf 'load: chrun %s s, peer %s s, ratio %s (target <= 0.5; %s MB docker-archive, skopeo copy to oci:)\n' \
    "$chrun_s" "$peer_s" "$ratio" "$(($(stat -c %s "$archive") / 1048576))"
printf 'load: chrun-load peak RSS %s KB (target < 32768 KB)\n' "$(cat "$BENCH_DIR/load.rss")"
rm -rf "$store" "$peer"

#!/bin/bash
# chrun-load --verify-key against plain chrun-load of the same signed
# archive: the ~120 MB image of 20-load.sh, signed with chrun-sign (ECDSA
# P-256) and saved with its signature. Fresh store each run, best of five.
# Target: verify / plain <= 1.05.
set -eu
. "$REPO_ROOT/tests/lib-fixtures.sh"
size_mb=${CHRUN_BENCH_LOAD_MB:-120}
archive=$BENCH_DIR/big-${size_mb}m.docker.tar
[ -f "$archive" ] || fixture_make_big "$BENCH_DIR" "$size_mb" >/dev/null
work=$BENCH_DIR/load-verify
signed=$work/signed.tar
rm -rf "$work" && mkdir -p "$work"

openssl ecparam -name prime256v1 -genkey -noout -out "$work/ec.key"
openssl ec -in "$work/ec.key" -pubout -out "$work/ec.pub" 2>/dev/null
export CHRUN_ROOT=$work/src
img=$(chrun-load -q "$archive" | head -n1)
chrun-tag "$img" bench/big:1 >/dev/null
chrun-sign -q --key "$work/ec.key" bench/big:1 >/dev/null
chrun-save -o "$signed" bench/big:1
cat "$signed" >/dev/null

now() { date +%s.%N; }
best() { python3 -c "print('%.3f' % min(float('${1:-1e9}'), $2))"; }

plain() {
    rm -rf "$work/plain" && sync
    t0=$(now)
    CHRUN_ROOT=$work/plain chrun-load -q "$signed" >/dev/null
    plain_s=$(best "$plain_s" "$(now) - $t0")
}
verify() {
    rm -rf "$work/verify" && sync
    t0=$(now)
    CHRUN_ROOT=$work/verify chrun-load -q --verify-key "$work/ec.pub" "$signed" >/dev/null
    verify_s=$(best "$verify_s" "$(now) - $t0")
}
# Best of five each, alternating which goes first: on a busy machine a
# sub-second run is noisy, and the first of a pair pays for writeback.
plain_s= verify_s=
for run in 1 2 3 4 5; do
    if [ $((run % 2)) = 1 ]; then plain && verify; else verify && plain; fi
done
ratio=$(python3 -c "print('%.2f' % ($verify_s / $plain_s))")
printf 'load --verify-key: %s s, plain load %s s, ratio %s (target <= 1.05; %s MB signed archive)\n' \
    "$verify_s" "$plain_s" "$ratio" "$(($(stat -c %s "$signed") / 1048576))"
rm -rf "$work"

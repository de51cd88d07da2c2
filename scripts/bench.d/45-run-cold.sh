#!/bin/bash
# Cold `chrun run --rm IMAGE true` over a 20 MB/s link (scripts/link-proxy.py
# in front of a local registry) against its parts: (a) chrun-pull alone over
# the link, (b) chrun-unpack alone of the stored image, (c) chrun-pull then
# chrun-unpack, (d) the cold run, whose tree is made while the layers
# download. The image is the first layer of 30-unpack's (Debian minbase,
# cached in $BENCH_DIR/unpack; made by running 30-unpack.sh when missing),
# alone, so that the whole script stays within two minutes.
# Run by scripts/bench (bin/ on PATH, $BENCH_DIR a scratch dir).
set -euo pipefail
: "${REPO_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BENCH_DIR:=$REPO_ROOT/build/bench}"
export PATH=$REPO_ROOT/bin:$PATH
RATE=${RUN_COLD_RATE:-20000000}
ROUNDS=${RUN_COLD_ROUNDS:-2}
work=$BENCH_DIR/run-cold
mkdir -p "$work"
if [ ! -s "$BENCH_DIR/unpack/image.digest" ]; then
    (cd "$REPO_ROOT" && bash scripts/bench.d/30-unpack.sh >/dev/null)
fi

regdir=$work/registry
"$REPO_ROOT/scripts/registry" stop "$regdir" 2>/dev/null || true
reg=$("$REPO_ROOT/scripts/registry" start plain "$regdir" $$)
proxy_pid=
cleanup() {
    [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null || true
    "$REPO_ROOT/scripts/registry" stop "$regdir"
}
trap cleanup EXIT
export no_proxy=${no_proxy:+$no_proxy,}127.0.0.1 NO_PROXY=${no_proxy:+$no_proxy,}127.0.0.1
if [ ! -s "$work/image.digest" ]; then
    src=$BENCH_DIR/unpack/store
    first=$(jq -r '.layers[0].digest' "$src/blobs/sha256/$(cut -c8- "$BENCH_DIR/unpack/image.digest")")
    rm -rf "$work/img"
    (. "$REPO_ROOT/tests/lib-unpack.sh" && CHRUN_ROOT=$work/img unpack_mkimage runcold:1 \
        "blob=$src/blobs/sha256/${first#sha256:}:gzip:$BENCH_DIR/unpack/minbase.tar") \
        >"$work/image.digest"
fi
skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$work/img:docker.io/library/runcold:1" "docker://$reg/bench:1" >/dev/null

rm -f "$work/addr"
python3 "$REPO_ROOT/scripts/link-proxy.py" --upstream "$reg" --rate "$RATE" \
    --addr-file "$work/addr" </dev/null >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 200); do [ -s "$work/addr" ] && break; sleep 0.05; done
ref=$(cat "$work/addr")/bench:1
size_mb=$(( $(jq '[.layers[].size] | add' "$work/img/blobs/sha256/$(cut -c8- "$work/image.digest")") / 1000000 ))

export CHRUN_ROOT=$work/store
fresh() { rm -rf "$CHRUN_ROOT" "$work/out"; sync; }
# best CMD...: fastest wall time of ROUNDS runs of CMD, each after PREP.
best() {
    local b= t i
    for i in $(seq "$ROUNDS"); do
        $PREP
        /usr/bin/time -f %e -o "$work/time.out" "$@" >/dev/null 2>&1
        t=$(cat "$work/time.out")
        if [ -z "$b" ] || awk "BEGIN{exit !($t < $b)}"; then b=$t; fi
    done
    echo "$b"
}
stored() { rm -rf "$work/out"; [ -d "$CHRUN_ROOT/blobs" ] || chrun-pull -q "$ref" >/dev/null; sync; }

PREP=fresh
pull_s=$(best chrun-pull -q "$ref")
PREP=stored
unpack_s=$(best chrun-unpack "$ref" "$work/out")
PREP=fresh
seq_s=$(best sh -c 'chrun-pull -q "$1" && chrun-unpack "$1" "$2"' - "$ref" "$work/out")
run_s=$(best chrun run --rm -q "$ref" true)
fresh

max=$(awk "BEGIN{print ($pull_s > $unpack_s) ? $pull_s : $unpack_s}")
printf 'run-cold (%d MB at %d MB/s): pull %s s, unpack %s s, pull+unpack %s s, cold run --rm %s s\n' \
    "$size_mb" "$((RATE / 1000000))" "$pull_s" "$unpack_s" "$seq_s" "$run_s"
printf 'run-cold: ratio run/max(pull,unpack) %.2f (target <= 1.15), run/(pull+unpack) %.2f (target <= 0.65)\n' \
    "$(awk "BEGIN{print $run_s / $max}")" "$(awk "BEGIN{print $run_s / $seq_s}")"

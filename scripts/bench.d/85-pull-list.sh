#!/bin/bash
# chrun-pull -i LIST of 5 images sharing a ~60 MB base, from a local
# registry into an empty store, against `skopeo sync --src yaml --dest dir`
# of the same 5 images. Best of 3 each. Target: chrun <= 0.3x skopeo.
set -euo pipefail
. "$REPO_ROOT/tests/lib-fixtures.sh"
size_mb=${CHRUN_BENCH_LIST_MB:-60}
rounds=${CHRUN_BENCH_LIST_ROUNDS:-3}
archive=$BENCH_DIR/big-${size_mb}m.docker.tar
[ -f "$archive" ] || fixture_make_big "$BENCH_DIR" "$size_mb" >/dev/null
work=$BENCH_DIR/pull-list
rm -rf "$work" && mkdir -p "$work/ctx"
export no_proxy=${no_proxy:+$no_proxy,}127.0.0.1 NO_PROXY=${no_proxy:+$no_proxy,}127.0.0.1

regdir=$work/registry
reg=$("$REPO_ROOT/scripts/registry" start plain "$regdir" $$)
trap '"$REPO_ROOT/scripts/registry" stop "$regdir"' EXIT

# five images: the base plus one small layer of their own, pushed by chrun
export CHRUN_ROOT=$work/sender
base=$(chrun-load -q "$archive")
chrun-tag "$base" bench/base:1 >/dev/null
printf 'FROM bench/base:1\nCOPY payload /payload\n' >"$work/ctx/Dockerfile"
printf '%s:\n  tls-verify: false\n  images:\n' "$reg" >"$work/sync.yaml"
: >"$work/list"
for i in 1 2 3 4 5; do
    head -c 262144 /dev/urandom >"$work/ctx/payload"
    chrun-build -q -t "bench/app$i:1" "$work/ctx" >/dev/null
    chrun-push -q "bench/app$i:1" "$reg/app$i:1" >/dev/null
    echo "$reg/app$i:1" >>"$work/list"
    printf '    app%s: ["1"]\n' "$i" >>"$work/sync.yaml"
done

now() { date +%s.%N; }
chrun_s= peer_s=
for _ in $(seq "$rounds"); do
    rm -rf "$work/store" && sync
    t0=$(now)
    CHRUN_ROOT=$work/store chrun-pull -q -i "$work/list" >/dev/null
    t1=$(now)
    chrun_s=$(awk "BEGIN{t = $t1 - $t0; b = ${chrun_s:-1e9}; printf \"%.3f\", t < b ? t : b}")
    rm -rf "$work/skopeo" && sync
    t0=$(now)
    skopeo --insecure-policy sync --src yaml --dest dir "$work/sync.yaml" "$work/skopeo" >/dev/null 2>&1
    t1=$(now)
    peer_s=$(awk "BEGIN{t = $t1 - $t0; b = ${peer_s:-1e9}; printf \"%.3f\", t < b ? t : b}")
done
echo "pull-list-5: chrun $chrun_s s, peer (skopeo sync) $peer_s s, ratio $(awk "BEGIN{printf \"%.2f\", $chrun_s / $peer_s}") (target <= 0.3)"
rm -rf "$work/store" "$work/skopeo" "$work/sender"

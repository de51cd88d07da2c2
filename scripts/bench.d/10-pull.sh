#!/bin/bash
# chrun-pull vs skopeo copy: cold pull of a ~120 MB, 5-layer image from a
# local registry into an empty store, warm re-pull by tag, peak RSS.
# Run by scripts/bench (bin/ on PATH, $BENCH_DIR a scratch dir).
set -euo pipefail
: "${REPO_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BENCH_DIR:=$REPO_ROOT/build/bench}"
export PATH=$REPO_ROOT/bin:$PATH
command -v /usr/bin/time >/dev/null || "$REPO_ROOT/scripts/install-deps" >/dev/null
SIZE_MB=${PULL_BENCH_MB:-120}
ROUNDS=${PULL_BENCH_ROUNDS:-5}
work=$BENCH_DIR/pull
mkdir -p "$work"
TRASH_DIRECTORY=$work
. "$REPO_ROOT/tests/lib-fixtures.sh"

regdir=$work/registry
"$REPO_ROOT/scripts/registry" stop "$regdir" 2>/dev/null || true
reg=$("$REPO_ROOT/scripts/registry" start plain "$regdir" $$)
trap '"$REPO_ROOT/scripts/registry" stop "$regdir"' EXIT
export no_proxy=${no_proxy:+$no_proxy,}127.0.0.1 NO_PROXY=${no_proxy:+$no_proxy,}127.0.0.1

big=$work/big-${SIZE_MB}m.docker.tar
[ -s "$big" ] || fixture_make_big "$work" "$SIZE_MB" >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "docker-archive:$big" \
    "docker://$reg/big:1" >/dev/null
ref=$reg/big:1

# best_of N CMD...: run the setup-free CMD N times after `reset`, print the
# fastest wall time in seconds and the largest peak RSS in KB.
best_of() {
    local n=$1 best= rss=0 t m i
    shift
    for i in $(seq "$n"); do
        reset_targets
        /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null
        read -r t m <"$work/time.out"
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
        [ "$m" -le "$rss" ] || rss=$m
    done
    echo "$best $rss"
}
reset_targets() { rm -rf "$work/store" "$work/skopeo-oci"; sync; }

export CHRUN_ROOT=$work/store
read -r chrun_s chrun_rss < <(best_of "$ROUNDS" chrun-pull -q "$ref")
read -r skopeo_s skopeo_rss < <(best_of "$ROUNDS" skopeo --insecure-policy copy -q \
    --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-oci:big")
ratio=$(awk "BEGIN{printf \"%.2f\", $chrun_s / $skopeo_s}")
echo "pull-cold-${SIZE_MB}MB: chrun $chrun_s s, peer $skopeo_s s, ratio $ratio (target <= 0.6)"
echo "pull-cold-rss: chrun $((chrun_rss / 1024)) MB, peer $((skopeo_rss / 1024)) MB (target < 32 MB)"

# Warm: the store has the image; a re-pull by tag is one manifest request.
chrun-pull -q "$ref" >/dev/null
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-oci:big"
if command -v hyperfine >/dev/null; then
    hyperfine -N -w 3 -r 30 --export-json "$work/warm.json" "chrun-pull -q $ref" >/dev/null 2>&1
    warm=$(jq -r '.results[0].mean * 1000 | round / 1000' "$work/warm.json")
else
    start=$(date +%s.%N)
    for _ in $(seq 30); do chrun-pull -q "$ref" >/dev/null; done
    warm=$(awk "BEGIN{printf \"%.4f\", ($(date +%s.%N) - $start) / 30}")
fi
start=$(date +%s.%N)
for _ in $(seq 5); do
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" \
        "oci:$work/skopeo-oci:big" >/dev/null
done
peer_warm=$(awk "BEGIN{printf \"%.4f\", ($(date +%s.%N) - $start) / 5}")
/usr/bin/time -f "%M" -o "$work/time.out" chrun-pull -q "$ref" >/dev/null
echo "pull-warm: chrun $warm s, peer $peer_warm s, ratio $(awk "BEGIN{printf \"%.2f\", $warm / $peer_warm}") (target < 0.050 s), chrun RSS $(( $(cat "$work/time.out") / 1024 )) MB"

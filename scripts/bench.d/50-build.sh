#!/bin/bash
# chrun-build vs buildah bud --layers (vfs, chroot isolation) on the same
# Dockerfiles and the same base image (the largest fixture the rig makes
# offline: busybox plus ~BUILD_BENCH_MB of data layers, from a local
# registry). Measures, best of BUILD_BENCH_ROUNDS:
#   build-cached   a fully cached rebuild of a 3-step Dockerfile
#   build-fresh    the same Dockerfile with its COPY input changed (no step
#                  cached; the base is in both stores already)
#   build-copy-20k COPY of a 20,000-file context (cache busted each round)
#   build-run-10k  a RUN that touches 10,000 files of an earlier layer
# Prints each as chrun/buildah ratio, and chrun's peak RSS over all of them.
# Run by scripts/bench (bin/ on PATH, $BENCH_DIR a scratch dir); needs root.
set -euo pipefail
: "${REPO_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BENCH_DIR:=$REPO_ROOT/build/bench}"
export PATH=$REPO_ROOT/bin:$PATH
command -v /usr/bin/time >/dev/null || "$REPO_ROOT/scripts/install-deps" >/dev/null
SIZE_MB=${BUILD_BENCH_MB:-120}
ROUNDS=${BUILD_BENCH_ROUNDS:-3}
work=$BENCH_DIR/build
rm -rf "$work/buildah" "$work/buildah-run" "$work/store" "$work/ctx-"*
mkdir -p "$work"
TRASH_DIRECTORY=$work
. "$REPO_ROOT/tests/lib-fixtures.sh"
. "$REPO_ROOT/tests/lib-buildah.sh"

regdir=$work/registry
"$REPO_ROOT/scripts/registry" stop "$regdir" 2>/dev/null || true
reg=$("$REPO_ROOT/scripts/registry" start plain "$regdir" $$)
cleanup() {
    "$REPO_ROOT/scripts/registry" stop "$regdir"
    rm -rf "$work/buildah" "$work/buildah-run" "$work/store" "$work/ctx-"*
}
trap cleanup EXIT
export no_proxy=${no_proxy:+$no_proxy,}127.0.0.1 NO_PROXY=${no_proxy:+$no_proxy,}127.0.0.1
export CHRUN_ROOT=$work/store SOURCE_DATE_EPOCH=1700000000

# fixture_make_big's config has no history, which buildah refuses to build
# on ("history lists N non-empty layers"): give each layer an entry.
big=$work/big-${SIZE_MB}m-history.docker.tar
if [ ! -s "$big" ]; then
    raw=$(fixture_make_big "$work" "$SIZE_MB")
    rm -rf "$work/big.d" && mkdir "$work/big.d" && tar -C "$work/big.d" -xf "$raw"
    cfg=$(jq -r '.[0].Config' "$work/big.d/manifest.json")
    jq -c '.history = [.rootfs.diff_ids[] | {created: "2023-11-14T22:13:20Z", created_by: "bench layer"}]' \
        "$work/big.d/$cfg" >"$work/big.d/config.new"
    new=$(sha256sum <"$work/big.d/config.new" | cut -d" " -f1).json
    mv "$work/big.d/config.new" "$work/big.d/$new" && rm "$work/big.d/$cfg"
    jq --arg c "$new" '.[0].Config = $c' "$work/big.d/manifest.json" >"$work/big.d/m.new" &&
        mv "$work/big.d/m.new" "$work/big.d/manifest.json"
    tar -C "$work/big.d" -cf "$big.tmp" . && mv "$big.tmp" "$big" && rm -rf "$work/big.d" "$raw"
fi
skopeo --insecure-policy copy -q --dest-tls-verify=false "docker-archive:$big" \
    "docker://$reg/big:1" >/dev/null
base=$reg/big:1
chrun-pull -q "$base" >/dev/null
buildah_setup
$BUILDAH pull -q --tls-verify=false --signature-policy "$work/buildah-conf/policy.json" \
    "$base" >/dev/null

# Contexts
mkctx() { # NAME: Dockerfile on stdin
    mkdir -p "$work/ctx-$1" && cat >"$work/ctx-$1/Dockerfile"
}
mkctx three <<'EOF'
ARG BASE
FROM ${BASE}
COPY app.txt /app/
RUN echo built >/app/built && ls /app >/app/list
ENV MODE=bench
EOF
mkctx copy <<'EOF'
ARG BASE
FROM ${BASE}
COPY files /files/
EOF
mkctx run <<'EOF'
ARG BASE
FROM ${BASE}
COPY files /t/
ARG NONCE
RUN echo "$NONCE" >/nonce && find /t -type f -exec touch {} +
EOF
python3 - "$work/ctx-copy/files" 20000 "$work/ctx-run/files" 10000 <<'EOF'
import os, sys
for d, n in ((sys.argv[1], int(sys.argv[2])), (sys.argv[3], int(sys.argv[4]))):
    for i in range(n):
        sub = os.path.join(d, "d%03d" % (i // 100))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%05d" % i), "w") as f:
            f.write("file %d\n" % i)
EOF

: >"$work/rss.log"
# timed KIND CMD...: wall seconds of one run on stdout; chrun's peak RSS goes
# to rss.log (this runs in command substitutions: no variables survive).
timed() {
    local kind=$1 t m
    shift
    /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/cmd.err" ||
        { cat "$work/cmd.err" >&2; return 1; }
    read -r t m <"$work/time.out"
    if [ "$kind" = chrun ]; then echo "$m" >>"$work/rss.log"; fi
    echo "$t"
}
chrun_build() { # CTX [ARGS...]
    local ctx=$1
    shift
    timed chrun chrun-build -q --build-arg "BASE=$base" "$@" -t bench-x:1 "$work/ctx-$ctx"
}
buildah_build() { # CTX [ARGS...]
    local ctx=$1
    shift
    timed buildah $BUILDAH bud $BUILDAH_BUD_OPTS -q --build-arg "BASE=$base" "$@" -t bench-x \
        -f "$work/ctx-$ctx/Dockerfile" "$work/ctx-$ctx"
}
# best VAR CMD...: VAR becomes the smaller of VAR and CMD's time; fails if CMD does.
best() {
    local var=$1 t
    shift
    t=$("$@") || exit 1
    printf -v "$var" '%s' "$(awk -v a="${!var}" -v b="$t" 'BEGIN{print (a == "" || b < a) ? b : a}')"
}
report() { # NAME CHRUN_S PEER_S TARGET
    printf '%s: chrun %s s, peer buildah %s s, ratio %s%s\n' "$1" "$2" "$3" \
        "$(awk "BEGIN{printf \"%.3f\", $2 / $3}")" "${4:+ (target $4)}"
}

# (b) fresh, then (a) cached: each round changes the COPY input once
fresh_c= fresh_b= cached_c= cached_b=
for i in $(seq "$ROUNDS"); do
    echo "round $i $RANDOM" >"$work/ctx-three/app.txt"
    best fresh_c chrun_build three
    best fresh_b buildah_build three
    best cached_c chrun_build three
    best cached_b buildah_build three
done
report build-cached-3step "$cached_c" "$cached_b" "<= 0.05, well under 1 s"
report build-fresh-3step "$fresh_c" "$fresh_b" "<= 0.8"

# (c) COPY of 20,000 files, a different file each round
copy_c= copy_b=
for i in $(seq "$ROUNDS"); do
    echo "round $i $RANDOM" >"$work/ctx-copy/files/d000/f00000"
    best copy_c chrun_build copy
    best copy_b buildah_build copy
done
report build-copy-20k "$copy_c" "$copy_b"

# (d) RUN touching 10,000 files of the COPY layer (cached after round 1)
chrun_build run --build-arg NONCE=warm >/dev/null
buildah_build run --build-arg NONCE=warm >/dev/null
run_c= run_b=
for i in $(seq "$ROUNDS"); do
    best run_c chrun_build run --build-arg "NONCE=c$i$RANDOM"
    best run_b buildah_build run --build-arg "NONCE=b$i$RANDOM"
done
report build-run-10k "$run_c" "$run_b"
rss_max=$(sort -n "$work/rss.log" | tail -n 1)
echo "build: chrun peak RSS $((rss_max / 1024)) MB over all runs (target < 64 MB), base ${SIZE_MB} MB"

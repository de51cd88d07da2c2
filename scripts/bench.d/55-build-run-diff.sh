#!/bin/bash
# Bench: the diff of a RUN step that touches 10 files of a 5,000-file rootfs.
# chrun-build runs RUN over an overlay and diffs only its upper directory;
# CHRUN_BUILD_FULL_WALK=1 forces the old path (a snapshot of the whole
# rootfs before and after the step). The base image is the busybox fixture
# plus a COPY of ~5,000 generated files; the measured Dockerfile is
#   FROM base / ARG NONCE / RUN echo $NONCE into 10 files of the tree
# built with a new NONCE each round (the step always runs). Reports, best of
# BUILD_DIFF_ROUNDS, the step's diff time (the "step diff" debug line of
# chrun-build: upper walk + layer write, against both snapshots + layer
# write), the whole step (exec included) and the whole build.
# Target: diff <= 0.05x the full walk.
# Run from the repo root with bin/ on PATH and $BENCH_DIR set; needs root.
set -euo pipefail
: "${BENCH_DIR:?BENCH_DIR must be set}"
. tests/lib-fixtures.sh

ROUNDS=${BUILD_DIFF_ROUNDS:-5}
FILES=${BUILD_DIFF_FILES:-5000}
work=$BENCH_DIR/build-run-diff
rm -rf "$work" && mkdir -p "$work"
export CHRUN_ROOT=$work/store SOURCE_DATE_EPOCH=1700000000
fixtures_ensure
chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null

# the base: ~FILES files in 50 directories
mkdir -p "$work/base/tree"
python3 - "$work/base/tree" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(root, "d%02d" % (i // 100))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%04d" % i), "w") as f:
        f.write("file %d\n" % i)
EOF
printf 'FROM fixture/basic:1\nCOPY tree /tree/\n' >"$work/base/Dockerfile"
chrun-build -q -t bench-diff-base:1 "$work/base" >/dev/null
mkdir -p "$work/step"
cat >"$work/step/Dockerfile" <<'EOF'
FROM bench-diff-base:1
ARG NONCE
RUN for i in 00 07 13 21 28 35 42 49; do echo "$NONCE" >/tree/d$i/f${i}05; done && \
    echo "$NONCE" >/tree/new-1 && echo "$NONCE" >/tree/d03/new-2
EOF

# one MODE: "diff_ms step_ms build_s" of one build with a fresh NONCE
one() {
    local s e
    s=$(date +%s%N)
    if [ "$1" = full ]; then
        CHRUN_BUILD_FULL_WALK=1 CHRUN_DEBUG=1 chrun-build --build-arg "NONCE=$RANDOM$RANDOM" \
            -t bench-diff:1 "$work/step" >/dev/null 2>"$work/err"
    else
        CHRUN_DEBUG=1 chrun-build --build-arg "NONCE=$RANDOM$RANDOM" -t bench-diff:1 \
            "$work/step" >/dev/null 2>"$work/err"
    fi || { cat "$work/err" >&2; return 1; }
    e=$(date +%s%N)
    sed -n 's/.*step diff: [a-z ]*, \([0-9.]*\) ms (step \([0-9.]*\) ms).*/\1 \2/p' "$work/err" |
        tail -n 1 | awk -v t=$(( e - s )) '{ printf "%s %s %.3f\n", $1, $2, t / 1e9 }'
}
grep_mode() { # MODE: the path the build took must be the one asked for
    if [ "$1" = full ]; then grep -q "step diff: full walk" "$work/err"
    else grep -q "step diff: overlay upper" "$work/err"; fi
}

best_ov=() best_fw=()
for r in $(seq "$ROUNDS"); do
    for mode in overlay full; do
        read -r d st b < <(one "$mode")
        grep_mode "$mode" || { echo "bench: $mode build did not take its path" >&2; exit 1; }
        if [ "$mode" = overlay ]; then cur=("${best_ov[@]}"); else cur=("${best_fw[@]}"); fi
        if [ ${#cur[@]} -eq 0 ]; then cur=("$d" "$st" "$b"); else
            cur=($(awk -v a="${cur[0]}" -v b="$d" -v c="${cur[1]}" -v d2="$st" -v e="${cur[2]}" \
                -v f="$b" 'BEGIN { print (b < a ? b : a), (d2 < c ? d2 : c), (f < e ? f : e) }'))
        fi
        if [ "$mode" = overlay ]; then best_ov=("${cur[@]}"); else best_fw=("${cur[@]}"); fi
    done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
entries=$(find "$work/base/tree" | wc -l)
printf 'build-run-diff: RUN touching 10 files in a %s-entry tree (best of %s)\n' "$entries" "$ROUNDS"
printf '  diff:  overlay upper %s ms, full walk %s ms, ratio %s (target <= 0.05)\n' \
    "${best_ov[0]}" "${best_fw[0]}" "$(ratio "${best_ov[0]}" "${best_fw[0]}")"
printf '  step:  overlay %s ms, full walk %s ms, ratio %s\n' \
    "${best_ov[1]}" "${best_fw[1]}" "$(ratio "${best_ov[1]}" "${best_fw[1]}")"
printf '  build: overlay %s s, full walk %s s, ratio %s\n' \
    "${best_ov[2]}" "${best_fw[2]}" "$(ratio "${best_ov[2]}" "${best_fw[2]}")"

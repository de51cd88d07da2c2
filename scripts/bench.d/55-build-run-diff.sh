#!/bin/bash
# Bench: the diff of a RUN step that touches 10 files of a 5,000-file rootfs.
# chrun-build runs RUN over an overlay and diffs only its upper directory;
# CHRUN_BUILD_FULL_WALK=1 forces the old path (a snapshot of the whole
# rootfs before and after the step). The base image is the busybox fixture
# plus a COPY of ~5,000 generated files; the measured Dockerfile is
#   FROM base / ARG NONCE / RUN echo $NONCE into 10 files of the tree
# built with a new NONCE each round (the step always runs). Reports, best of
# BUILD_DIFF_ROUNDS, from chrun-build's CHRUN_DEBUG lines: the step's diff
# without the layer write (reading the upper, against both snapshots and
# their comparison; the layer's bytes are the same both ways), the diff with
# it, the whole step (exec included) and the whole build.
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
    # "find": the diff without writing the layer (the same bytes both ways)
    w=$(sed -n 's/.*debug: layer: .* written in \([0-9.]*\) ms.*/\1/p' "$work/err" | tail -n 1)
    sed -n 's/.*step diff: [a-z ]*, \([0-9.]*\) ms (step \([0-9.]*\) ms).*/\1 \2/p' "$work/err" |
        tail -n 1 | awk -v t=$(( e - s )) -v w="$w" \
            '{ printf "%s %s %.3f %.1f\n", $1, $2, t / 1e9, $1 - w }'
}
grep_mode() { # MODE: the path the build took must be the one asked for
    if [ "$1" = full ]; then grep -q "step diff: full walk" "$work/err"
    else grep -q "step diff: overlay upper" "$work/err"; fi
}

# best of the rounds, per column: diff_ms step_ms build_s find_ms
best_ov=() best_fw=()
best() { # CUR... -- NEW...: the smaller of each pair
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) printf "%s%s", (y[i] < x[i] ? y[i] : x[i]), (i < n ? " " : "\n")
    }'
}
for r in $(seq "$ROUNDS"); do
    for mode in overlay full; do
        cur=$(one "$mode")
        grep_mode "$mode" || { echo "bench: $mode build did not take its path" >&2; exit 1; }
        if [ "$mode" = overlay ]; then
            prev="${best_ov[*]:-$cur}"
            read -r -a best_ov <<<"$(best "$prev" "$cur")"
        else
            prev="${best_fw[*]:-$cur}"
            read -r -a best_fw <<<"$(best "$prev" "$cur")"
        fi
    done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
entries=$(find "$work/base/tree" | wc -l)
printf 'build-run-diff: RUN touching 10 files in a %s-entry tree (best of %s)\n' "$entries" "$ROUNDS"
printf '  diff, finding the changes: overlay upper %s ms, full walk %s ms, ratio %s (target <= 0.05)\n' \
    "${best_ov[3]}" "${best_fw[3]}" "$(ratio "${best_ov[3]}" "${best_fw[3]}")"
printf '  diff with the layer write:  overlay upper %s ms, full walk %s ms, ratio %s\n' \
    "${best_ov[0]}" "${best_fw[0]}" "$(ratio "${best_ov[0]}" "${best_fw[0]}")"
printf '  step:  overlay %s ms, full walk %s ms, ratio %s\n' \
    "${best_ov[1]}" "${best_fw[1]}" "$(ratio "${best_ov[1]}" "${best_fw[1]}")"
printf '  build: overlay %s s, full walk %s s, ratio %s\n' \
    "${best_ov[2]}" "${best_fw[2]}" "$(ratio "${best_ov[2]}" "${best_fw[2]}")"

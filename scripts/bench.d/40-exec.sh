#!/bin/bash
# Bench: start-up cost of one container run. `chrun-exec BUNDLE /bin/true`
# (mount namespace, /proc, /dev, /sys, resolv.conf, chroot, exec) against
# `chroot ROOTFS /bin/true` and `runc run` of the same bundle, and `chrun run
# IMAGE /bin/true` with image and bundle cached against chrun-exec alone.
# Targets: chrun-exec <= 2x chroot, <= 0.2x runc; chrun run <= 3x chrun-exec.
# Then `chrun run --rm IMAGE true` with the image stored (its tree made by a
# first run): the overlay path against the copy path (CHRUN_RUN_COPY=1) and
# against `runc run` of a umoci-unpacked bundle of the same image. The image
# is 30-unpack's Debian one when $BENCH_DIR/unpack has it, else the small
# fixture. Targets: overlay <= 0.05x copy and < 0.1 s.
# Each figure is the mean of N back-to-back runs (the best of 3 such rounds).
# Run from the repo root with bin/ on PATH and $BENCH_DIR set.
set -euo pipefail
: "${BENCH_DIR:?BENCH_DIR must be set}"
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
. tests/lib-fixtures.sh

work=$BENCH_DIR/exec
rm -rf "$work" && mkdir -p "$work"
export CHRUN_ROOT=$work/store
fixtures_ensure
digest=$(chrun-load -q "$FIXTURES/basic.oci.tar" | head -n1)
bundle=$(chrun-unpack -q "$digest")
rootfs=$bundle/rootfs
if [ -x "$rootfs/bin/true" ] || [ -L "$rootfs/bin/true" ]; then
    cmd=(/bin/true)
else
    cmd=(/bin/busybox true)
fi

# runc gets its own bundle directory over the same rootfs, without a terminal.
mkdir -p "$work/runc-bundle"
jq --arg root "$rootfs" --argjson args "$(printf '%s\n' "${cmd[@]}" | jq -R . | jq -s .)" \
    '.root.path = $root | .process.terminal = false | .process.args = $args' \
    "$bundle/config.json" >"$work/runc-bundle/config.json"
runc_one() {
    runc --root "$work/runc-state" run --bundle "$work/runc-bundle" "bench-$$" </dev/null >/dev/null
}

# mean_s N CMD...: mean wall time of N runs in seconds, best of 3 rounds.
mean_s() {
    local n=$1 best= r s e m
    shift
    for r in 1 2 3; do
        s=$(date +%s%N)
        for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; return 1; }; done
        e=$(date +%s%N)
        m=$(( (e - s) / n ))
        if [ -z "$best" ] || [ "$m" -lt "$best" ]; then best=$m; fi
    done
    echo "$best" | awk '{ printf "%.6f\n", $1 / 1e9 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

n=${BENCH_EXEC_RUNS:-200}
chroot_s=$(mean_s "$n" chroot "$rootfs" "${cmd[@]}")
exec_s=$(mean_s "$n" chrun-exec "$bundle" "${cmd[@]}")
nomounts_s=$(mean_s "$n" chrun-exec --no-mounts "$bundle" "${cmd[@]}")
isolate_s=$(mean_s "$n" chrun-exec --isolate "$bundle" "${cmd[@]}")
runc_s=$(mean_s "$(( n / 10 > 5 ? n / 10 : 5 ))" runc_one)
run_s=$(mean_s "$n" chrun run "$digest" "${cmd[@]}")
/usr/bin/time -f %M -o "$work/rss" chrun-exec "$bundle" "${cmd[@]}" >/dev/null
/usr/bin/time -f %M -o "$work/rss-run" chrun run "$digest" "${cmd[@]}" >/dev/null

printf 'exec start-up: chrun %s s, peer chroot(8) %s s, ratio %s (target <= 2)\n' \
    "$exec_s" "$chroot_s" "$(ratio "$exec_s" "$chroot_s")"
printf 'exec start-up: chrun %s s, peer runc run %s s, ratio %s (target <= 0.2)\n' \
    "$exec_s" "$runc_s" "$(ratio "$exec_s" "$runc_s")"
printf 'exec --no-mounts: chrun %s s, peer chroot(8) %s s, ratio %s\n' \
    "$nomounts_s" "$chroot_s" "$(ratio "$nomounts_s" "$chroot_s")"
printf 'exec --isolate: chrun %s s, peer runc run %s s, ratio %s\n' \
    "$isolate_s" "$runc_s" "$(ratio "$isolate_s" "$runc_s")"
printf 'run (cached): chrun run %s s, peer chrun-exec %s s, ratio %s (target <= 3)\n' \
    "$run_s" "$exec_s" "$(ratio "$run_s" "$exec_s")"
echo "exec: chrun-exec peak RSS $(cat "$work/rss") KiB, chrun run peak RSS $(cat "$work/rss-run") KiB"

# ---- chrun run --rm: overlay over the stored image's tree vs a copy ----
rm_image=$digest rm_name="basic fixture"
if [ -s "$BENCH_DIR/unpack/image.digest" ] && [ -d "$BENCH_DIR/unpack/store" ]; then
    # a private copy of 30-unpack's store: its trees and runs stay here
    cp -a "$BENCH_DIR/unpack/store" "$work/deb-store"
    export CHRUN_ROOT=$work/deb-store
    rm_image=$(cat "$BENCH_DIR/unpack/image.digest") rm_name="Debian minbase + 2 layers"
fi
rm_cmd=(/bin/sh -c true)
chrun run --rm "$rm_image" "${rm_cmd[@]}" >/dev/null # makes the tree
overlay_s=$(mean_s "$n" chrun run --rm "$rm_image" "${rm_cmd[@]}")
copy_s=$(export CHRUN_RUN_COPY=1 && mean_s "${BENCH_RM_COPY_RUNS:-3}" chrun run --rm "$rm_image" "${rm_cmd[@]}")
# runc: umoci unpacks the image once (from an OCI layout skopeo copies it
# to, with a plain tag); each run starts from that bundle.
rm_ref=$(jq -r --arg d "$rm_image" '.manifests[] | select(.digest == $d) |
    .annotations["org.opencontainers.image.ref.name"]' "$CHRUN_ROOT/index.json" | head -n1)
skopeo --insecure-policy copy -q "oci:$CHRUN_ROOT:$rm_ref" "oci:$work/layout:img"
umoci unpack --image "$work/layout:img" "$work/umoci-bundle" >/dev/null
jq --argjson args "$(printf '%s\n' "${rm_cmd[@]}" | jq -R . | jq -s .)" \
    '.process.terminal = false | .process.args = $args' \
    "$work/umoci-bundle/config.json" >"$work/umoci-bundle/config.json.new"
mv "$work/umoci-bundle/config.json.new" "$work/umoci-bundle/config.json"
runc_rm_one() {
    runc --root "$work/runc-state" run --bundle "$work/umoci-bundle" "bench-rm-$$" </dev/null >/dev/null
}
runc_rm_s=$(mean_s "$(( n / 10 > 5 ? n / 10 : 5 ))" runc_rm_one)
/usr/bin/time -f %M -o "$work/rss-rm" chrun run --rm "$rm_image" "${rm_cmd[@]}" >/dev/null
printf 'run --rm (%s, stored): overlay %s s, copy path %s s, ratio %s (target <= 0.05, < 0.1 s)\n' \
    "$rm_name" "$overlay_s" "$copy_s" "$(awk -v a="$overlay_s" -v b="$copy_s" 'BEGIN { printf "%.4f", a / b }')"
printf 'run --rm (%s, stored): overlay %s s, peer runc run of a umoci bundle %s s, ratio %s\n' \
    "$rm_name" "$overlay_s" "$runc_rm_s" "$(ratio "$overlay_s" "$runc_rm_s")"
echo "run --rm: peak RSS $(cat "$work/rss-rm") KiB"
rm -rf "$work"

#!/bin/bash
test_description='chrun-load killed at any point leaves a sound store; the next run finishes the job'
. ./lib.sh
. "$TEST_DIRECTORY/lib-fixtures.sh"

# The store as readers see it: every blob sound, index.json valid, every
# named image complete (its manifest, config and layers present).
store_readable() {
    store_fsck &&
    chrun-images >/dev/null &&
    jq -r '.manifests[].digest' "$CHRUN_ROOT/index.json" | while read -r d; do
        m=$CHRUN_ROOT/blobs/sha256/${d#sha256:}
        test -f "$m" || { echo "named manifest $d missing" >&2; exit 1; }
        jq -r '.config.digest, .layers[].digest' "$m" | while read -r b; do
            test -f "$CHRUN_ROOT/blobs/sha256/${b#sha256:}" || { echo "blob $b missing" >&2; exit 1; }
        done || exit 1
    done
}

test_expect_success 'setup: a multi-layer docker archive and its digest' '
    fixtures_ensure &&
    BIG=$(fixture_make_big "$TRASH_DIRECTORY" 40) &&
    CHRUN_ROOT=$TRASH_DIRECTORY/ref chrun-load -q "$BIG" >expect &&
    test "$(wc -l <expect)" -eq 1 &&
    SIZE=$(stat -c %s "$BIG")
'

# kill_after_bytes K: feed the first K bytes through a FIFO, let chrun-load
# work on them, then SIGKILL it while it waits for more.
kill_after_bytes() {
    rm -f fifo && mkfifo fifo &&
    { chrun-load -q fifo >/dev/null 2>&1 & } && pid=$! &&
    exec 3>fifo &&
    head -c "$1" "$BIG" >&3 &&
    sleep 1 &&
    kill -9 "$pid" && { wait "$pid"; true; } &&
    exec 3>&-
}

for k in 1000 600000 5000000 20000000 40000000 FULL; do
    test_expect_success "killed after $k bytes: store readable" '
        n='"$k"' && { [ "$n" != FULL ] || n=$SIZE; } &&
        kill_after_bytes "$n" &&
        store_readable &&
        ! grep -q fixture/big "$CHRUN_ROOT/index.json"
    '
done

test_expect_success 'killed at several moments of a full load: store readable' '
    for s in 0.02 0.08 0.15 0.3 0.6 1; do
        { chrun-load -q "$BIG" >/dev/null 2>&1 & } && pid=$! &&
        sleep "$s" &&
        kill -9 "$pid" 2>/dev/null; wait "$pid"
        store_readable || return 1
    done
'

test_expect_success 'a re-run completes, prints the same digest and clears abandoned work' '
    kill_after_bytes 5000000 &&
    test -n "$(ls -A "$CHRUN_ROOT/tmp")" &&
    chrun-load -q "$BIG" >actual &&
    test_cmp expect actual &&
    store_readable &&
    grep -q fixture/big "$CHRUN_ROOT/index.json" &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'two loads of the same archive at once both succeed' '
    { chrun-load -q "$BIG" >/dev/null 2>&1 & } && pid=$! &&
    chrun-load -q "$BIG" >second &&
    wait "$pid" &&
    test_cmp expect second &&
    store_readable
'

# A load killed between making its staging directory and locking it leaves
# an unlocked directory. Planted here, one per name chrun-load has used
# ("load.<random>" was the name before the lock, "load-<random>" after).
plant_dead_stages() {
    for d in load.dEad01 load-dEad02; do
        mkdir "$CHRUN_ROOT/tmp/$d" && echo x >"$CHRUN_ROOT/tmp/$d/m0" || return 1
    done
}

test_expect_success 'unlocked staging directories of dead loads are swept by the next chrun-load' '
    plant_dead_stages &&
    chrun-load -q "$BIG" >actual &&
    test_cmp expect actual &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
'

test_expect_success 'a staging directory whose lock is held is left alone' '
    live=$CHRUN_ROOT/tmp/load-LiVe01 &&
    mkdir "$live" && echo x >"$live/m0" &&
    rm -f ready hold && mkfifo ready hold &&
    { flock -x "$live" sh -c "echo locked >ready && exec cat hold >/dev/null" & } && holder=$! &&
    test_when_finished "exec 8>&-; wait $holder; rm -rf \"$live\"" &&
    read -r state <ready && test "$state" = locked &&
    exec 8>hold &&
    plant_dead_stages &&
    chrun-load -q "$BIG" >actual &&
    test_cmp expect actual &&
    test -f "$live/m0" &&
    test "$(ls -A "$CHRUN_ROOT/tmp")" = load-LiVe01
'

test_expect_success 'unlocked staging directories of dead loads are swept by chrun-gc' '
    plant_dead_stages &&
    chrun-gc -q &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")" &&
    store_readable &&
    grep -q fixture/big "$CHRUN_ROOT/index.json"
'

test_done

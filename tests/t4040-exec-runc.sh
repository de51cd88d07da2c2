#!/bin/bash
test_description='chrun-exec and runc run agree on id, pwd and env for the same bundle'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

# runc run with the bundle's process, or ARGS in its place.
runc_run() {
    local dir=$1 args=$2 id=chrun-t4040-$$-$RANDOM
    cp "$dir/config.json" "$dir/config.json.saved" &&
        bundle_config "$dir" ".process.args = $args" &&
        runc --root "$TRASH_DIRECTORY/runc-state" run --bundle "$dir" "$id" </dev/null
    local rc=$?
    mv "$dir/config.json.saved" "$dir/config.json"
    runc --root "$TRASH_DIRECTORY/runc-state" delete -f "$id" >/dev/null 2>&1
    return $rc
}

# Differences we accept: chrun-exec exports HOSTNAME, as docker does; runc
# sets none (its hostname lives in the UTS namespace only).
normalize_env() {
    grep -v "^HOSTNAME=" | sort
}

test_expect_success 'setup: a bundle running as app (1000, extra group) in /home/app' '
    bundle_make b &&
    bundle_config b ".process.user = {uid: 1000, gid: 1000, additionalGids: [2000]}
        | .process.cwd = \"/home/app\"
        | .process.env += [\"WITH_SPACE=a b\", \"EMPTY=\"]"
'

for what in id pwd env; do
test_expect_success "$what: chrun-exec = runc run" '
    chrun-exec b $what >chrun.out &&
    runc_run b "[\"$what\"]" >runc.out &&
    if [ $what = env ]; then
        normalize_env <chrun.out >chrun.cmp && normalize_env <runc.out >runc.cmp
    else
        cp chrun.out chrun.cmp && cp runc.out runc.cmp
    fi &&
    cat chrun.cmp &&
    test_cmp runc.cmp chrun.cmp
'
done

test_expect_success 'as root in /: id, pwd and env agree too' '
    bundle_config b ".process.user = {uid: 0, gid: 0} | .process.cwd = \"/\"" &&
    for what in id pwd env; do
        chrun-exec b $what | normalize_env >chrun.out &&
        runc_run b "[\"$what\"]" | normalize_env >runc.out &&
        test_cmp runc.out chrun.out || return 1
    done
'

test_done

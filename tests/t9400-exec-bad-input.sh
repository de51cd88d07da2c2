#!/bin/bash
test_description='chrun-exec bad input: one clear error line, the right status, nothing changed'
. "$(dirname "$0")/lib.sh"
. "$TEST_DIRECTORY/lib-bundle.sh"

host_mounts() {
    awk '{ $1 = ""; $2 = ""; print }' /proc/self/mountinfo | sort
}

# expect_failure STATUS PATTERN CHRUN-EXEC-ARGS...: exit STATUS, one error
# line matching PATTERN, bundle tree and host mount table unchanged.
expect_failure() {
    local status=$1 pattern=$2
    shift 2
    tree_snapshot "$TRASH_DIRECTORY/b" >tree.before &&
    host_mounts >mounts.before &&
    test_expect_code "$status" chrun-exec "$@" >out 2>err &&
    test_one_error_line chrun-exec err "$pattern" &&
    test ! -s out &&
    tree_snapshot "$TRASH_DIRECTORY/b" >tree.after &&
    test_cmp tree.before tree.after &&
    host_mounts >mounts.after &&
    test_cmp mounts.before mounts.after
}

test_expect_success 'setup' '
    bundle_make b &&
    mkdir -p norootfs && cp b/config.json norootfs/ &&
    mkdir -p garbage && ln -s ../b/rootfs garbage/rootfs &&
    echo "{ this is not json" >garbage/config.json &&
    mkdir -p wrongtype && ln -s ../b/rootfs wrongtype/rootfs &&
    echo "{\"process\": {\"args\": \"sh\"}}" >wrongtype/config.json &&
    mkdir -p noconfig/rootfs &&
    mkdir -p noargs && ln -s ../b/rootfs noargs/rootfs &&
    echo "{\"process\": {\"args\": []}}" >noargs/config.json &&
    : >nonempty
'

test_expect_success 'missing bundle' '
    expect_failure 1 "bundle .*no-such-bundle.*No such file" no-such-bundle true
'

test_expect_success 'bundle without rootfs' '
    expect_failure 1 "norootfs.*rootfs.*No such file" norootfs true
'

test_expect_success 'bundle without config.json' '
    expect_failure 1 "noconfig.*config.json.*No such file" noconfig true
'

test_expect_success 'garbage config.json' '
    expect_failure 1 "garbage.*config.json.*invalid JSON" garbage true
'

test_expect_success 'config.json with a wrong type' '
    expect_failure 1 "wrongtype.*process.args.*not an array" wrongtype
'

test_expect_success 'no command anywhere' '
    expect_failure 1 "noargs.*no command" noargs
'

test_expect_success 'unknown user and group' '
    expect_failure 1 "user .ghost. not found" -u ghost b true &&
    expect_failure 1 "group .ghosts. not found" -u app:ghosts b true
'

test_expect_success 'missing -v source' '
    expect_failure 1 "-v source .*/no/such/dir.*No such file" -v /no/such/dir:/mnt b true
'

test_expect_success '-v of a directory over a file in the image' '
    expect_failure 1 "-v target ./etc/passwd.*Not a directory" -v "$TRASH_DIRECTORY:/etc/passwd" b true
'

test_expect_success 'command that does not exist: 127; not executable: 126' '
    expect_failure 127 "nope.*not found" b nope &&
    expect_failure 127 "/bin/nope.*No such file" b /bin/nope &&
    expect_failure 126 "/etc/group.*Permission denied" b /etc/group
'

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 chrun-exec -u "" b true 2>err && grep "^chrun-exec: error: -u" err &&
    test_expect_code 2 chrun-exec -w relative b true 2>err && grep "^chrun-exec: error: -w" err &&
    test_expect_code 2 chrun-exec -v /a:/b:xx b true 2>err && grep "^chrun-exec: error: -v" err &&
    test_expect_code 2 chrun-exec --no-mounts -v /tmp:/x b true 2>err && grep "no-mounts" err
'

test_done

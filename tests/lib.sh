# Shared harness for tests/tNNNN-*.sh (sourced). Modelled on git's t/test-lib.sh:
# a private trash directory per script with its own CHRUN_ROOT (deleted on
# success, kept on failure), test_expect_success, test_expect_code, test_cmp,
# test_when_finished, test_atexit and test_done.

TEST_DIRECTORY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$TEST_DIRECTORY")
TEST_NAME=$(basename "$0" .sh)
: "${CHRUN_TEST_BIN:=$REPO_ROOT/bin}"
PATH=$CHRUN_TEST_BIN:$PATH
export PATH REPO_ROOT TEST_DIRECTORY

TRASH_DIRECTORY=$REPO_ROOT/build/trash/$TEST_NAME
rm -rf "$TRASH_DIRECTORY" 2>/dev/null || { chmod -R u+rwx "$TRASH_DIRECTORY"; rm -rf "$TRASH_DIRECTORY"; }
mkdir -p "$TRASH_DIRECTORY" || exit 1
cd "$TRASH_DIRECTORY" || exit 1
export TRASH_DIRECTORY
export CHRUN_ROOT=$TRASH_DIRECTORY/store
# Never use the developer's credentials or settings.
export DOCKER_CONFIG=$TRASH_DIRECTORY/.docker
export HOME=$TRASH_DIRECTORY
unset CHRUN_INSECURE_REGISTRIES CHRUN_REGISTRY_MIRRORS CHRUN_DEBUG
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}
export LC_ALL=C

test_count=0
test_passed=0
test_failed=0
test_cleanup_cmds=
test_atexit_cmds=

say() { printf '%s\n' "$*"; }

# test_when_finished CMD: run CMD after the current test, whatever its result.
test_when_finished() {
    test_cleanup_cmds="$*; $test_cleanup_cmds"
}

# test_atexit CMD: run CMD when the script ends (stop a registry).
test_atexit() {
    test_atexit_cmds="$*; $test_atexit_cmds"
}

test_run_atexit() {
    if [ -n "$test_atexit_cmds" ]; then
        eval "$test_atexit_cmds" >/dev/null 2>&1
        test_atexit_cmds=
    fi
}
trap 'test_run_atexit' EXIT

# test_expect_success TITLE BODY: BODY runs in this shell (so variables it sets
# stay for later tests), its output goes to a log shown on failure.
test_expect_success() {
    local title=$1 body=$2 log rc
    test_count=$((test_count + 1))
    log=$TRASH_DIRECTORY/.test-$test_count.log
    test_cleanup_cmds=
    { eval "$body"; } >"$log" 2>&1 </dev/null
    rc=$?
    if [ -n "$test_cleanup_cmds" ]; then
        eval "$test_cleanup_cmds" >>"$log" 2>&1
    fi
    if [ $rc -eq 0 ]; then
        test_passed=$((test_passed + 1))
        say "ok $test_count - $title"
    else
        test_failed=$((test_failed + 1))
        say "not ok $test_count - $title"
        say "#   body:"
        printf '%s\n' "$body" | sed 's/^/#     /'
        say "#   output (exit $rc):"
        tail -n 40 "$log" | sed 's/^/#     /'
    fi
}

# test_expect_code N CMD...: CMD must exit with status N.
test_expect_code() {
    local want=$1 rc
    shift
    "$@"
    rc=$?
    if [ "$rc" != "$want" ]; then
        echo "test_expect_code: expected exit $want, got $rc: $*" >&2
        return 1
    fi
    return 0
}

# test_cmp EXPECTED ACTUAL
test_cmp() {
    diff -u "$1" "$2"
}

# test_one_error_line PROG FILE [PATTERN]: FILE holds exactly one line and it
# is "PROG: error: ..." (matching PATTERN, an extended regex, if given).
test_one_error_line() {
    local prog=$1 file=$2 pattern=${3:-}
    if [ "$(wc -l <"$file")" -ne 1 ]; then
        echo "expected one line in $file, got:" >&2
        cat "$file" >&2
        return 1
    fi
    grep -q "^$prog: error: " "$file" || { cat "$file" >&2; return 1; }
    if [ -n "$pattern" ]; then
        grep -Eq -- "$pattern" "$file" || { echo "no match for '$pattern':" >&2; cat "$file" >&2; return 1; }
    fi
}

# tree_snapshot DIR: every entry under DIR with type, mode, owner, size, link
# target and content hash, sorted, so two snapshots compare with test_cmp.
tree_snapshot() {
    local dir=$1
    [ -d "$dir" ] || { echo "(absent)"; return 0; }
    (cd "$dir" && find . -path ./locks -prune -o -printf '%y %m %U:%G %s %p -> %l\n' | LC_ALL=C sort)
    (cd "$dir" && find . -path ./locks -prune -o -type f -print0 | LC_ALL=C sort -z |
        xargs -0 -r sha256sum)
}

# store_snapshot: tree_snapshot of $CHRUN_ROOT (locks/ excluded: lock files
# are created by any reader).
store_snapshot() {
    tree_snapshot "$CHRUN_ROOT"
}

# store_fsck: every blob hashes to its name; index.json is JSON.
store_fsck() {
    local f bad=0
    for f in "$CHRUN_ROOT"/blobs/sha256/*; do
        [ -e "$f" ] || continue
        if [ "$(sha256sum <"$f" | cut -d' ' -f1)" != "$(basename "$f")" ]; then
            echo "corrupt blob: $f" >&2
            bad=1
        fi
    done
    jq -e . "$CHRUN_ROOT/index.json" >/dev/null || bad=1
    return $bad
}

test_done() {
    test_run_atexit
    say "# passed=$test_passed failed=$test_failed"
    if [ "$test_failed" -eq 0 ]; then
        cd "$REPO_ROOT" || exit 1
        chmod -R u+rwx "$TRASH_DIRECTORY" 2>/dev/null
        rm -rf "$TRASH_DIRECTORY"
        exit 0
    fi
    say "# trash kept: $TRASH_DIRECTORY"
    exit 1
}

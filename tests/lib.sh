# Shared harness for tests/tNNNN-*.sh (sourced). Modelled on git's t/test-lib.sh:
# a private trash directory per script with its own CHRUN_ROOT (deleted on
# success, kept on failure), test_expect_success [PREREQ] TITLE BODY,
# prerequisites (test_set_prereq, test_have_prereq, test_lazy_prereq,
# test_skip_all), chain-lint of every body, test_expect_code, test_cmp,
# test_when_finished, test_atexit, test_wait_until and test_done.
#
# Options (also from tests/run, as environment variables):
#   -v, --verbose       show each body and its output (TEST_VERBOSE=1)
#   --run=SPEC          run only tests SPEC ("3", "1,4-6"); others are skipped
#                       (TEST_RUN=SPEC)
#   --no-chain-lint     do not check the &&-chains (TEST_CHAIN_LINT=0)

TEST_DIRECTORY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$TEST_DIRECTORY")
TEST_NAME=$(basename "$0" .sh)
: "${CHRUN_TEST_BIN:=$REPO_ROOT/bin}"
: "${TEST_VERBOSE:=0}" "${TEST_RUN:=}" "${TEST_CHAIN_LINT:=1}"
for test_arg in "$@"; do
    case $test_arg in
    -v | --verbose) TEST_VERBOSE=1 ;;
    --run=*) TEST_RUN=${test_arg#--run=} ;;
    --no-chain-lint) TEST_CHAIN_LINT=0 ;;
    *) echo "$0: unknown option '$test_arg'" >&2; exit 1 ;;
    esac
done
unset test_arg

# _test_open_to_others PATH: every directory from / down to PATH (as far as
# it exists yet) can be entered by any user (the "x" bit for others).
_test_open_to_others() {
    local p=$1 mode
    while [ -n "$p" ] && [ "$p" != / ] && [ "$p" != . ]; do
        if [ ! -e "$p" ]; then
            p=$(dirname "$p")
            continue
        fi
        mode=$(stat -Lc %A "$p" 2>/dev/null) || return 1
        case $mode in
        d????????[xt]) ;;
        *) return 1 ;;
        esac
        p=$(dirname "$p")
    done
}

# Tests run chrun as other users (nobody, a subordinate-id user), who must
# reach the programs and the trash directory. A clone inside a directory they
# cannot enter (mode 0700, as mktemp -d and many home directories are) must
# not make those tests fail: then the trash directory and a copy of the
# programs go to a directory of their own under /tmp (or $TMPDIR when others
# can enter it), removed with the trash directory.
TEST_OUTSIDE=
if ! _test_open_to_others "$REPO_ROOT/build" || ! _test_open_to_others "$CHRUN_TEST_BIN"; then
    test_tmp=${TMPDIR:-/tmp}
    _test_open_to_others "$test_tmp" || test_tmp=/tmp
    TEST_OUTSIDE=$(mktemp -d "$test_tmp/chrun-test.XXXXXX") && chmod 755 "$TEST_OUTSIDE" &&
        mkdir "$TEST_OUTSIDE/bin" || exit 1
    for test_prog in "$CHRUN_TEST_BIN"/*; do
        [ -f "$test_prog" ] || continue
        ln "$test_prog" "$TEST_OUTSIDE/bin/" 2>/dev/null || cp -p "$test_prog" "$TEST_OUTSIDE/bin/" || exit 1
    done
    CHRUN_TEST_BIN=$TEST_OUTSIDE/bin
    unset test_tmp test_prog
fi
PATH=$CHRUN_TEST_BIN:$PATH
export PATH REPO_ROOT TEST_DIRECTORY CHRUN_TEST_BIN

if [ -n "$TEST_OUTSIDE" ]; then
    TRASH_DIRECTORY=$TEST_OUTSIDE/$TEST_NAME
else
    TRASH_DIRECTORY=$REPO_ROOT/build/trash/$TEST_NAME
fi
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
test_skipped=0
test_cleanup_cmds=
test_atexit_cmds=
test_prereqs_set=" "
test_prereqs_missing=" "
declare -A test_lazy_prereqs=() test_prereq_reasons=()

say() { printf '%s\n' "$*"; }

# test_set_prereq NAME: the prerequisite NAME holds from now on.
test_set_prereq() {
    test_prereqs_set="$test_prereqs_set$1 "
}

# test_lazy_prereq NAME SCRIPT: NAME holds if SCRIPT (run once, when a test
# first asks, in a subshell) succeeds; the last line it prints is the reason
# given when it does not.
test_lazy_prereq() {
    test_lazy_prereqs[$1]=$2
}

# test_have_prereq LIST: every prerequisite of the comma-separated LIST holds
# ("!NAME": NAME does not). Sets test_missing_prereq to the first that fails.
test_have_prereq() {
    local p name want out
    local IFS=,
    for p in $1; do
        name=${p#!}
        want=yes
        [ "$name" = "$p" ] || want=no
        if [ -n "${test_lazy_prereqs[$name]+x}" ]; then
            if out=$( (IFS=$' \t\n' && eval "${test_lazy_prereqs[$name]}") 2>&1 </dev/null); then
                test_set_prereq "$name"
            else
                test_prereqs_missing="$test_prereqs_missing$name "
                out=$(printf '%s\n' "$out" | sed '/^$/d' | tail -n 1)
                [ -z "$out" ] || test_prereq_reasons[$name]=$out
            fi
            unset "test_lazy_prereqs[$name]"
        fi
        case "$test_prereqs_set" in
        *" $name "*) [ $want = yes ] && continue ;;
        *) [ $want = no ] && continue ;;
        esac
        test_missing_prereq=$p
        return 1
    done
    return 0
}

test_lazy_prereq ROOT '[ "$(id -u)" = 0 ] || { echo "needs root"; false; }'

# test_skip REASON TITLE: report the next test as skipped (counted).
test_skip() {
    test_count=$((test_count + 1))
    test_skipped=$((test_skipped + 1))
    say "ok $test_count # skip $2 ($1)"
}

# test_skip_all REASON: the whole script cannot run here: say why, count one
# skip, and end the script (as git's skip_all).
test_skip_all() {
    test_skip "$1" "$TEST_NAME"
    test_done
}

# _test_selected N: N is in --run's list (or there is none).
_test_selected() {
    local n=$1 r
    local IFS=,
    [ -n "$TEST_RUN" ] || return 0
    for r in $TEST_RUN; do
        case $r in
        *-*) [ "$n" -ge "${r%-*}" ] && [ "$n" -le "${r#*-}" ] && return 0 ;;
        *) [ "$n" = "$r" ] && return 0 ;;
        esac
    done
    return 1
}

# _test_chain_lint BODY: as git's --chain-lint: evaluated behind a command
# that returns 117 and "&&", a body whose commands are all &&-chained runs
# nothing more and ends with 117; a missing && (or a syntax error) lets a
# later command start and the result differs. A DEBUG trap stops the lint
# subshell before any such command runs, so linting has no side effects.
_test_lint_117() { return 117; }
_test_chain_lint() {
    (
        trap '[ "$BASH_COMMAND" = _test_lint_117 ] ||
            [ "$BASH_COMMAND" = "eval \"_test_lint_117 && \$1\"" ] || exit 1' DEBUG
        eval "_test_lint_117 && $1"
    ) >/dev/null 2>&1 </dev/null
    [ $? -eq 117 ]
}

# test_own_mounts: this script's own mounts in the host's mount table (mount
# points at or below its trash directory), without the per-mount ids, which
# a new namespace changes. Other programs may mount and unmount elsewhere
# meanwhile: that is not ours to compare.
test_own_mounts() {
    local d
    d=$(cd "$TRASH_DIRECTORY" && pwd -P) || return 1
    awk -v d="$d" '$5 == d || index($5, d "/") == 1 { $1 = ""; $2 = ""; print }' \
        /proc/self/mountinfo | sort
}

# test_wait_until WHAT CMD...: wait for an event (a ready file, a listening
# socket, a process that ended) by polling CMD until it succeeds, never for a
# fixed time. Gives up, with a message naming WHAT, only after
# TEST_WAIT_SECONDS (default 300): a bound for a test that hangs, not a
# schedule, so a busy machine only makes it slower.
test_wait_until() {
    local what=$1 start=$SECONDS
    shift
    until "$@"; do
        if [ $((SECONDS - start)) -ge "${TEST_WAIT_SECONDS:-300}" ]; then
            echo "test_wait_until: gave up waiting for $what" >&2
            return 1
        fi
        sleep 0.02
    done
}

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

# test_expect_success [PREREQ] TITLE BODY: BODY runs in this shell (so
# variables it sets stay for later tests), its output goes to a log shown on
# failure. Without PREREQ (a comma-separated list, see test_have_prereq) the
# test is skipped and counted as such. A body whose &&-chain is broken fails
# without running.
test_expect_success() {
    local prereq= title body log rc
    if [ $# -eq 3 ]; then
        prereq=$1
        shift
    fi
    title=$1 body=$2
    if ! _test_selected $((test_count + 1)); then
        test_skip "not in --run=$TEST_RUN" "$title"
        return 0
    fi
    if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
        local why="missing $test_missing_prereq"
        [ -z "${test_prereq_reasons[${test_missing_prereq#!}]:-}" ] ||
            why="$why: ${test_prereq_reasons[${test_missing_prereq#!}]}"
        test_skip "$why" "$title"
        return 0
    fi
    test_count=$((test_count + 1))
    log=$TRASH_DIRECTORY/.test-$test_count.log
    test_cleanup_cmds=
    if [ "$TEST_VERBOSE" = 1 ]; then
        say "expecting success of $test_count '$title':"
        printf '%s\n' "$body" | sed 's/^/    /'
    fi
    if [ "$TEST_CHAIN_LINT" = 1 ] && ! _test_chain_lint "$body"; then
        echo "bug in the test script: broken &&-chain (or a syntax error) in '$title'" >"$log"
        rc=117
    else
        { eval "$body"; } >"$log" 2>&1 </dev/null
        rc=$?
    fi
    if [ -n "$test_cleanup_cmds" ]; then
        eval "$test_cleanup_cmds" >>"$log" 2>&1
    fi
    [ "$TEST_VERBOSE" = 1 ] && sed 's/^/    | /' "$log"
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
    local skipped=
    test_run_atexit
    [ "$test_skipped" -eq 0 ] || skipped=" skipped=$test_skipped"
    say "# passed=$test_passed failed=$test_failed$skipped"
    if [ "$test_failed" -eq 0 ]; then
        cd "$REPO_ROOT" || exit 1
        chmod -R u+rwx "$TRASH_DIRECTORY" 2>/dev/null
        rm -rf "$TRASH_DIRECTORY"
        [ -z "$TEST_OUTSIDE" ] || rm -rf "$TEST_OUTSIDE"
        exit 0
    fi
    say "# trash kept: $TRASH_DIRECTORY"
    exit 1
}

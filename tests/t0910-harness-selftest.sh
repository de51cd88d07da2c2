#!/bin/bash
test_description='tests/lib.sh itself: prerequisites and skips, chain-lint, --run, --verbose'
. "$(dirname "$0")/lib.sh"

# run_sub NAME [OPTIONS]: run the script NAME.sh (written by the test, sourcing
# lib.sh) with OPTIONS only (not ours from tests/run); its output goes to
# NAME.out, its exit status to NAME.rc.
run_sub() {
    local name=$1
    shift
    { env -u TEST_RUN -u TEST_VERBOSE -u TEST_CHAIN_LINT bash "./$name.sh" "$@" >"$name.out" 2>&1
        echo $? >"$name.rc"; }
}

sub_header() {
    printf '#!/bin/bash\n. "%s/lib.sh"\n' "$TEST_DIRECTORY"
}

test_expect_success 'a missing prerequisite skips the test, says why, and is counted' '
    { sub_header && cat <<-\EOF; } >selftest-prereq.sh &&
	test_set_prereq HAVE
	test_lazy_prereq NEVER "echo no such thing here; false"
	test_expect_success HAVE "runs" "true"
	test_expect_success NEVER "skipped" "false"
	test_expect_success !NEVER "runs without NEVER" "true"
	test_expect_success HAVE,NEVER "skipped too" "false"
	test_done
	EOF
    run_sub selftest-prereq &&
    test "$(cat selftest-prereq.rc)" = 0 &&
    grep "^ok 1 - runs$" selftest-prereq.out &&
    grep "^ok 2 # skip skipped (missing NEVER: no such thing here)$" selftest-prereq.out &&
    grep "^ok 3 - runs without NEVER$" selftest-prereq.out &&
    grep "^ok 4 # skip skipped too (missing NEVER" selftest-prereq.out &&
    grep "^# passed=2 failed=0 skipped=2$" selftest-prereq.out
'

test_expect_success 'test_skip_all ends the script as one skip with its reason' '
    { sub_header && cat <<-\EOF; } >selftest-skipall.sh &&
	test_skip_all "nothing to do here"
	test_expect_success "never reached" "false"
	EOF
    run_sub selftest-skipall &&
    test "$(cat selftest-skipall.rc)" = 0 &&
    grep "^ok 1 # skip selftest-skipall (nothing to do here)$" selftest-skipall.out &&
    grep "^# passed=0 failed=0 skipped=1$" selftest-skipall.out
'

test_expect_success 'chain-lint: a missing && fails the test without running it' '
    { sub_header && cat <<-\EOF; } >selftest-chain.sh &&
	test_expect_success "intact" "
	    true &&
	    for i in 1 2; do true || return 1; done &&
	    { echo bg & } &&
	    wait
	"
	test_expect_success "broken" "
	    false
	    touch ran-anyway
	"
	test_done
	EOF
    run_sub selftest-chain &&
    test "$(cat selftest-chain.rc)" = 1 &&
    grep "^ok 1 - intact$" selftest-chain.out &&
    grep "^not ok 2 - broken$" selftest-chain.out &&
    grep "broken &&-chain" selftest-chain.out &&
    test ! -e "$REPO_ROOT/build/trash/selftest-chain/ran-anyway" &&
    rm -rf "$REPO_ROOT/build/trash/selftest-chain" &&
    run_sub selftest-chain --no-chain-lint &&
    grep "^ok 2 - broken$" selftest-chain.out &&
    rm -rf "$REPO_ROOT/build/trash/selftest-chain"
'

test_expect_success '--run=N runs only test N, --verbose shows bodies and output' '
    { sub_header && cat <<-\EOF; } >selftest-run.sh &&
	test_expect_success "one" "echo output-of-one"
	test_expect_success "two" "echo output-of-two"
	test_expect_success "three" "echo output-of-three"
	test_done
	EOF
    run_sub selftest-run --run=2 &&
    test "$(cat selftest-run.rc)" = 0 &&
    grep "^ok 1 # skip one (not in --run=2)$" selftest-run.out &&
    grep "^ok 2 - two$" selftest-run.out &&
    grep "^ok 3 # skip three (not in --run=2)$" selftest-run.out &&
    ! grep "output-of" selftest-run.out &&
    run_sub selftest-run --verbose --run=1,3 &&
    grep "^expecting success of 1 .one.:" selftest-run.out &&
    grep "^    | output-of-one$" selftest-run.out &&
    grep "^    | output-of-three$" selftest-run.out &&
    ! grep "output-of-two" selftest-run.out
'

test_done

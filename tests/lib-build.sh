# Helpers for the chrun-build tests (sourced after lib.sh).

# build_refused CTX PATTERN [OPTION]...: `chrun-build -q [OPTION]... CTX`
# exits 1 with one error line matching PATTERN and prints nothing on stdout;
# the store is unchanged, and so is the directory $BUILD_GUARDED_TREE (a
# host tree a hostile build must not reach) when the script sets it.
build_refused() {
    br_ctx=$1 br_pattern=$2 &&
    shift 2 &&
    store_snapshot >before &&
    { test -z "${BUILD_GUARDED_TREE:-}" ||
        tree_snapshot "$BUILD_GUARDED_TREE" >"$BUILD_GUARDED_TREE.before"; } &&
    test_expect_code 1 chrun-build -q "$@" "$br_ctx" >out 2>err &&
    test_one_error_line chrun-build err "$br_pattern" &&
    test ! -s out &&
    store_snapshot >after && test_cmp before after &&
    { test -z "${BUILD_GUARDED_TREE:-}" || {
        tree_snapshot "$BUILD_GUARDED_TREE" >"$BUILD_GUARDED_TREE.after" &&
        test_cmp "$BUILD_GUARDED_TREE.before" "$BUILD_GUARDED_TREE.after"; }; }
}

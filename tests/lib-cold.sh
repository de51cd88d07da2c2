# Cold `chrun run` helpers (source after lib.sh and lib-registry.sh).
#
#   cold_image_push REPO:TAG SEED [bad-diff-id]
#       Pushes to $REGISTRY a two-layer image (testdata/run-cold/make-image.py:
#       busybox, then cold/first, a 2 MiB cold/big and cold/last) and prints
#       its second layer's digest.
#   cold_wait_for GLOB
#       Until a file matching GLOB exists (chrun's own progress, such as an
#       entry in a staging tree), through test_wait_until.
#   link_start NAME [link-proxy.py ARGS...]
#       Starts scripts/link-proxy.py in front of $REGISTRY, stopped at exit;
#       sets $NAME to its 127.0.0.1:PORT.

cold_image_push() { # REPO:TAG SEED [FLAG]
    local layout layer
    layout=$(mktemp -d "${TRASH_DIRECTORY:-${TMPDIR:-/tmp}}/cold.XXXXXX") &&
    layer=$("$_fixture_py" "$REPO_ROOT/testdata/run-cold/make-image.py" "$layout" img "$2" \
        ${3:+"$3"}) &&
    _fixture_skopeo_push "$REGISTRY/$1" "oci:$layout:img" || return 1
    rm -rf "$layout"
    printf '%s\n' "$layer"
}

link_start() { # NAME [ARGS...]
    local name=$1 dir pid
    shift
    dir=$(mktemp -d "${TRASH_DIRECTORY:-${TMPDIR:-/tmp}}/link.XXXXXX") || return 1
    "$_fixture_py" "$REPO_ROOT/scripts/link-proxy.py" --upstream "$REGISTRY" \
        --addr-file "$dir/addr" "$@" </dev/null >"$dir/out" 2>&1 &
    pid=$!
    _registry_atexit "kill $pid"
    # the proxy renames its address file into place once it listens
    test_wait_until "the link proxy's address" test -s "$dir/addr" ||
        { cat "$dir/out" >&2; return 1; }
    export "$name=$(cat "$dir/addr")"
}

_cold_glob_exists() { compgen -G "$1" >/dev/null; }
cold_wait_for() { # GLOB
    test_wait_until "$1" _cold_glob_exists "$1"
}

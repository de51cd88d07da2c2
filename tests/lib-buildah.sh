# buildah as the oracle for chrun-build; source after tests/lib.sh,
# tests/lib-registry.sh and tests/lib-fixtures.sh.
#
#   buildah_setup
#       Private buildah state under $TRASH_DIRECTORY: vfs storage (root and
#       runroot), a signature policy accepting anything and a registries.conf
#       with no search registries (so nothing ever leaves 127.0.0.1), chroot
#       isolation. Sets BUILDAH (the command with those global options) and
#       BUILDAH_BUD_OPTS. Needs buildah (1.28 here) and root for vfs.
#   oracle_base NAME
#       Pushes fixture image NAME (see scripts/make-fixtures) to $REGISTRY as
#       fixture/NAME:1, pulls it into chrun's store, and echoes the reference
#       both builders use as FROM ("$REGISTRY/fixture/NAME:1").
#   oracle_build CASE_DIR BASE_REF OUT [BUILD-ARGS...]
#       Builds CASE_DIR (a Dockerfile plus its context, e.g.
#       testdata/build/oracle/<case>; the Dockerfile starts with `ARG BASE`
#       and `FROM ${BASE}`) twice, with --build-arg BASE=BASE_REF and
#       BUILD-ARGS ("--build-arg K=V"): buildah bud --layers into OUT/buildah
#       (image pushed to an OCI layout, unpacked with umoci) and chrun-build
#       (chrun-unpack). Leaves OUT/{buildah,chrun}/rootfs,
#       OUT/{buildah,chrun}.config (the fields compared, as normalized JSON)
#       and OUT/chrun.bundle (for chrun-exec).
#   oracle_compare OUT
#       test_cmp of the two configs, then tests/treecmp of the two rootfs
#       trees (types, modes, owners, contents, symlink targets, hardlink
#       groups, xattrs), also kept in OUT/tree.diff. Prints every
#       difference; fails if there is one.
#   oracle_case CASE_DIR BASE_REF
#       oracle_build + oracle_compare into $TRASH_DIRECTORY/oracle-<case>;
#       then, if CASE_DIR/expected-output exists, the chrun image's default
#       command (chrun-exec on its bundle) must print exactly that. A case
#       with a file known-difference is one where chrun is known to differ:
#       its configs must match and treecmp must print exactly that file (so
#       the test fails, and the file must go, once chrun is fixed).
#
# What is compared of the config: Entrypoint, Cmd, Env, User, WorkingDir,
# ExposedPorts, Volumes, StopSignal, Healthcheck, OnBuild and Labels (without
# buildah's own io.buildah.version label); an empty object, list or
# string, or a missing field, all count as null. What buildah leaves that Docker does not: RUN in
# buildah 1.28 creates empty mount points /etc/hostname, /etc/hosts,
# /etc/resolv.conf and /run in the image; those are dropped from buildah's
# tree when they are empty and chrun's tree has no such entry.

_lib_buildah_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${REPO_ROOT:=$(cd "$_lib_buildah_dir/.." && pwd)}"

buildah_setup() {
    local d=$TRASH_DIRECTORY/buildah-conf
    command -v buildah >/dev/null || { echo "buildah is not installed" >&2; return 1; }
    mkdir -p "$d" &&
    printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >"$d/policy.json" &&
    printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$d/registries.conf" &&
    export CONTAINERS_REGISTRIES_CONF=$d/registries.conf BUILDAH_ISOLATION=chroot \
        BUILDAH_FORMAT=oci REGISTRY_AUTH_FILE=$d/auth.json &&
    echo '{}' >"$d/auth.json" &&
    BUILDAH="buildah --storage-driver vfs --root $TRASH_DIRECTORY/buildah --runroot $TRASH_DIRECTORY/buildah-run"
    BUILDAH_BUD_OPTS="--layers --tls-verify=false --isolation chroot --signature-policy $d/policy.json"
    export BUILDAH BUILDAH_BUD_OPTS
}

oracle_base() { # NAME
    local ref=${REGISTRY:?registry_start plain first}/fixture/$1:1
    fixture_push "$1" "fixture/$1:1" &&
    chrun-pull -q "$ref" >/dev/null &&
    printf '%s\n' "$ref"
}

# The compared config fields of a config JSON document on stdin.
_oracle_config_fields() {
    jq -S '.config // {} |
        {Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts, Volumes, StopSignal,
         Healthcheck, OnBuild, Labels: ((.Labels // {}) | del(.["io.buildah.version"]))} |
        map_values(if . == {} or . == "" or . == [] then null else . end)'
}

# Drop buildah's RUN mount points (see above) from ROOTFS_B when ROOTFS_C
# has nothing there.
_oracle_drop_buildah_mountpoints() { # ROOTFS_B ROOTFS_C
    local p
    for p in etc/hostname etc/hosts etc/resolv.conf; do
        if [ -f "$1/$p" ] && [ ! -s "$1/$p" ] && [ ! -e "$2/$p" ] && [ ! -L "$2/$p" ]; then
            rm -f "$1/$p"
        fi
    done
    if [ -d "$1/run" ] && [ -z "$(ls -A "$1/run")" ] && [ ! -e "$2/run" ] && [ ! -L "$2/run" ]; then
        rmdir "$1/run"
    fi
}

oracle_build() { # CASE_DIR BASE_REF OUT [BUILD-ARGS...]
    local case_dir=$1 base=$2 out=$3 m c format
    shift 3
    rm -rf "$out" && mkdir -p "$out" &&
    cp -a "$case_dir" "$out/ctx" &&
    rm -f "$out/ctx/expected-output" "$out/ctx/known-difference" "$out/ctx/docker-format" &&
    # buildah; a case with a docker-format file is built in docker format,
    # the only one where buildah keeps HEALTHCHECK, ONBUILD, SHELL, STOPSIGNAL
    if [ -f "$case_dir/docker-format" ]; then format=docker; else format=oci; fi &&
    $BUILDAH bud $BUILDAH_BUD_OPTS --format "$format" -q --build-arg "BASE=$base" "$@" \
        -t oracle-x -f "$out/ctx/Dockerfile" "$out/ctx" >"$out/buildah.id" 2>"$out/buildah.log" ||
        { cat "$out/buildah.log" >&2; return 1; }
    $BUILDAH push --signature-policy "$TRASH_DIRECTORY/buildah-conf/policy.json" -q oracle-x \
        "oci:$out/buildah.oci:x" >/dev/null 2>>"$out/buildah.log" &&
    umoci unpack --image "$out/buildah.oci:x" "$out/buildah" >/dev/null &&
    m=$(jq -r '.manifests[0].digest' "$out/buildah.oci/index.json") &&
    c=$(jq -r .config.digest "$out/buildah.oci/blobs/sha256/${m#sha256:}") &&
    if [ "$format" = docker ]; then
        # an OCI layout has no place for those fields: take the docker config
        $BUILDAH inspect --type image oracle-x | jq .Docker |
            _oracle_config_fields >"$out/buildah.config"
    else
        _oracle_config_fields <"$out/buildah.oci/blobs/sha256/${c#sha256:}" >"$out/buildah.config"
    fi &&
    # chrun
    chrun-build -q --build-arg "BASE=$base" "$@" -t oracle-x:1 "$out/ctx" >"$out/chrun.id" &&
    chrun-unpack oracle-x:1 "$out/chrun" >/dev/null &&
    chrun-inspect oracle-x:1 | jq '.Config' | _oracle_config_fields >"$out/chrun.config" &&
    _oracle_drop_buildah_mountpoints "$out/buildah/rootfs" "$out/chrun/rootfs"
}

oracle_compare() { # OUT
    local rc=0
    test_cmp "$1/buildah.config" "$1/chrun.config" || rc=1
    (cd "$1" && "$REPO_ROOT/tests/treecmp" buildah/rootfs chrun/rootfs) >"$1/tree.diff" || rc=1
    cat "$1/tree.diff"
    return $rc
}

oracle_case() { # CASE_DIR BASE_REF
    local out=$TRASH_DIRECTORY/oracle-$(basename "$1")
    oracle_build "$1" "$2" "$out" || return 1
    if [ -f "$1/known-difference" ]; then
        # a difference already reported: the test holds until it changes
        test_cmp "$out/buildah.config" "$out/chrun.config" &&
        ! oracle_compare "$out" >/dev/null &&
        test_cmp "$1/known-difference" "$out/tree.diff" || return 1
    else
        oracle_compare "$out" || return 1
    fi
    if [ -f "$1/expected-output" ]; then
        # chrun-exec adds mount points to the rootfs it runs: use a copy
        chrun-unpack oracle-x:1 "$out/chrun-run" >/dev/null &&
        chrun-exec "$out/chrun-run" >"$out/run.out" 2>&1 &&
        test_cmp "$1/expected-output" "$out/run.out"
    fi
}

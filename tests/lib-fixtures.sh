# Test images for chrun's integration tests; source after tests/lib.sh.
#
#   fixtures_ensure                  build the cache if needed, export FIXTURES
#   fixture_digest NAME              manifest digest of oci-layout tag NAME
#   fixture_push NAME DEST           oci-layout tag NAME -> registry (OCI types)
#   fixture_push_v2s2 NAME DEST      same, converted to docker v2s2 types
#   fixture_push_corrupt_layer DEST  push a one-layer image, then change one
#                                    byte of its layer in the registry storage
#   fixture_umoci_unpack NAME BUNDLE oracle: umoci's unpack of tag NAME
#   fixture_hostile_archive KIND OUT write a hostile archive, echo OUT
#   fixture_make_big DIR SIZE_MB     big docker-archive for benches, echo path
#   load_refused FILE ERE            chrun-load FILE fails with one named error
#                                    matching ERE, the store unchanged
#
# DEST is REPO:TAG on $REGISTRY, or HOST:PORT/REPO:TAG for another registry;
# pushes to $REGISTRY_AUTH carry the test credentials. The fixture files are
# listed in scripts/make-fixtures.

_lib_fixtures_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${REPO_ROOT:=$(cd "$_lib_fixtures_dir/.." && pwd)}"
_fixture_py=$(command -v /usr/bin/python3 || command -v python3)
_fixture_helper=$REPO_ROOT/scripts/fixture-tar.py

# Every name a test may rely on; t0900 checks that each exists.
# shellcheck disable=SC2034 # these lists are for the test scripts
FIXTURE_FILES="oci-layout/index.json oci-layout/oci-layout
basic.oci.tar full.oci.tar basic.docker.tar full.docker.tar
full.docker-layout/manifest.json multi.docker.tar
basic.docker.tar.gz basic.docker.tar.zst basic.oci.tar.gz basic.oci.tar.zst"
# shellcheck disable=SC2034
FIXTURE_TAGS="basic full user basic-zstd"
# shellcheck disable=SC2034
FIXTURE_HOSTILE_KINDS="truncated truncated-gzip truncated-zstd corrupt-gzip
corrupt-zstd blob-mismatch blob-mismatch-oci size-mismatch missing-blob
bad-digest bad-digest-algo bad-digest-dotdot bad-digest-layer not-json
not-json-oci deep-json deep-json-oci huge-json huge-json-oci layer-not-gzip
dotdot-layer abs-layer symlink-layer symlink-layer-rel"

fixtures_ensure() {
    FIXTURES=$("$REPO_ROOT/scripts/make-fixtures") || return 1
    export FIXTURES
}

fixture_digest() {
    jq -r --arg t "$1" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$FIXTURES/oci-layout/index.json"
}

# DEST without a host part goes to $REGISTRY.
# As docker decides: the first of several components is a host if it has
# a "." or ":" or is localhost.
_fixture_dest() {
    case $1 in
    */*) ;;
    *) set -- "${REGISTRY:?registry_start plain first}/$1" ;;
    esac
    case ${1%%/*} in
    *[:.]* | localhost) printf '%s\n' "$1" ;;
    *) printf '%s\n' "${REGISTRY:?registry_start plain first}/$1" ;;
    esac
}

_fixture_skopeo_push() { # DEST SKOPEO-ARGS... (source last)
    local dest creds=()
    dest=$(_fixture_dest "$1") || return 1
    shift
    if [ -n "${REGISTRY_AUTH-}" ] && [ "${dest%%/*}" = "$REGISTRY_AUTH" ]; then
        creds=(--dest-creds "$REGISTRY_USER:$REGISTRY_PASS")
    fi
    skopeo --insecure-policy copy -q --dest-tls-verify=false "${creds[@]}" \
        "$@" "docker://$dest" >/dev/null
}

fixture_push() { # NAME DEST
    fixtures_ensure &&
    _fixture_skopeo_push "$2" "oci:$FIXTURES/oci-layout:$1"
}

fixture_push_v2s2() { # NAME DEST
    fixtures_ensure &&
    _fixture_skopeo_push "$2" --format v2s2 "oci:$FIXTURES/oci-layout:$1"
}

# The registry checks digests on upload, so a bad layer can only be made
# after the push, in its storage. The image gets a layer no other image has,
# so other repositories of the same registry stay intact. Echoes the digest
# of the corrupted layer.
fixture_push_corrupt_layer() { # DEST
    local dest layout name_var layer blob
    dest=$(_fixture_dest "$1") || return 1
    layout=$(mktemp -d "${TRASH_DIRECTORY:-${TMPDIR:-/tmp}}/corrupt.XXXXXX") &&
    layer=$("$_fixture_py" "$_fixture_helper" unique-image "$layout" corrupt "$dest") &&
    _fixture_skopeo_push "$dest" "oci:$layout:corrupt" || return 1
    name_var=REGISTRY
    [ "${dest%%/*}" != "${REGISTRY_AUTH-}" ] || name_var=REGISTRY_AUTH
    blob=$(registry_blob_path "$name_var" "$layer")
    "$_fixture_py" "$_fixture_helper" flip-byte "$blob" || return 1
    rm -rf "$layout"
    printf '%s\n' "$layer"
}

fixture_umoci_unpack() { # NAME BUNDLE
    fixtures_ensure || return 1
    if [ "$(id -u)" = 0 ]; then
        umoci unpack --image "$FIXTURES/oci-layout:$1" "$2" >/dev/null
    else
        umoci unpack --rootless --image "$FIXTURES/oci-layout:$1" "$2" >/dev/null
    fi
}

# KINDs (made from basic unless said otherwise):
#   docker-archive: truncated, blob-mismatch (layer bytes changed, manifest
#     and config not: diff_id mismatch), dotdot-layer (Layers entry
#     "../x/layer.tar"), abs-layer ("/etc/passwd"), symlink-layer (layer
#     member is a symlink to /etc/passwd), symlink-layer-rel (to
#     ../../../../etc/passwd), not-json, deep-json (100000 nested arrays),
#     huge-json (10 MiB of valid JSON) -- all as manifest.json
#   compressed docker-archive: truncated-gzip, truncated-zstd, corrupt-gzip,
#     corrupt-zstd (16 bytes flipped in the middle)
#   OCI layout, a directory, or an oci-archive if OUT ends in .tar:
#     blob-mismatch-oci (layer blob bytes != its digest name), size-mismatch
#     (layer descriptor size 1000 short), missing-blob (index names an absent
#     manifest), bad-digest ("sha256:XYZ" in index.json), bad-digest-algo
#     ("md5:..."), bad-digest-dotdot ("sha256:../../../../../../etc/passwd"),
#     bad-digest-layer (the same as a layer digest in the manifest),
#     not-json-oci / deep-json-oci / huge-json-oci (the manifest blob, with a
#     correct digest), layer-not-gzip (gzip media type, plain bytes)
fixture_hostile_archive() { # KIND OUT
    fixtures_ensure || return 1
    rm -rf "$2"
    "$_fixture_py" "$_fixture_helper" hostile "$1" "$FIXTURES" "$2" || return 1
    printf '%s\n' "$2"
}

# Random (incompressible) data in 4 layers over the busybox layer, as a
# docker-archive DIR/big-SIZEm.docker.tar tagged fixture/big:SIZEm.
fixture_make_big() { # DIR SIZE_MB
    local out=$1/big-$2m.docker.tar
    mkdir -p "$1" &&
    "$_fixture_py" "$_fixture_helper" layer-basic "$1/.base-layer.tar" &&
    "$_fixture_py" "$_fixture_helper" big-docker "$out" "$2" "$1/.base-layer.tar" &&
    rm -f "$1/.base-layer.tar" &&
    printf '%s\n' "$out"
}

# Images with a hostile layer, for unpack tests (an OCI layout directory with
# tag `evil`, or an oci-archive if OUT ends in .tar). Each attacks the host
# path TARGET (absolute; default $TRASH_DIRECTORY/outside/victim): a safe
# unpacker refuses the image or keeps everything inside the rootfs, and
# TARGET is neither created, changed nor removed (create it before to check
# the last two). KINDs:
#   abs-path dotdot-path dotdot-inner         entry names leaving the rootfs
#   symlink-escape symlink-escape-abs         layer 1: escape -> TARGET's dir
#                                             (relative / absolute), layer 2:
#                                             escape/BASENAME
#   symlink-escape-same-layer                 both in one layer
#   symlink-file-overwrite                    escape -> TARGET, then a file
#                                             named escape in layer 2
#   hardlink-escape hardlink-abs              link -> TARGET (../ / absolute),
#                                             then a file written as link
#   hardlink-via-symlink                      link -> escape/BASENAME
#   whiteout-escape                           ../../TARGET-DIR/.wh.BASENAME
#   whiteout-dotdot                           srv/.wh.. and .wh..
#   whiteout-via-symlink                      escape/.wh.BASENAME
#   device                                    char device 1,3 (refused when
#                                             unprivileged; fine as root)
# shellcheck disable=SC2034
FIXTURE_HOSTILE_IMAGE_KINDS="abs-path dotdot-path dotdot-inner symlink-escape
symlink-escape-abs symlink-escape-same-layer symlink-file-overwrite
hardlink-escape hardlink-abs hardlink-via-symlink whiteout-escape
whiteout-dotdot whiteout-via-symlink device"

fixture_hostile_image() { # KIND OUT [TARGET]
    local target=${3:-${TRASH_DIRECTORY:-/tmp}/outside/victim}
    rm -rf "$2"
    "$_fixture_py" "$_fixture_helper" hostile-image "$1" "$target" "$2" >/dev/null || return 1
    printf '%s\n' "$2"
}

# Push such an image as DEST (REPO:TAG on $REGISTRY or HOST:PORT/REPO:TAG).
fixture_push_hostile_image() { # KIND DEST [TARGET]
    local layout
    layout=$(mktemp -d "${TRASH_DIRECTORY:-${TMPDIR:-/tmp}}/evil.XXXXXX") &&
    fixture_hostile_image "$1" "$layout/oci" "${3-}" >/dev/null &&
    _fixture_skopeo_push "$2" "oci:$layout/oci:evil" &&
    rm -rf "$layout"
}

# Push any image skopeo can read (e.g. docker-archive:FILE from
# fixture_make_big) as DEST.
fixture_push_from() { # SKOPEO-SOURCE DEST
    _fixture_skopeo_push "$2" "$1"
}

# load_refused FILE ERE: chrun-load FILE exits 1 with one error line naming
# FILE and matching ERE, and the store (tmp/ included) is unchanged.
load_refused() {
    local file=$1 pattern=$2
    store_snapshot >before &&
    test_expect_code 1 chrun-load "$file" >out 2>err &&
    test_one_error_line chrun-load err "'$file'.*$pattern" &&
    test ! -s out &&
    store_snapshot >after &&
    test_cmp before after &&
    test -z "$(ls -A "$CHRUN_ROOT/tmp")"
}

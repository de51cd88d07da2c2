# Test registries for chrun's integration tests; source after tests/lib.sh.
#
#   registry_start plain|auth [NAME]
#       Starts docker-registry on a free 127.0.0.1 port with storage in the
#       trash directory and stops it when the script exits (test_atexit).
#       Exports, for NAME (default REGISTRY for plain, REGISTRY_AUTH for auth):
#         $NAME          127.0.0.1:PORT
#         ${NAME}_DIR    config.yml, htpasswd, registry.log, storage/
#         ${NAME}_LOG    the registry's access and error log (grep it)
#       and REGISTRY_USER=testuser REGISTRY_PASS=testpass for `auth`.
#   registry_stop NAME
#   registry_blob_path NAME DIGEST   where the registry keeps a blob's bytes
#   registry_requests NAME           number of access-log lines so far
#   registry_put_index REPO TAG INDEX_TYPE ENTRY_TYPE TAG_A TAG_B
#       PUTs to $REGISTRY an index REPO:TAG whose host-platform entry is
#       REPO:TAG_A and linux/$OTHER_ARCH/v8 entry REPO:TAG_B (both fetched as
#       ENTRY_TYPE). Leaves REPO-TAG.host, .other and .index (digests) in the
#       current directory. HOST_ARCH and OTHER_ARCH are set on sourcing.
#   registry_token_start NAME STORAGE [TOKEN-SERVER-ARGS...]
#       A token server (scripts/token-server.py, signing with a key it makes)
#       and a docker-registry with `auth: token` trusting it, storing in
#       STORAGE (a plain registry's storage/ to serve its images). Sets $NAME
#       (127.0.0.1:PORT) and ${NAME}_TOKEN_DIR (the server's files).
#   evil_start MODE [ARGS...]
#       Starts scripts/evil-registry.py (modes are listed there) in front of
#       $REGISTRY; ARGS go to it, so `--upstream "$REGISTRY_AUTH"` fronts
#       another registry. Sets EVIL (127.0.0.1:PORT), EVIL_LOG (its requests)
#       and EVIL_OTHER_LOG (what its "other host" listener received).
#
# Registries serve plain HTTP: skopeo needs --tls-verify=false
# (--src-/--dest-tls-verify=false for copy) and, for auth,
# --creds/--dest-creds "$REGISTRY_USER:$REGISTRY_PASS".

_lib_registry_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${REPO_ROOT:=$(cd "$_lib_registry_dir/.." && pwd)}"

REGISTRY_USER=testuser
REGISTRY_PASS=testpass
export REGISTRY_USER REGISTRY_PASS

# libcurl honours http_proxy even for loopback; Go tools (skopeo) do not.
case ",${no_proxy-}," in
*,127.0.0.1,*) ;;
*) no_proxy=${no_proxy:+$no_proxy,}127.0.0.1,localhost; export no_proxy NO_PROXY=$no_proxy ;;
esac

# lib.sh's test_atexit when present; a chained EXIT trap otherwise, so the
# library also works from plain scripts.
_registry_atexit() {
    if declare -F test_atexit >/dev/null; then
        test_atexit "$1"
    else
        _registry_exit_cmds="$1; ${_registry_exit_cmds-}"
        trap 'eval "$_registry_exit_cmds"' EXIT
    fi
}

registry_start() {
    local mode=${1-} name=${2-} base dir addr
    case $mode in
    plain) name=${name:-REGISTRY} ;;
    auth) name=${name:-REGISTRY_AUTH} ;;
    *) echo "registry_start: usage: registry_start plain|auth [NAME]" >&2; return 2 ;;
    esac
    base=${TRASH_DIRECTORY:-}
    if [ -z "$base" ]; then
        base=$(mktemp -d "${TMPDIR:-/tmp}/chrun-registry.XXXXXX") || return 1
    fi
    dir=$base/registry-$name
    addr=$("$REPO_ROOT/scripts/registry" start "$mode" "$dir" $$) || return 1
    export "$name=$addr" "${name}_DIR=$dir" "${name}_LOG=$dir/registry.log"
    _registry_atexit "registry_stop $name"
}

registry_stop() {
    local dir_var=${1:-REGISTRY}_DIR
    [ -n "${!dir_var-}" ] || return 0
    "$REPO_ROOT/scripts/registry" stop "${!dir_var}"
}

registry_blob_path() { # NAME sha256:HEX
    local dir_var=$1_DIR hex=${2#sha256:}
    printf '%s\n' "${!dir_var}/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

registry_requests() {
    local log_var=${1:-REGISTRY}_LOG
    grep -c '" [0-9][0-9][0-9] ' "${!log_var}" || true
}

case $(uname -m) in
x86_64) HOST_ARCH=amd64 OTHER_ARCH=arm64 ;;
aarch64) HOST_ARCH=arm64 OTHER_ARCH=amd64 ;;
*) HOST_ARCH=$(uname -m) OTHER_ARCH=amd64 ;;
esac

registry_put_index() {
    local repo=$1 tag=$2 itype=$3 mtype=$4 da db sa sb
    curl -s --noproxy "*" -H "Accept: $mtype" "http://$REGISTRY/v2/$repo/manifests/$5" >a.json &&
    curl -s --noproxy "*" -H "Accept: $mtype" "http://$REGISTRY/v2/$repo/manifests/$6" >b.json &&
    da=sha256:$(sha256sum <a.json | cut -d" " -f1) && sa=$(stat -c %s a.json) &&
    db=sha256:$(sha256sum <b.json | cut -d" " -f1) && sb=$(stat -c %s b.json) &&
    jq -n --arg it "$itype" --arg mt "$mtype" --arg da "$da" --arg db "$db" \
        --argjson sa "$sa" --argjson sb "$sb" --arg ha "$HOST_ARCH" --arg oa "$OTHER_ARCH" \
        "{schemaVersion: 2, mediaType: \$it, manifests: [
          {mediaType: \$mt, digest: \$db, size: \$sb, platform: {os: \"linux\", architecture: \$oa, variant: \"v8\"}},
          {mediaType: \$mt, digest: \$da, size: \$sa, platform: {os: \"linux\", architecture: \$ha}}]}" >index.json &&
    curl -sf --noproxy "*" -X PUT -H "Content-Type: $itype" --data-binary @index.json \
        "http://$REGISTRY/v2/$repo/manifests/$tag" >/dev/null &&
    echo "$da" >"$repo-$tag.host" && echo "$db" >"$repo-$tag.other" &&
    echo "sha256:$(sha256sum <index.json | cut -d" " -f1)" >"$repo-$tag.index"
}

registry_token_start() {
    local name=$1 storage=$2 dir=$TRASH_DIRECTORY/$1 port tpid rpid py
    shift 2
    py=$(command -v /usr/bin/python3 || command -v python3)
    mkdir -p "$dir"
    "$py" "$REPO_ROOT/scripts/token-server.py" --dir "$dir" --user "$REGISTRY_USER" \
        --pass "$REGISTRY_PASS" "$@" </dev/null >"$dir/token.out" 2>&1 &
    tpid=$!
    _registry_atexit "kill $tpid"
    test_wait_until "$dir/addr" test -s "$dir/addr" || return 1
    port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/config.yml" <<-EOF2
	version: 0.1
	log:
	  level: info
	  formatter: text
	storage:
	  filesystem:
	    rootdirectory: $storage
	http:
	  addr: 127.0.0.1:$port
	  secret: chrun-test-token-secret
	auth:
	  token:
	    realm: http://$(cat "$dir/addr")/token
	    service: chrun-test-registry
	    issuer: chrun-test-issuer
	    rootcertbundle: $dir/cert.pem
	EOF2
    # docker-registry takes REGISTRY_* variables as config overrides
    env $(compgen -e | grep "^REGISTRY_" | sed "s/^/-u /") \
        docker-registry serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
    rpid=$!
    _registry_atexit "kill $rpid"
    for _ in $(seq 100); do
        [ "$(curl -s --noproxy "*" -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/v2/")" = 401 ] && break
        sleep 0.1
    done
    export "$name=127.0.0.1:$port" "${name}_TOKEN_DIR=$dir"
}

evil_start() {
    local mode=$1 dir pid py
    shift
    py=$(command -v /usr/bin/python3 || command -v python3)
    dir=$(mktemp -d "${TRASH_DIRECTORY:-${TMPDIR:-/tmp}}/evil-$mode.XXXX")
    "$py" "$REPO_ROOT/scripts/evil-registry.py" --upstream "$REGISTRY" --mode "$mode" \
        --addr-file "$dir/addr" --log "$dir/log" --other-log "$dir/other.log" "$@" \
        </dev/null >"$dir/out" 2>&1 &
    pid=$!
    _registry_atexit "kill $pid"
    test_wait_until "$dir/addr" test -s "$dir/addr" || return 1
    EVIL=$(cat "$dir/addr") EVIL_LOG=$dir/log EVIL_OTHER_LOG=$dir/other.log
    : >"$EVIL_LOG"
    : >"$EVIL_OTHER_LOG"
}

# The fixture helpers push to these registries; make them available to
# scripts that source only lib.sh and lib-registry.sh.
if ! declare -F fixture_push >/dev/null; then
    . "$_lib_registry_dir/lib-fixtures.sh"
fi

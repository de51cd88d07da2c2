# Hand-made OCI bundles for the chrun-exec tests (sourced after tests/lib.sh).
#
#   bundle_make DIR [ARGS_JSON]
#       DIR/rootfs: static busybox with every applet linked in /bin, users
#       root (0), app (1000, also in group extra 2000) and nobody (65534) in
#       /etc/passwd and /etc/group; DIR/config.json from `runc spec` with
#       process.args = ARGS_JSON (default ["sh"]), no terminal, a writable
#       rootfs, Env PATH, TERM and GREETING=hello, cwd /. Empty
#       /etc/resolv.conf and /etc/hosts exist (bind-mount targets).
#   bundle_config DIR JQ_FILTER    edit DIR/config.json with jq

bundle_make() {
    local dir=$1 args=${2:-'["sh"]'} a
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/root" \
        "$dir/rootfs/home/app" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" || return 1
    chmod 1777 "$dir/rootfs/tmp"
    cp /bin/busybox "$dir/rootfs/bin/busybox" || return 1
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$dir/rootfs/bin/$a"
    done
    cat >"$dir/rootfs/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app user:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
    cat >"$dir/rootfs/etc/group" <<'GR'
root:x:0:
tty:x:5:
app:x:1000:
extra:x:2000:app,nobody
nogroup:x:65534:
GR
    # mount points chrun-exec would otherwise create, so a run leaves the tree as it was
    : >"$dir/rootfs/etc/resolv.conf"
    : >"$dir/rootfs/etc/hosts"
    chown 1000:1000 "$dir/rootfs/home/app" 2>/dev/null
    (cd "$dir" && runc spec) || return 1
    bundle_config "$dir" ".process.terminal = false | .process.args = $args
        | .root.readonly = false
        | .process.env = [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",
                          \"TERM=xterm\", \"GREETING=hello\"]"
}

bundle_config() {
    local dir=$1 filter=$2
    jq "$filter" "$dir/config.json" >"$dir/config.json.new" &&
        mv "$dir/config.json.new" "$dir/config.json"
}

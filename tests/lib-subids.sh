# A throwaway unprivileged user with subordinate ids, for the rootless tests
# (sourced after tests/lib.sh). Everything it adds to the host (the user in
# /etc/passwd, /etc/group, /etc/shadow; its lines in /etc/subuid and
# /etc/subgid) is removed again when the script ends (test_atexit).
#
#   subids_skip_unless_root         unless we are root, end the script as
#                                   skipped (test_skip_all), with the reason
#   subids_user_add NAME START COUNT
#                                   create the system user NAME (no home) with
#                                   the range START/COUNT in both files; sets
#                                   SUBID_USER, SUBID_UID, SUBID_GID,
#                                   SUBID_START, SUBID_COUNT
#   subids_user_add_plain NAME      create NAME without ranges; sets PLAIN_UID
#   as_subid_user CMD...            run CMD as SUBID_USER (no groups)
#
# Scripts run in parallel: each uses its own user names and ranges, and every
# edit of the account files happens under one lock (shadow-utils' own lock
# makes a concurrent useradd fail rather than wait).

SUBIDS_LOCK=$REPO_ROOT/build/subids.lock
# useradd and userdel also rewrite shadow-utils' backups (/etc/passwd- and
# the like): the first script to add a user keeps copies here, the last to
# remove one puts them back.
SUBIDS_BACKUPS=$REPO_ROOT/build/subids.backups
SUBIDS_BACKUP_FILES="passwd- group- shadow- gshadow-"

subids_skip_unless_root() {
    test_have_prereq ROOT || test_skip_all "needs root to create a user with subordinate ids"
}

# _subids_locked CMD...: run CMD holding the account-files lock.
_subids_locked() {
    (
        flock -w 60 9 || exit 1
        "$@"
    ) 9>>"$SUBIDS_LOCK"
}

# _subids_append FILE LINE: add LINE to FILE (in place: same inode and mode).
_subids_append() {
    local file=$1 line=$2
    if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then
        echo "$file does not end with a newline: not touching it" >&2
        return 1
    fi
    printf '%s\n' "$line" >>"$file"
}

# _subids_remove FILE LINE: drop every line equal to LINE from FILE, in place.
_subids_remove() {
    local file=$1 line=$2 rest
    [ -e "$file" ] || return 0
    rest=$(grep -vxF -- "$line" "$file")
    if [ -n "$rest" ]; then
        printf '%s\n' "$rest" >"$file"
    else
        : >"$file"
    fi
}

_subids_useradd() {
    local name=$1 f n
    if id -u "$name" >/dev/null 2>&1; then
        echo "user '$name' exists already (a previous run?): not reusing it" >&2
        return 1
    fi
    if [ ! -e "$SUBIDS_BACKUPS/count" ]; then
        mkdir -p "$SUBIDS_BACKUPS" || return 1
        for f in $SUBIDS_BACKUP_FILES; do
            [ -e "/etc/$f" ] && { cp -p "/etc/$f" "$SUBIDS_BACKUPS/$f" || return 1; }
        done
        echo 0 >"$SUBIDS_BACKUPS/count"
    fi
    n=$(cat "$SUBIDS_BACKUPS/count")
    echo $((n + 1)) >"$SUBIDS_BACKUPS/count"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$name" && return 0
    _subids_backups_release
    return 1
}

# One user fewer: the last one out restores the backups (in place).
_subids_backups_release() {
    local f n
    [ -e "$SUBIDS_BACKUPS/count" ] || return 0
    n=$(($(cat "$SUBIDS_BACKUPS/count") - 1))
    if [ "$n" -gt 0 ]; then
        echo "$n" >"$SUBIDS_BACKUPS/count"
        return 0
    fi
    for f in $SUBIDS_BACKUP_FILES; do
        [ -e "$SUBIDS_BACKUPS/$f" ] && cat "$SUBIDS_BACKUPS/$f" >"/etc/$f"
    done
    rm -rf "$SUBIDS_BACKUPS"
}

# subids_wait_no_process UID: wait until no live process of UID is left;
# zombies waiting for their reaper do not count.
_subids_no_process() {
    ! ps -o stat= -u "$1" | grep -qv '^Z'
}
subids_wait_no_process() {
    test_wait_until "the processes of uid $1 to end" _subids_no_process "$1" && return 0
    ps -o pid,stat,cmd -u "$1" >&2
    return 1
}

# userdel refuses while a process of the user exists (zombies included):
# wait until the last ones are reaped.
_subids_userdel() {
    local name=$1
    id -u "$name" >/dev/null 2>&1 || return 0
    test_wait_until "userdel '$name'" userdel "$name" 2>/dev/null
    id -u "$name" >/dev/null 2>&1 && return 1
    _subids_backups_release
}

subids_user_add_plain() {
    local name=$1
    _subids_locked _subids_useradd "$name" || return 1
    test_atexit "_subids_locked _subids_userdel '$name'"
    PLAIN_UID=$(id -u "$name")
}

subids_user_add() {
    local name=$1 start=$2 count=$3
    _subids_locked _subids_useradd "$name" || return 1
    test_atexit "_subids_locked _subids_userdel '$name'"
    SUBID_USER=$name
    SUBID_UID=$(id -u "$name")
    SUBID_GID=$(id -g "$name")
    SUBID_START=$start
    SUBID_COUNT=$count
    _subids_locked _subids_append /etc/subuid "$name:$start:$count" || return 1
    test_atexit "_subids_locked _subids_remove /etc/subuid '$name:$start:$count'"
    _subids_locked _subids_append /etc/subgid "$name:$start:$count" || return 1
    test_atexit "_subids_locked _subids_remove /etc/subgid '$name:$start:$count'"
}

as_subid_user() {
    setpriv --reuid "$SUBID_UID" --regid "$SUBID_GID" --clear-groups \
        env CHRUN_ROOT="$CHRUN_ROOT" PATH="$PATH" HOME="$TRASH_DIRECTORY" "$@"
}

# subids_make_image NAME:TAG: store (needs lib-bundle.sh and lib-unpack.sh)
# a busybox image whose User is app (1000, also in group extra 2000), Cmd
# ["id"], with files of several owners:
#   /data 1000:1000 755, /data/mine 1000:1000 644, /data/rootonly 0:0 644,
#   /srv/other 1234:2000 (dir) holding f 1234:2000, /home/app 1000:1000,
#   /etc/motd 10:20 (second layer), /opt/x 42:42 (dir), a device node
#   /dev/null (second layer; skipped without root).
subids_make_image() {
    local ref=$1 src=$TRASH_DIRECTORY/.subids-image
    rm -rf "$src" && bundle_make "$src" >/dev/null || return 1
    mkdir -p "$src/rootfs/data" "$src/rootfs/srv/other" &&
        echo mine >"$src/rootfs/data/mine" && echo root >"$src/rootfs/data/rootonly" &&
        echo other >"$src/rootfs/srv/other/f" &&
        chown 1000:1000 "$src/rootfs/data" "$src/rootfs/data/mine" "$src/rootfs/home/app" &&
        chown -R 1234:2000 "$src/rootfs/srv/other" &&
        tar --numeric-owner -C "$src/rootfs" -cf "$src/l1.tar" . || return 1
    unpack_mktar "$src/l2.tar" <<-EOT || return 1
	file etc/motd data=hi uid=10 gid=20
	dir opt mode=755
	dir opt/x uid=42 gid=42 mode=700
	chr dev/null major=1 minor=3 mode=666
	EOT
    unpack_mkimage "$ref" user=app 'cmd=["id"]' "$src/l1.tar" "$src/l2.tar" >/dev/null
}

# subids_owners ROOTFS: "uid:gid /path" of every entry below ROOTFS, sorted,
# without the mount points chrun-exec covers (/proc, /dev, /sys and the
# bound /etc/resolv.conf and /etc/hosts).
subids_owners() {
    (cd "$1" && find . -printf '%U:%G /%P\n') | subids_filter_owners
}

subids_filter_owners() {
    sed 's|//*$|/|' | grep -Ev ' /(proc|dev|sys)(/|$)| /etc/(resolv\.conf|hosts)$' | LC_ALL=C sort -k2
}

# subids_host_owners < "uid:gid /path": the host ids a subordinate-id unpack
# gives them: 0 is the caller, N > 0 is SUBID_START+N-1.
subids_host_owners() {
    awk -v u="$SUBID_UID" -v g="$SUBID_GID" -v s="$SUBID_START" '{
        split($1, id, ":")
        hu = id[1] == 0 ? u : s + id[1] - 1
        hg = id[2] == 0 ? g : s + id[2] - 1
        print hu ":" hg " " $2
    }'
}

#!/bin/bash
test_description='chrun-unpack: an image whose /etc/passwd or /etc/group is a FIFO or a device node is refused without opening it'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

CANARY=$TRASH_DIRECTORY/canary
mkdir -p "$CANARY" out && echo precious >"$CANARY/file"

# accounts NAME USER LINE...: image NAME:1 with config User USER and one layer
# made of the unpack_mktar LINEs, then chrun-unpack (given 20 s: a hang fails).
accounts() {
    local name=$1 user=$2
    shift 2
    printf "%s\n" "$@" | unpack_mktar "$name.tar" &&
    unpack_mkimage "$name:1" user="$user" "$name.tar" >/dev/null
}

test_expect_success 'setup: chrun-unpack gets at most 20 s' '
    mkdir bin && printf "#!/bin/sh\nexec timeout 20 \"%s\" \"\$@\"\n" "$(command -v chrun-unpack)" \
        >bin/chrun-unpack && chmod +x bin/chrun-unpack
'
PATH=$TRASH_DIRECTORY/bin:$PATH

test_expect_success '/etc/passwd is a FIFO' '
    accounts pfifo someone "dir etc" "fifo etc/passwd" &&
    unpack_hostile_check pfifo:1 "./etc/passwd. of the image: not a regular file"
'

test_expect_success '/etc/group is a FIFO' '
    accounts gfifo someone:staff "dir etc" "file etc/passwd data=someone:x:1000:1000::/:/bin/sh" \
        "fifo etc/group" &&
    unpack_hostile_check gfifo:1 "./etc/group. of the image: not a regular file"
'

# As root the layer makes real device nodes. 1,3 is /dev/null; 4095,4095 has
# no driver, so opening it would fail with ENXIO instead of being refused.
test_expect_success ROOT '/etc/passwd is a character device (root)' '
    {
        accounts pnull someone "dir etc" "chr etc/passwd major=1 minor=3" &&
        unpack_hostile_check pnull:1 "./etc/passwd. of the image: not a regular file" &&
        accounts pnodrv someone "dir etc" "chr etc/passwd major=4095 minor=4095" &&
        unpack_hostile_check pnodrv:1 "./etc/passwd. of the image: not a regular file" &&
        accounts gblk someone:staff "dir etc" \
            "file etc/passwd data=someone:x:1000:1000::/:/bin/sh" \
            "blk etc/group major=4095 minor=4095" &&
        unpack_hostile_check gblk:1 "./etc/group. of the image: not a regular file"
    }
'

test_expect_success 'a symlinked /etc/passwd inside the image still resolves the user' '
    accounts plink someone "dir etc" "dir data" \
        "file data/passwd data=someone:x:1234:4321::/:/bin/sh" \
        "sym etc/passwd target=/data/passwd" &&
    chrun-unpack plink:1 out/plink >/dev/null &&
    test "$(jq -c .process.user out/plink/config.json)" = "{\"uid\":1234,\"gid\":4321}"
'

test_done

#!/bin/bash
test_description='chrun-build: ADD of an http(s) URL (file name, mode, mtime, --checksum, cache, redirects)'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-registry.sh &&
    . "$TEST_DIRECTORY"/lib-build.sh

export SOURCE_DATE_EPOCH=1700000000
HELLO_SUM=sha256:$(printf 'hello\n' | sha256sum | cut -d" " -f1)

# http_start NAME: tests/http-fixture.py on a free 127.0.0.1 port; its URL
# goes in $WEB_URL and its pid in $WEB_PID. It writes its port to a ready
# file once it listens.
http_start() {
    local dir=$TRASH_DIRECTORY/web-$1
    mkdir -p "$dir" &&
    python3 "$TEST_DIRECTORY/http-fixture.py" "$dir/ready" </dev/null >"$dir/log" 2>&1 &
    WEB_PID=$!
    _registry_atexit "kill $WEB_PID"
    test_wait_until "the web server $1" test -s "$dir/ready" &&
    WEB_URL=http://127.0.0.1:$(cat "$dir/ready")
}

# Two servers: the second is stopped to show a cached step downloads nothing.
http_start main && WEB=$WEB_URL
http_start gone && GONE=$WEB_URL GONE_PID=$WEB_PID

test_expect_success 'setup: the busybox fixture and two web servers' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    test -n "$WEB" && test -n "$GONE" && mkdir ctx
'

test_expect_success 'ADD URL DIR/: the URL file name, mode 0600, Last-Modified as mtime' '
    printf "FROM fixture/basic:1\nADD $WEB/ok/file.txt /dl/\n" >ctx/Dockerfile &&
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    echo hello >expect && test_cmp expect "$b/rootfs/dl/file.txt" &&
    test "$(stat -c %a "$b/rootfs/dl/file.txt")" = 600 &&
    test "$(stat -c %Y "$b/rootfs/dl/file.txt")" = "$(date -d "2015-10-21 07:28:00 UTC" +%s)"
'

test_expect_success 'ADD URL FILE with --chmod and --chown; no archive is extracted' '
    printf "FROM fixture/basic:1\nADD --chmod=0644 --chown=7:8 $WEB/ok/file.txt /f\n" >ctx/Dockerfile &&
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    test "$(stat -c "%a %u %g" "$b/rootfs/f")" = "644 7 8"
'

test_expect_success 'Content-Disposition names the file (its last component only)' '
    printf "FROM fixture/basic:1\nADD $WEB/cd/ignored-name /cd/\n" >ctx/Dockerfile &&
    chrun-build -q ctx >digest &&
    b=$(chrun-unpack "$(cat digest)") &&
    test -f "$b/rootfs/cd/name.tgz"
'

test_expect_success 'ADD --checksum: verified; a cached rebuild downloads nothing (server gone)' '
    printf "FROM fixture/basic:1\nADD --checksum=$HELLO_SUM $GONE/ok/file.txt /f\n" >ctx/Dockerfile &&
    chrun-build -q ctx >first &&
    kill $GONE_PID && { wait $GONE_PID 2>/dev/null || :; } &&
    chrun-build ctx >second 2>log &&
    test_cmp first second &&
    grep "using cache" log
'

test_expect_success 'a checksum mismatch: exit 1, the URL and digests named, store unchanged' '
    printf "FROM fixture/basic:1\nADD --checksum=sha256:%064d $WEB/nolm /f\n" 0 >ctx/Dockerfile &&
    build_refused ctx "line 2: .*nolm.*sha256:"
'

test_expect_success 'redirects to file: or ftp: are refused; a 404 fails' '
    printf "FROM fixture/basic:1\nADD $WEB/redirect-file /f\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: .*redirect-file" &&
    printf "FROM fixture/basic:1\nADD $WEB/redirect-ftp /f\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: .*redirect-ftp" &&
    printf "FROM fixture/basic:1\nADD $WEB/missing /f\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: .*missing"
'

test_expect_success 'COPY of a URL, --checksum with two URLs, URL mixed with a local file: refused' '
    printf "FROM fixture/basic:1\nCOPY $WEB/ok/file.txt /f\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: COPY cannot fetch" &&
    printf "FROM fixture/basic:1\nADD --checksum=$HELLO_SUM $WEB/ok/file.txt $WEB/nolm /d/\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: ADD --checksum takes exactly one URL" &&
    echo x >ctx/local &&
    printf "FROM fixture/basic:1\nADD local $WEB/nolm /d/\n" >ctx/Dockerfile &&
    build_refused ctx "line 2: ADD: URLs and local sources"
'

test_done

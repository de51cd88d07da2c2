#!/bin/bash
test_description='chrun-build: --from cycles and unknown stages, unterminated heredocs, secrets, hostile context tars'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-fixtures.sh && . "$TEST_DIRECTORY"/lib-unpack.sh

DATA=$REPO_ROOT/testdata/build/hostile

# refused DOCKERFILE PATTERN [ARGS...]: exit 1, one error line matching
# PATTERN, nothing printed, the store unchanged.
refused() {
    local df=$1 pattern=$2
    shift 2
    cp "$DATA/$df" ctx/Dockerfile &&
    store_snapshot >before &&
    test_expect_code 1 chrun-build -q "$@" ctx >out 2>err &&
    test_one_error_line chrun-build err "$pattern" &&
    test ! -s out &&
    store_snapshot >after && test_cmp before after
}

test_expect_success 'setup: the busybox fixture, a context, a secret' '
    fixtures_ensure &&
    chrun-load -q "$FIXTURES/basic.oci.tar" >/dev/null &&
    mkdir ctx && echo x >ctx/x &&
    printf "TOPSECRET-%s" 4242 >secret.txt
'

test_expect_success 'a --from cycle is refused naming the line' '
    refused from-cycle.Dockerfile "Dockerfile. line 2: COPY --from=b: stage 1 depends on itself"
'

test_expect_success 'a --from naming its own stage is refused' '
    refused from-self.Dockerfile "Dockerfile. line 2: COPY --from=me refers to its own stage"
'

test_expect_success 'an unknown stage or image and an unknown index are refused' '
    refused from-unknown.Dockerfile "line 2: COPY --from=nosuchstage: no stage named .nosuchstage. and no such image" &&
    refused from-index.Dockerfile "line 3: COPY --from=5: no stage 5 \(the Dockerfile has 2"
'

test_expect_success 'a heredoc without its terminator is refused' '
    refused heredoc-unterminated.Dockerfile "Dockerfile. line 3: heredoc .EOF. has no terminating line .EOF."
'

test_expect_success 'a missing secret file fails before any work' '
    refused secret-fails.Dockerfile "secret .token.: open .*nosuch.txt.: No such file" --secret id=token,src=nosuch.txt
'

test_expect_success 'a required secret that was not given is refused' '
    refused secret-missing.Dockerfile "line 2: RUN --mount=type=secret: secret .other. was not given" --secret id=token,src=secret.txt
'

test_expect_success 'a failing RUN with a secret never shows the secret' '
    cp "$DATA/secret-fails.Dockerfile" ctx/Dockerfile &&
    test_expect_code 1 chrun-build -q --secret id=token,src=secret.txt ctx >out 2>err &&
    test_one_error_line chrun-build err "line 2: RUN returned exit status 1" &&
    ! grep -r -q TOPSECRET err "$CHRUN_ROOT" &&
    printf "FROM fixture/basic:1\nRUN --mount=type=secret,id=token cat /run/secrets/token; echo; exit 3\n" >ctx/Dockerfile &&
    test_expect_code 1 chrun-build -q --secret id=token,src=secret.txt ctx >out 2>err &&
    grep "^chrun-build: error: " err >err1 &&
    test_one_error_line chrun-build err1 "line 2: RUN returned exit status 3" &&
    ! grep -q TOPSECRET err1 &&
    ! grep -r -q TOPSECRET "$CHRUN_ROOT"
'

test_expect_success 'RUN --mount=type=ssh is refused' '
    refused mount-ssh.Dockerfile "line 2: RUN --mount=type=ssh is not supported"
'

test_expect_success 'bad STOPSIGNAL, HEALTHCHECK duration, a required ARG left unset' '
    refused stopsignal-bad.Dockerfile "line 2: STOPSIGNAL .NOPE. is not a signal" &&
    refused healthcheck-bad.Dockerfile "line 2: HEALTHCHECK --interval=5x: not a duration" &&
    refused required-arg.Dockerfile "line 3: V: set V with --build-arg"
'

test_expect_success 'a context tar with .. or absolute names is refused' '
    printf "file ../escaped data=x\n" | unpack_mktar dotdot.tar &&
    printf "raw /abs-escaped data=x\n" | unpack_mktar abs.tar &&
    for t in dotdot.tar abs.tar; do
        store_snapshot >before &&
        test_expect_code 1 chrun-build -q - <$t >out 2>err &&
        test_one_error_line chrun-build err "build context .-." &&
        store_snapshot >after && test_cmp before after || return 1
    done &&
    test ! -e "$TRASH_DIRECTORY/escaped" && test ! -e /abs-escaped
'

test_done

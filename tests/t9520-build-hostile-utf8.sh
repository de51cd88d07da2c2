#!/bin/bash
test_description='chrun-build: text that is not UTF-8 in image config fields is refused, never dropped'
. "$(dirname "$0")"/lib.sh && . "$TEST_DIRECTORY"/lib-build.sh

# utf8_refused LINE PATTERN: a Dockerfile whose line 2 is LINE (printf
# escapes) fails as build_refused (lib-build.sh) checks, with one error line
# naming the Dockerfile, line 2 and PATTERN.
utf8_refused() {
    printf "FROM scratch\n$1\nLABEL after=1\n" >ctx/Dockerfile &&
    build_refused ctx "'ctx/Dockerfile' line 2: $2: not valid UTF-8" -t u:1
}

test_expect_success 'setup: a context, and a valid build of the same shape' '
    mkdir ctx &&
    printf "FROM scratch\nENV A=1\nLABEL after=1\n" >ctx/Dockerfile &&
    chrun-build -q -t ok:1 ctx >/dev/null
'

test_expect_success 'an ENV value that is not UTF-8 is refused' '
    utf8_refused "ENV A=x\\377y" ENV &&
    utf8_refused "ENV \\377=1" ENV
'

test_expect_success 'a LABEL value or key that is not UTF-8 is refused' '
    utf8_refused "LABEL a=\\377" LABEL &&
    utf8_refused "LABEL \\376\\377=a" LABEL
'

test_expect_success 'a WORKDIR that is not UTF-8 is refused (never an image without WorkingDir)' '
    utf8_refused "WORKDIR /w\\377" WORKDIR
'

test_expect_success 'a USER that is not UTF-8 is refused (never an image without User)' '
    utf8_refused "USER u\\377" USER
'

test_expect_success 'CMD, ENTRYPOINT, VOLUME, MAINTAINER, ONBUILD: the instruction named' '
    utf8_refused "CMD echo \\377" CMD &&
    utf8_refused "ENTRYPOINT echo \\377" ENTRYPOINT &&
    utf8_refused "VOLUME /v\\377" VOLUME &&
    utf8_refused "MAINTAINER \\377" MAINTAINER &&
    utf8_refused "ONBUILD RUN \\377" ONBUILD
'

test_expect_success 'a --label that is not UTF-8 is refused' '
    printf "FROM scratch\n" >ctx/Dockerfile &&
    store_snapshot >before &&
    test_expect_code 1 chrun-build -q --label "k=$(printf "\\377")" ctx >out 2>err &&
    test_one_error_line chrun-build err "label: not valid UTF-8" &&
    store_snapshot >after && test_cmp before after
'

test_done

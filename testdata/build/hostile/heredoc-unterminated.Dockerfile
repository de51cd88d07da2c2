FROM fixture/basic:1
RUN true
RUN <<EOF
echo never ends
EOFX

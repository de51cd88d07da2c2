# syntax=docker/dockerfile:1.4
FROM fixture/basic:1
ARG WHO=world
RUN <<EOF
set -e
mkdir -p /h
echo "script for $WHO" >/h/script
EOF
RUN cat <<-'QUOTED' >/h/quoted && cat <<A >/h/two && cat <<B >>/h/two
		literal $WHO
	QUOTED
first $WHO
A
second
B
RUN <<SCRIPT
#!/bin/sh -e
echo "shebang $0" >/h/shebang
SCRIPT
COPY <<EOF /h/inline
inline for $WHO
EOF
COPY <<"EOF" /h/raw
raw $WHO
EOF
COPY <<one <<two /h/dir/
file one
one
file two
two
CMD ["sh", "-c", "cat /h/script /h/quoted /h/two /h/inline /h/raw /h/dir/one /h/dir/two /h/shebang"]

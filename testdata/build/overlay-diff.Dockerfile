# chrun-build's RUN over an overlay (only the upper is diffed) against the
# full walk (CHRUN_BUILD_FULL_WALK=1): t5070 builds this both ways.
FROM fixture/basic:1
# 1: new files, directories, symlinks, hardlinks among new files, a fifo
RUN mkdir -p /app/lib/deep /data && echo one >/app/one && echo two >/app/lib/two && \
    echo deep >/app/lib/deep/f && ln /app/one /app/one-link && ln -s lib/two /app/two-link && \
    mkfifo /app/fifo && echo keep >/data/keep && echo gone >/data/gone && \
    mkdir -p /data/dir/sub && echo x >/data/dir/sub/x && echo old >/data/old
# 2: deletions (whiteouts, a whole directory at once), metadata-only changes
#    of lower files (mode, owner, mtime), a hardlink to a lower file, a
#    directory renamed (as root overlayfs redirects it; an ordinary user's
#    overlay copies it), a
#    directory replaced by a file and a file by a directory
RUN rm /data/gone /srv/README && rm -rf /app/lib/deep && chmod 600 /etc/group && \
    chown 1:2 /app/lib/two && touch -d "2020-01-01 00:00:00" /data/keep && \
    ln /app/lib/two /data/two-hard && mv /data/dir /data/moved && \
    rm -rf /tmp && echo was-a-dir >/tmp && rm /data/old && mkdir /data/old && echo in >/data/old/in
# 3: write through a lower hardlink pair made by step 1, then a new name
RUN echo changed >/app/one && ln /app/one /app/one-again
# 4: what the steps left, as RUN sees it
RUN find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /seen \) -prune -o -print | sort | \
    while read -r p; do stat -c "%n %a %u:%g %F %s" "$p"; done | grep -v "^/ \|directory [0-9]*$" >/seen && \
    find / -xdev -type d \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type d -print | \
    sort | while read -r p; do stat -c "%n %a %u:%g" "$p"; done >>/seen

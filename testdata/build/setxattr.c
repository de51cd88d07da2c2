/* setxattr NAME VALUE FILE: for RUN steps of t5070 (busybox has no
 * setfattr); built static by the test. */
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: setxattr NAME VALUE FILE\n", stderr);
        return 2;
    }
    if (setxattr(argv[3], argv[1], argv[2], strlen(argv[2]), 0) < 0) {
        perror("setxattr");
        return 1;
    }
    return 0;
}

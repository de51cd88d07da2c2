#include "util.h"

void chrun_sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c < 0x20 || c == 0x7f)
            *s = '?';
    }
}

#include "util.h"

#include <stdint.h>
#include <stdlib.h>

void chrun_sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c < 0x20 || c == 0x7f)
            *s = '?';
    }
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

void chrun_sort_strings(char **v, size_t n)
{
    if (n > 1) /* qsort wants a non-NULL base */
        qsort(v, n, sizeof(*v), strcmp_ptr);
}

int chrun_grow(void *ptr_to_array, size_t *cap, size_t need, size_t elem_size,
               struct chrun_err *err)
{
    void *arr; /* copied with memcpy: *PTR_TO_ARRAY is a T *, not a void * */
    size_t max_elems = elem_size ? SIZE_MAX / elem_size : SIZE_MAX;
    size_t ncap, bytes;
    void *p;
    memcpy(&arr, ptr_to_array, sizeof(arr));
    if (need <= *cap && (arr != NULL || need == 0))
        return 0;
    if (need > max_elems)
        return chrun_err_sys(err, ENOMEM, "array of %zu elements of %zu bytes", need, elem_size);
    ncap = *cap <= max_elems / 2 ? *cap * 2 : max_elems;
    if (ncap < 8)
        ncap = 8 < max_elems ? 8 : max_elems;
    if (ncap < need)
        ncap = need;
    bytes = ncap * elem_size;
    p = realloc(arr, bytes ? bytes : 1);
    if (p == NULL)
        return chrun_err_sys(err, ENOMEM, "array of %zu elements of %zu bytes", ncap, elem_size);
    memcpy(ptr_to_array, &p, sizeof(p));
    *cap = ncap;
    return 0;
}

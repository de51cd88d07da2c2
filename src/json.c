/* Checked JSON helpers (src/json.h). */
#include "json.h"

#include <errno.h>
#include <string.h>

int chrun_json_set(json_t *obj, const char *key, json_t *value, struct chrun_err *err)
{
    if (value == NULL)
        return chrun_err_sys(err, ENOMEM, "set '%s'", key);
    if (json_object_set_new(obj, key, value) < 0)
        return chrun_err_sys(err, ENOMEM, "set '%s'", key);
    return 0;
}

int chrun_json_append(json_t *arr, json_t *value, const char *what, struct chrun_err *err)
{
    if (value == NULL)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    if (json_array_append_new(arr, value) < 0)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    return 0;
}

json_t *chrun_json_str(const char *s, const char *what, struct chrun_err *err)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    /* json_string fails for text that is not UTF-8, or for want of memory */
    j = json_stringn_nocheck(s, strlen(s));
    if (j == NULL) {
        chrun_err_sys(err, ENOMEM, "%s", what);
        return NULL;
    }
    json_decref(j);
    chrun_err_set(err, CHRUN_E_INPUT, "%s: not valid UTF-8", what);
    return NULL;
}

int chrun_json_parse_error(struct chrun_err *err, const json_error_t *jerr)
{
    return chrun_err_set(err, CHRUN_E_INPUT, "invalid JSON at line %d: %s", jerr->line,
                         jerr->text);
}

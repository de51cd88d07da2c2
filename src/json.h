/* Checked JSON at the jansson boundary: every mutation is checked, and a
 * failure says what failed. Internal to libchrun (and tools).
 *
 * jansson's constructors return NULL on allocation failure and, for
 * json_string, on text that is not UTF-8; its setters return -1. A JSON
 * document built from image data (a Dockerfile's ENV value, a label) can hit
 * the second at any time, and an unchecked set silently drops a field: the
 * image would carry a valid digest over the wrong config. These helpers
 * steal VALUE in every case (as json_object_set_new does), so a caller
 * writes one checked line per field. */
#ifndef CHRUN_JSON_H
#define CHRUN_JSON_H

#include <jansson.h>

#include "chrun/err.h"

/* OBJ[KEY] = VALUE (stolen; NULL means its constructor failed, reported as
 * ENOMEM: build strings from outside data with chrun_json_str, which tells
 * text that is not UTF-8 apart and fails first). Returns 0 or -1 with ERR. */
int chrun_json_set(json_t *obj, const char *key, json_t *value, struct chrun_err *err);

/* Append VALUE (stolen) to ARR. Returns 0 or -1 with ERR ("WHAT: ..."). */
int chrun_json_append(json_t *arr, json_t *value, const char *what, struct chrun_err *err);

/* A new JSON string of S, or NULL with ERR: CHRUN_E_INPUT "WHAT: not valid
 * UTF-8" when S is not UTF-8, ENOMEM otherwise. */
json_t *chrun_json_str(const char *s, const char *what, struct chrun_err *err);

/* ERR for a document jansson refused to parse: CHRUN_E_INPUT "invalid JSON
 * at line N: TEXT" (the caller prefixes what the document was). Returns -1. */
int chrun_json_parse_error(struct chrun_err *err, const json_error_t *jerr);

#endif

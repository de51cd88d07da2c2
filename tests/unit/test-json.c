/* Unit tests for src/json.c: checked jansson mutations. */
#include "harness.h"
#include "json.h"

static void test_set_and_append(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    json_t *o = json_object(), *a = json_array();
    CHECK_INT_EQ(chrun_json_set(o, "k", json_integer(1), &err), 0);
    CHECK_INT_EQ(json_integer_value(json_object_get(o, "k")), 1);
    CHECK_INT_EQ(chrun_json_set(o, "null", NULL, &err), -1);
    CHECK(strstr(err.msg, "set 'null'") != NULL);
    CHECK(json_object_get(o, "null") == NULL);
    CHECK_INT_EQ(chrun_json_append(a, json_string("x"), "tags", &err), 0);
    CHECK_INT_EQ(json_array_size(a), 1);
    CHECK_INT_EQ(chrun_json_append(a, NULL, "tags", &err), -1);
    CHECK_INT_EQ(json_array_size(a), 1);
    json_decref(o);
    json_decref(a);
}

/* A value that is not UTF-8 (an ENV value from a Dockerfile) is named. */
static void test_str_not_utf8(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    json_t *s = chrun_json_str("caf\xc3\xa9", "ENV A", &err);
    CHECK(s != NULL);
    json_decref(s);
    CHECK(chrun_json_str("bad \xff\xfe", "ENV B", &err) == NULL);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK_STR_EQ(err.msg, "ENV B: not valid UTF-8");
}

static void test_parse_error(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    json_error_t jerr;
    json_t *j = json_loads("{\n\"a\": }", 0, &jerr);
    CHECK(j == NULL);
    CHECK_INT_EQ(chrun_json_parse_error(&err, &jerr), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strncmp(err.msg, "invalid JSON at line 2: ", 24) == 0);
}

int main(void)
{
    RUN_TEST(test_set_and_append);
    RUN_TEST(test_str_not_utf8);
    RUN_TEST(test_parse_error);
    return harness_done();
}

/* Pure logic of push and of the client core it added: chunk sizes, the
 * Location header, a registry's JSON error message. */
#include "harness.h"

#include <string.h>

#include "chrun/push.h"
#include "chrun/settings.h"
#include "registry-client.h"

static void test_parse_size(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    uint64_t n = 0;
    CHECK_INT_EQ(chrun_settings_parse_size("1", &n, &err), 0);
    CHECK(n == 1);
    CHECK_INT_EQ(chrun_settings_parse_size("256K", &n, &err), 0);
    CHECK(n == 256 * 1024);
    CHECK_INT_EQ(chrun_settings_parse_size("32m", &n, &err), 0);
    CHECK(n == 32ULL * 1024 * 1024);
    CHECK_INT_EQ(chrun_settings_parse_size("5G", &n, &err), 0);
    CHECK(n == 5ULL << 30);
    CHECK_INT_EQ(chrun_settings_parse_size("0", &n, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK_INT_EQ(chrun_settings_parse_size("", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("-1", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size(" 1", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("1KB", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("K", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("lots", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("99999999999999999999", &n, &err), -1);
    CHECK_INT_EQ(chrun_settings_parse_size("17179869184G", &n, &err), -1);
}

static void feed(struct registry_resp *r, const char *line)
{
    registry_resp_header_line(r, line, strlen(line));
}

static void test_location_header(void)
{
    struct registry_resp r;
    char long_line[REGISTRY_URL_MAX + 32];
    registry_resp_reset(&r);
    feed(&r, "HTTP/1.1 202 Accepted\r\n");
    feed(&r, "Location:  /v2/a/blobs/uploads/u?_state=x \r\n");
    CHECK_INT_EQ(r.status, 202);
    CHECK_STR_EQ(r.location, "/v2/a/blobs/uploads/u?_state=x");
    CHECK(!r.location_too_long);
    memset(long_line, 'a', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = '\0';
    memcpy(long_line, "Location: ", 10);
    feed(&r, long_line);
    CHECK(r.location_too_long);
    CHECK_STR_EQ(r.location, "");
    /* a new reply (after a redirect or 100 Continue) forgets the old one */
    feed(&r, "HTTP/1.1 201 Created\r\n");
    CHECK(!r.location_too_long);
}

static void test_reply_detail(void)
{
    struct registry_reply r;
    char buf[128];
    memset(&r, 0, sizeof(r));
    strcpy(r.excerpt, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\\u001b[2J push\"}]}");
    r.excerpt_len = strlen(r.excerpt);
    registry_reply_detail(&r, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "DENIED: no?[2J push");
    strcpy(r.excerpt, "<html>502 Bad Gateway</html>");
    r.excerpt_len = strlen(r.excerpt);
    registry_reply_detail(&r, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "");
    r.excerpt_len = 0;
    registry_reply_detail(&r, buf, sizeof(buf));
    CHECK_STR_EQ(buf, "");
}

int main(void)
{
    RUN_TEST(test_parse_size);
    RUN_TEST(test_location_header);
    RUN_TEST(test_reply_detail);
    return harness_done();
}

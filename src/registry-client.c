#include "registry-client.h"

#include "chrun/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "chrun/auth.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/progress.h"
#include "chrun/ref.h"
#include "chrun/settings.h"
#include "chrun/sink.h"
#include "chrun/tool.h"
#include "cleanup.h"
#include "util.h"

long long registry_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void registry_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Sleep MS milliseconds, but not past DEADLINE (registry_mono_ms). */
void registry_sleep_until(long ms, long long deadline)
{
    long long left = deadline - registry_mono_ms();
    if (left > 0)
        registry_sleep_ms(ms < left ? ms : (long) left);
}

/* Pure helpers */

long chrun_registry_retry_after(const char *value, time_t now)
{
    char *end;
    long v;
    time_t when;
    while (*value == ' ')
        value++;
    if (*value == '\0')
        return -1;
    if (isdigit((unsigned char) *value)) {
        errno = 0;
        v = strtol(value, &end, 10);
        while (*end == ' ')
            end++;
        if (*end != '\0' || errno != 0 || v < 0)
            return -1;
        return v > CHRUN_RETRY_AFTER_MAX_S ? CHRUN_RETRY_AFTER_MAX_S : v;
    }
    when = curl_getdate(value, NULL);
    if (when == (time_t) -1)
        return -1;
    if (when <= now)
        return 0;
    return when - now > CHRUN_RETRY_AFTER_MAX_S ? CHRUN_RETRY_AFTER_MAX_S : (long) (when - now);
}

long chrun_registry_backoff_ms(int attempt)
{
    long ms = 250;
    for (int i = 1; i < attempt && ms < 8000; i++)
        ms *= 2;
    return ms > 8000 ? 8000 : ms;
}

int chrun_registry_parse_content_range(const char *value, uint64_t *ret_start,
                                       uint64_t *ret_end, int64_t *ret_total,
                                       struct chrun_err *err)
{
    unsigned long long start, end, total;
    int n = 0;
    if (sscanf(value, " bytes %llu-%llu/%n", &start, &end, &n) != 2 || n == 0 || end < start)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid Content-Range '%.64s'", value);
    value += n;
    if (value[0] == '*' && value[1] == '\0') {
        *ret_total = -1;
    } else {
        char *e;
        errno = 0;
        total = strtoull(value, &e, 10);
        if (e == value || *e != '\0' || errno != 0 || total > INT64_MAX || end >= total)
            return chrun_err_set(err, CHRUN_E_INPUT, "invalid Content-Range '%.64s'", value);
        *ret_total = (int64_t) total;
    }
    *ret_start = start;
    *ret_end = end;
    return 0;
}

struct origin {
    char scheme[16];
    char host[256];     /* lowercase, IPv6 with brackets */
    char hostport[272]; /* host, plus ":port" if the URL names one */
    long port;          /* default-filled */
};

static int url_origin(const char *url, struct origin *o)
{
    cleanup_curl_url CURLU *u = curl_url();
    cleanup_curl_str char *scheme = NULL;
    cleanup_curl_str char *host = NULL;
    cleanup_curl_str char *port = NULL;
    cleanup_curl_str char *dport = NULL;
    if (u == NULL)
        return -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &dport, CURLU_DEFAULT_PORT) != CURLUE_OK)
        return -1;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL;
    if (strlen(scheme) >= sizeof(o->scheme) || strlen(host) >= sizeof(o->host))
        return -1;
    for (char *p = scheme; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    for (char *p = host; *p; p++)
        *p = (char) tolower((unsigned char) *p);
    strcpy(o->scheme, scheme);
    strcpy(o->host, host);
    snprintf(o->hostport, sizeof(o->hostport), "%s%s%s", host, port ? ":" : "", port ? port : "");
    o->port = strtol(dport, NULL, 10);
    return 0;
}

bool chrun_registry_same_origin(const char *a, const char *b)
{
    struct origin oa, ob;
    if (url_origin(a, &oa) < 0 || url_origin(b, &ob) < 0)
        return false;
    return streq(oa.scheme, ob.scheme) && streq(oa.host, ob.host) && oa.port == ob.port;
}

bool chrun_registry_url_permitted(const char *url, const struct chrun_settings *settings)
{
    struct origin o;
    if (url_origin(url, &o) < 0)
        return false;
    if (streq(o.scheme, "https"))
        return true;
    /* SPEC "References": plain HTTP only for loopback and listed hosts. */
    return streq(o.scheme, "http") &&
           (chrun_settings_host_insecure(settings, o.hostport) ||
            chrun_settings_host_insecure(settings, o.host));
}

int chrun_registry_mirror_url(const char *entry, const struct chrun_settings *settings, char *buf,
                              size_t size, char *host, size_t host_size, struct chrun_err *err)
{
    char tmp[REGISTRY_URL_MAX];
    struct origin o;
    size_t len;
    int n;

    while (*entry == ' ')
        entry++;
    len = strlen(entry);
    while (len > 0 && (entry[len - 1] == ' ' || entry[len - 1] == '/'))
        len--;
    if (len == 0 || len >= sizeof(tmp) - 16)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid mirror '%.200s'", entry);
    if (strstr(entry, "://") == NULL) {
        char hostpart[CHRUN_REF_NAME_MAX + 1];
        if (len >= sizeof(hostpart))
            return chrun_err_set(err, CHRUN_E_INPUT, "invalid mirror '%.200s'", entry);
        snprintf(hostpart, sizeof(hostpart), "%.*s", (int) len, entry);
        snprintf(tmp, sizeof(tmp), "%s://%s",
                 chrun_settings_host_insecure(settings, hostpart) ? "http" : "https", hostpart);
    } else {
        snprintf(tmp, sizeof(tmp), "%.*s", (int) len, entry);
    }
    if (url_origin(tmp, &o) < 0 || (!streq(o.scheme, "http") && !streq(o.scheme, "https")))
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid mirror '%.200s'", entry);
    if (!chrun_registry_url_permitted(tmp, settings))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "mirror '%.200s': plain http only for loopback hosts and "
                             "CHRUN_INSECURE_REGISTRIES",
                             entry);
    n = snprintf(buf, size, "%s://%s", o.scheme, o.hostport);
    if (n < 0 || (size_t) n >= size || strlen(o.hostport) >= host_size)
        return chrun_err_set(err, CHRUN_E_INPUT, "mirror '%.200s' is too long", entry);
    strcpy(host, o.hostport);
    return 0;
}

/* HTTP replies */


void registry_resp_reset(struct registry_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->retry_after_s = -1;
    r->content_length = -1;
}

/* Copy VALUE (LEN bytes, trimmed) into OUT; false if it did not fit. */
static bool copy_header_value(char *out, size_t size, const char *value, size_t len)
{
    while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n' ||
                       value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    if (len >= size) {
        out[0] = '\0';
        return false;
    }
    memcpy(out, value, len);
    out[len] = '\0';
    return true;
}

/* Parse one header line into R. Returns true at the blank line that ends a
 * header block. Status lines start a new reply (redirects, 100 Continue). */
bool registry_resp_header_line(struct registry_resp *r, const char *line, size_t len)
{
    const char *colon;
    char value[512];
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        char st[8] = "";
        const char *sp = memchr(line, ' ', len);
        registry_resp_reset(r);
        if (sp != NULL && (size_t) (sp - line) + 4 <= len) {
            memcpy(st, sp + 1, 3);
            r->status = strtol(st, NULL, 10);
        }
        return false;
    }
    if (len <= 2 && (line[0] == '\r' || line[0] == '\n'))
        return true;
    colon = memchr(line, ':', len);
    if (colon == NULL)
        return false;
#define IS_HEADER(name) ((size_t) (colon - line) == strlen(name) && strncasecmp(line, name, strlen(name)) == 0)
    {
        const char *v = colon + 1;
        size_t vlen = len - (size_t) (v - line);
        if (IS_HEADER("content-type")) {
            copy_header_value(r->content_type, sizeof(r->content_type), v, vlen);
            r->content_type[strcspn(r->content_type, "; ")] = '\0';
        } else if (IS_HEADER("docker-content-digest")) {
            copy_header_value(r->docker_digest, sizeof(r->docker_digest), v, vlen);
        } else if (IS_HEADER("www-authenticate")) {
            /* several challenges may arrive as several headers: join them */
            char one[sizeof(r->www_auth)];
            if (!copy_header_value(one, sizeof(one), v, vlen) ||
                strlen(r->www_auth) + strlen(one) + 3 > sizeof(r->www_auth))
                r->www_auth_too_long = true;
            else if (r->www_auth[0] == '\0')
                strcpy(r->www_auth, one);
            else {
                strcat(r->www_auth, ", ");
                strcat(r->www_auth, one);
            }
        } else if (IS_HEADER("location")) {
            r->location_too_long =
                !copy_header_value(r->location, sizeof(r->location), v, vlen);
        } else if (IS_HEADER("retry-after")) {
            if (copy_header_value(value, sizeof(value), v, vlen))
                r->retry_after_s = chrun_registry_retry_after(value, time(NULL));
        } else if (IS_HEADER("content-length")) {
            char *e;
            long long cl;
            if (copy_header_value(value, sizeof(value), v, vlen)) {
                errno = 0;
                cl = strtoll(value, &e, 10);
                r->content_length = (*value && *e == '\0' && errno == 0 && cl >= 0) ? cl : -2;
            } else {
                r->content_length = -2;
            }
        } else if (IS_HEADER("content-range")) {
            uint64_t start, end;
            int64_t total;
            if (copy_header_value(value, sizeof(value), v, vlen) &&
                chrun_registry_parse_content_range(value, &start, &end, &total, NULL) == 0) {
                r->has_range = true;
                r->range_start = start;
            } else {
                r->bad_range = true;
            }
        }
    }
#undef IS_HEADER
    return false;
}

bool registry_status_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

bool registry_curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

long registry_retry_delay_ms(const struct registry_resp *r, int attempt)
{
    if (r != NULL && r->retry_after_s >= 0)
        return r->retry_after_s * 1000;
    return chrun_registry_backoff_ms(attempt);
}

/* The client: one registry endpoint, one repository. */


void registry_client_free(struct registry_client *c)
{
    if (c == NULL)
        return;
    if (c->easy != NULL)
        curl_easy_cleanup(c->easy);
    if (c->share != NULL)
        curl_share_cleanup(c->share);
    free(c->auth_header);
    explicit_bzero(&c->creds, sizeof(c->creds));
    free(c);
}

struct registry_client *registry_client_create(struct chrun_store *st, const char *base,
                                               const char *host, const char *registry,
                                               const struct chrun_ref *ref, int jobs,
                                               const struct chrun_settings *settings,
                                               struct chrun_err *err)
{
    struct registry_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        chrun_err_sys(err, ENOMEM, "registry client");
        return NULL;
    }
    c->st = st;
    snprintf(c->base, sizeof(c->base), "%s", base);
    snprintf(c->host, sizeof(c->host), "%s", host);
    snprintf(c->registry, sizeof(c->registry), "%s", registry);
    snprintf(c->repo, sizeof(c->repo), "%s", ref->path);
    snprintf(c->scope, sizeof(c->scope), "repository:%s:pull", ref->path);
    c->access = "pull";
    chrun_ref_format(ref, c->display, sizeof(c->display));
    c->settings = *chrun_settings_or_defaults(settings);
    c->stall_s = c->settings.stall_timeout_s;
    c->connect_s = c->settings.connect_timeout_s;
    c->request_s = c->settings.request_timeout_s;
    c->blob_stall_limit_s = c->settings.blob_stall_limit_s;
    c->jobs = jobs > 0 ? jobs : CHRUN_PULL_JOBS_DEFAULT;
    if (c->jobs > CHRUN_PULL_JOBS_MAX)
        c->jobs = CHRUN_PULL_JOBS_MAX;
    c->share = curl_share_init();
    c->easy = curl_easy_init();
    if (c->share == NULL || c->easy == NULL) {
        registry_client_free(c);
        chrun_err_sys(err, ENOMEM, "curl init");
        return NULL;
    }
    /* One connection pool, DNS cache and TLS session cache for every handle. */
    if (curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        registry_client_free(c);
        chrun_err_set(err, CHRUN_E_SYS, "curl refused to share connections");
        return NULL;
    }
    return c;
}

CURLcode registry_easy_setup(struct registry_client *c, CURL *e, const char *url, char *errbuf)
{
    CURLcode rc = CURLE_OK;
    registry_setopt(&rc, e, CURLOPT_SHARE, c->share);
    if (rc != CURLE_OK)
        return rc;
    return registry_easy_defaults(e, url, c->connect_s, c->stall_s, errbuf);
}

CURLcode registry_easy_defaults(CURL *e, const char *url, long connect_s, long stall_s,
                                char *errbuf)
{
    CURLcode rc = CURLE_OK;
    registry_setopt(&rc, e, CURLOPT_URL, url);
    registry_setopt(&rc, e, CURLOPT_NOSIGNAL, 1L);
    registry_setopt(&rc, e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Redirects are followed by hand: credentials must never leave the origin. */
    registry_setopt(&rc, e, CURLOPT_FOLLOWLOCATION, 0L);
    registry_setopt(&rc, e, CURLOPT_UNRESTRICTED_AUTH, 0L);
    registry_setopt(&rc, e, CURLOPT_CONNECTTIMEOUT, connect_s);
    /* SPEC "Bad input": a stalled or trickling body times out instead of
     * hanging; synchronous requests also have a whole-request deadline. */
    registry_setopt(&rc, e, CURLOPT_LOW_SPEED_LIMIT, REGISTRY_STALL_BYTES_PER_S);
    registry_setopt(&rc, e, CURLOPT_LOW_SPEED_TIME, stall_s);
    registry_setopt(&rc, e, CURLOPT_SSL_VERIFYPEER, 1L);
    registry_setopt(&rc, e, CURLOPT_SSL_VERIFYHOST, 2L);
    registry_setopt(&rc, e, CURLOPT_TCP_KEEPALIVE, 1L);
    registry_setopt(&rc, e, CURLOPT_USERAGENT, "chrun/" CHRUN_VERSION);
    registry_setopt(&rc, e, CURLOPT_BUFFERSIZE, (long) CHRUN_IO_BUFSZ);
    errbuf[0] = '\0';
    registry_setopt(&rc, e, CURLOPT_ERRORBUFFER, errbuf);
    return rc;
}

int registry_curl_setup_failed(CURLcode rc, const char *what, struct chrun_err *err)
{
    /* a refused option may be a security one (TLS verification, protocols,
     * redirects): never go on without it */
    return chrun_err_set(err, CHRUN_E_SYS, "%s: curl refused an option: %s", what,
                         curl_easy_strerror(rc));
}

const char *registry_curl_msg(CURLcode rc, const char *errbuf)
{
    return errbuf[0] ? errbuf : curl_easy_strerror(rc);
}

/* Synchronous requests (ping, manifests, tokens) into a bounded buffer. */


bool registry_resp_declared_over(const struct registry_resp *r, uint64_t max)
{
    return r->status >= 200 && r->status < 300 && r->content_length >= 0 &&
           (uint64_t) r->content_length > max;
}

static size_t sync_on_header(char *buf, size_t size, size_t n, void *data)
{
    struct registry_reply *r = data;
    size_t len = size * n;
    /* a HEAD reply's Content-Length is the size of what it describes */
    if (registry_resp_header_line(&r->resp, buf, len) && !r->no_body &&
        registry_resp_declared_over(&r->resp, r->max)) {
        r->too_big = true;
        return 0;
    }
    return len;
}

static size_t sync_on_body(char *buf, size_t size, size_t n, void *data)
{
    struct registry_reply *r = data;
    size_t len = size * n;
    if (r->resp.status < 200 || r->resp.status >= 300) {
        /* an error or redirect body: keep its start for the message, bound the rest */
        size_t keep = REGISTRY_ERROR_EXCERPT_MAX - r->excerpt_len;
        if (r->discarded + len > REGISTRY_ERROR_BODY_MAX)
            return 0;
        r->discarded += len;
        keep = keep < len ? keep : len;
        memcpy(r->excerpt + r->excerpt_len, buf, keep);
        r->excerpt_len += keep;
        r->excerpt[r->excerpt_len] = '\0';
        return len;
    }
    /* SPEC "Bad input": refuse an oversized document while it streams. */
    if (r->len + len > r->max) {
        r->too_big = true;
        return 0;
    }
    if (r->body == NULL) {
        r->body = malloc(r->max + 1);
        if (r->body == NULL)
            return 0;
    }
    memcpy(r->body + r->len, buf, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

void registry_reply_release(struct registry_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}


/* Host[:port] of URL for messages, sanitized. */
void registry_url_hostport(const char *url, char *buf, size_t size)
{
    struct origin o;
    snprintf(buf, size, "%s", url_origin(url, &o) == 0 ? o.hostport : "?");
    chrun_sanitize(buf);
}

/* Perform RQ with retries and hand-followed redirects; R gets the final
 * reply (any status) and R->url the URL that gave it. Fails only when no
 * usable reply came within c->request_s seconds. A request that carries a
 * body or credentials never leaves its origin: SPEC "Bad input". */
static size_t body_on_read(char *buf, size_t size, size_t n, void *data)
{
    struct registry_body *b = data;
    uint64_t left = b->len - b->sent;
    size_t want = size * n;
    ssize_t got;

    if (want > left)
        want = (size_t) left;
    if (want == 0)
        return 0;
    if (b->buf != NULL) {
        memcpy(buf, b->buf + b->offset + b->sent, want);
        got = (ssize_t) want;
    } else {
        got = TEMP_FAILURE_RETRY_INT(pread(b->fd, buf, want, (off_t) (b->offset + b->sent)));
        /* the store's blob is shorter than it was a moment ago: stop, the
         * registry then sees a short body and the digest check fails */
        if (got <= 0)
            return CURL_READFUNC_ABORT;
    }
    b->sent += (uint64_t) got;
    chrun_progress_update(b->progress, b->bar, b->bar_base + b->sent, NULL);
    chrun_progress_draw(b->progress, false);
    return (size_t) got;
}

/* curl rewinds a body when it must send it again (a 401 or 307 it sees
 * before the body went out). */
static int body_on_seek(void *data, curl_off_t offset, int origin)
{
    struct registry_body *b = data;
    if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > b->len)
        return CURL_SEEKFUNC_CANTSEEK;
    b->sent = (uint64_t) offset;
    return CURL_SEEKFUNC_OK;
}

/* The method and body of RQ on handle E; every attempt starts the body over. */
static CURLcode easy_set_method(CURL *e, const struct registry_req *rq)
{
    CURLcode rc = CURLE_OK;
    const char *method = rq->method ? rq->method : rq->post_body ? "POST" : "GET";
    if (rq->post_body != NULL) {
        registry_setopt(&rc, e, CURLOPT_POSTFIELDS, rq->post_body);
    } else if (streq(method, "HEAD")) {
        registry_setopt(&rc, e, CURLOPT_NOBODY, 1L);
    } else if (streq(method, "POST") && rq->body == NULL) {
        registry_setopt(&rc, e, CURLOPT_POST, 1L);
        registry_setopt(&rc, e, CURLOPT_POSTFIELDSIZE, 0L);
        registry_setopt(&rc, e, CURLOPT_POSTFIELDS, "");
    } else if (!streq(method, "GET")) {
        struct registry_body *b = rq->body;
        /* PUT and PATCH: an upload of the body, empty if there is none */
        registry_setopt(&rc, e, CURLOPT_UPLOAD, 1L);
        registry_setopt(&rc, e, CURLOPT_INFILESIZE_LARGE, (curl_off_t) (b ? b->len : 0));
        if (b != NULL) {
            b->sent = 0;
            registry_setopt(&rc, e, CURLOPT_READFUNCTION, body_on_read);
            registry_setopt(&rc, e, CURLOPT_READDATA, b);
            registry_setopt(&rc, e, CURLOPT_SEEKFUNCTION, body_on_seek);
            registry_setopt(&rc, e, CURLOPT_SEEKDATA, b);
        }
        if (!streq(method, "PUT"))
            registry_setopt(&rc, e, CURLOPT_CUSTOMREQUEST, method);
    }
    return rc;
}

/* Header lines of RQ; the credentials only when SEND_AUTH. NULL when out
 * of memory (the request then fails rather than go without a header). */
/* A header value made from stored data (a media type) must never end the
 * request early: CR or LF in it would let the data write a second request,
 * carrying our Authorization header. */
static bool headers_are_single_lines(const struct registry_req *rq)
{
    for (size_t i = 0; i < ARRAY_SIZE(rq->headers) && rq->headers[i] != NULL; i++)
        if (strpbrk(rq->headers[i], "\r\n") != NULL)
            return false;
    return rq->accept == NULL || strpbrk(rq->accept, "\r\n") == NULL;
}

static struct curl_slist *request_headers(const struct registry_req *rq, bool send_auth)
{
    const char *lines[8];
    size_t n = 0;
    struct curl_slist *hdrs = NULL, *tmp;

    if (rq->post_body != NULL)
        lines[n++] = "Content-Type: application/x-www-form-urlencoded";
    if (rq->accept != NULL)
        lines[n++] = rq->accept;
    for (size_t i = 0; i < ARRAY_SIZE(rq->headers) && rq->headers[i] != NULL; i++)
        lines[n++] = rq->headers[i];
    if (send_auth)
        lines[n++] = rq->auth_header;
    /* curl would wait up to a second for "100 Continue" before a body */
    lines[n++] = "Expect:";
    for (size_t i = 0; i < n; i++) {
        tmp = curl_slist_append(hdrs, lines[i]);
        if (tmp == NULL) {
            curl_slist_free_all(hdrs);
            return NULL;
        }
        hdrs = tmp;
    }
    return hdrs;
}

int registry_http(struct registry_client *c, const struct registry_req *rq,
                  struct registry_reply *r, struct chrun_err *err)
{
    char *url = r->url;
    int attempt = 0, redirects = 0;
    const char *method = rq->method ? rq->method : rq->post_body ? "POST" : "GET";
    /* an upload of gigabytes has no deadline; the stall timeout bounds it */
    long long deadline = rq->streaming ? LLONG_MAX : registry_mono_ms() + c->request_s * 1000;
    int attempts_max = rq->once ? 1 : CHRUN_PULL_ATTEMPTS_MAX;

    snprintf(url, sizeof(r->url), "%s", rq->url);
    for (;;) {
        struct curl_slist *hdrs;
        CURLcode rc, setup;
        bool send_auth = rq->auth_header && chrun_registry_same_origin(url, rq->auth_origin);
        long long left = deadline - registry_mono_ms();

        if (left <= 0)
            return chrun_err_set(err, CHRUN_E_NETWORK, "%s: no complete reply within %ld s",
                                 rq->what, c->request_s);

        free(r->body);
        r->body = NULL;
        r->len = 0;
        r->too_big = false;
        r->max = rq->max;
        r->no_body = streq(method, "HEAD");
        r->excerpt_len = r->discarded = 0;
        r->excerpt[0] = '\0';
        registry_resp_reset(&r->resp);
        curl_easy_reset(c->easy);
        setup = registry_easy_setup(c, c->easy, url, c->errbuf);
        registry_setopt(&setup, c->easy, CURLOPT_HEADERFUNCTION, sync_on_header);
        registry_setopt(&setup, c->easy, CURLOPT_HEADERDATA, r);
        registry_setopt(&setup, c->easy, CURLOPT_WRITEFUNCTION, sync_on_body);
        registry_setopt(&setup, c->easy, CURLOPT_WRITEDATA, r);
        if (!rq->streaming)
            registry_setopt(&setup, c->easy, CURLOPT_TIMEOUT_MS, (long) left);
        if (setup == CURLE_OK)
            setup = easy_set_method(c->easy, rq);
        if (setup != CURLE_OK)
            return registry_curl_setup_failed(setup, rq->what, err);
        if (!headers_are_single_lines(rq))
            return chrun_err_set(err, CHRUN_E_INPUT, "%s: a header holds a line break", rq->what);
        hdrs = request_headers(rq, send_auth);
        if (hdrs == NULL)
            return chrun_err_sys(err, ENOMEM, "%s: headers", rq->what);
        if (registry_setopt(&setup, c->easy, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK) {
            curl_slist_free_all(hdrs);
            return registry_curl_setup_failed(setup, rq->what, err);
        }
        attempt++;
        rc = curl_easy_perform(c->easy);
        /* unsetting a list pointer cannot fail */
        (void) curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hdrs);

        if (r->too_big)
            return chrun_err_set(err, CHRUN_E_INPUT, "%s: larger than %zu bytes", rq->what,
                                 rq->max);
        if (rc == CURLE_OPERATION_TIMEDOUT && registry_mono_ms() >= deadline)
            return chrun_err_set(err, CHRUN_E_NETWORK, "%s: no complete reply within %ld s",
                                 rq->what, c->request_s);
        if (rc != CURLE_OK) {
            if (registry_curl_transient(rc) && attempt < attempts_max) {
                chrun_log_debug("%s: %s; retrying", rq->what, registry_curl_msg(rc, c->errbuf));
                registry_sleep_until(chrun_registry_backoff_ms(attempt), deadline);
                continue;
            }
            return chrun_err_set(err, CHRUN_E_NETWORK, "%s: %s%s", rq->what,
                                 registry_curl_msg(rc, c->errbuf),
                                 attempt > 1 ? " (gave up after retries)" : "");
        }
        if (r->resp.status >= 300 && r->resp.status < 400 && r->resp.status != 304) {
            char *loc = NULL;
            curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &loc);
            if (loc == NULL || strlen(loc) >= sizeof(r->url))
                return chrun_err_set(err, CHRUN_E_INPUT, "%s: HTTP %ld without a usable Location",
                                     rq->what, r->resp.status);
            if (++redirects > REGISTRY_REDIRECTS_MAX)
                return chrun_err_set(err, CHRUN_E_INPUT, "%s: more than %d redirects", rq->what,
                                     REGISTRY_REDIRECTS_MAX);
            if (!chrun_registry_url_permitted(loc, &c->settings))
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "%s: refusing redirect to '%.200s' (plain http to a host "
                                     "not allowed insecure)",
                                     rq->what, loc);
            if ((rq->post_body != NULL || rq->body != NULL || send_auth) &&
                !chrun_registry_same_origin(loc, url)) {
                char to[REGISTRY_HOSTPORT_MAX];
                registry_url_hostport(loc, to, sizeof(to));
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "%s: refusing redirect to another host (%s) with "
                                     "credentials",
                                     rq->what, to);
            }
            snprintf(url, sizeof(r->url), "%s", loc);
            continue;
        }
        if (registry_status_retryable(r->resp.status) && attempt < attempts_max) {
            long ms = registry_retry_delay_ms(&r->resp, attempt);
            chrun_log_debug("%s: HTTP %ld; retrying in %ld ms", rq->what, r->resp.status, ms);
            registry_sleep_until(ms, deadline);
            continue;
        }
        if (registry_status_retryable(r->resp.status) && attempt > 1)
            return chrun_err_set(err, CHRUN_E_NETWORK, "%s: HTTP %ld (gave up after %d attempts)",
                                 rq->what, r->resp.status, attempt);
        return 0;
    }
}

/* Authentication */

static int client_load_creds(struct registry_client *c, struct chrun_err *err)
{
    if (c->creds_loaded)
        return 0;
    if (chrun_auth_creds_get(c->registry, c->settings.docker_config_dir, &c->creds,
                             &c->have_creds, err) < 0)
        return -1;
    c->creds_loaded = true;
    return 0;
}

static int set_auth_header(struct registry_client *c, const char *scheme, const char *value,
                           struct chrun_err *err)
{
    size_t size = strlen(scheme) + strlen(value) + 32;
    char *h = malloc(size);
    if (h == NULL)
        return chrun_err_sys(err, ENOMEM, "auth header");
    snprintf(h, size, "Authorization: %s %s", scheme, value);
    if (c->auth_header != NULL)
        explicit_bzero(c->auth_header, strlen(c->auth_header));
    free(c->auth_header);
    c->auth_header = h;
    c->auth_gen++;
    return 0;
}

static int basic_value(const struct chrun_auth_creds *cr, char *out, size_t size,
                       struct chrun_err *err)
{
    char plain[CHRUN_AUTH_USER_MAX + CHRUN_AUTH_SECRET_MAX + 2];
    int n = snprintf(plain, sizeof(plain), "%s:%s", cr->username, cr->secret);
    int rc;
    if (n < 0 || (size_t) n >= sizeof(plain))
        return chrun_err_set(err, CHRUN_E_INPUT, "credentials too long");
    rc = chrun_auth_base64_encode(plain, (size_t) n, out, size, err);
    explicit_bzero(plain, sizeof(plain));
    return rc < 0 ? -1 : 0;
}

static int fetch_token(struct registry_client *c, struct chrun_err *err)
{
    cleanup_free char *url = NULL, *token = NULL, *post = NULL;
    char basic[((CHRUN_AUTH_USER_MAX + CHRUN_AUTH_SECRET_MAX + 2) / 3 + 1) * 4 + 1];
    char basic_header[sizeof(basic) + 32];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = "token request", .max = CHRUN_TOKEN_MAX};
    int rc;

    if (chrun_auth_token_url(&c->challenge, c->scope, &url, err) < 0)
        return chrun_err_prefix(err, "registry %s", c->host);
    if (!chrun_registry_url_permitted(url, &c->settings))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "registry %s: token realm '%.200s' uses plain http to a host not "
                             "allowed insecure",
                             c->host, c->challenge.realm);
    rq.url = url;
    if (c->have_creds && c->creds.identity_token) {
        /* OAuth2 refresh-token grant, as docker does with an identity token */
        cleanup_free char *svc = chrun_auth_url_encode(c->challenge.service, err);
        cleanup_free char *scope = chrun_auth_url_encode(c->scope, err);
        cleanup_free char *tok = chrun_auth_url_encode(c->creds.secret, err);
        size_t size;
        if (svc == NULL || scope == NULL || tok == NULL)
            return -1;
        size = strlen(svc) + strlen(scope) + strlen(tok) + 128;
        post = malloc(size);
        if (post == NULL)
            return chrun_err_sys(err, ENOMEM, "token request");
        snprintf(post, size,
                 "grant_type=refresh_token&client_id=chrun&service=%s&scope=%s&refresh_token=%s",
                 svc, scope, tok);
        rq.url = c->challenge.realm;
        rq.post_body = post;
    } else if (c->have_creds) {
        if (basic_value(&c->creds, basic, sizeof(basic), err) < 0)
            return -1;
        snprintf(basic_header, sizeof(basic_header), "Authorization: Basic %s", basic);
        rq.auth_header = basic_header;
        rq.auth_origin = url;
    }
    rc = registry_http(c, &rq, &r, err);
    explicit_bzero(basic_header, sizeof(basic_header));
    if (rc < 0) {
        registry_reply_release(&r);
        return chrun_err_prefix(err, "registry %s", c->host);
    }
    if (r.resp.status == 401 || r.resp.status == 403) {
        long st = r.resp.status;
        registry_reply_release(&r);
        if (c->have_creds)
            return chrun_err_set(err, CHRUN_E_AUTH,
                                 "registry %s: token server refused the credentials%s%s%s "
                                 "(HTTP %ld): wrong username or password",
                                 c->host, c->creds.username[0] ? " of '" : "",
                                 c->creds.username, c->creds.username[0] ? "'" : "", st);
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "registry %s: token server refused anonymous access (HTTP %ld): no "
                             "credentials for '%s' in docker config.json",
                             c->host, st, c->registry);
    }
    if (r.resp.status != 200) {
        long st = r.resp.status;
        registry_reply_release(&r);
        return chrun_err_set(err, CHRUN_E_NETWORK, "registry %s: token server answered HTTP %ld",
                             c->host, st);
    }
    rc = chrun_auth_token_parse(r.body ? r.body : "", r.len, &token, err);
    registry_reply_release(&r);
    if (rc < 0)
        return chrun_err_prefix(err, "registry %s", c->host);
    rc = set_auth_header(c, "Bearer", token, err);
    explicit_bzero(token, strlen(token));
    return rc;
}

/* Obtain credentials for the current challenge: a bearer token (fetched
 * anew) or basic credentials. Without a challenge, requests stay anonymous. */
int registry_authenticate(struct registry_client *c, struct chrun_err *err)
{
    char basic[((CHRUN_AUTH_USER_MAX + CHRUN_AUTH_SECRET_MAX + 2) / 3 + 1) * 4 + 1];
    int rc;
    if (!c->have_challenge)
        return 0;
    if (client_load_creds(c, err) < 0)
        return -1;
    if (c->challenge.scheme == CHRUN_AUTH_BEARER)
        return fetch_token(c, err);
    if (!c->have_creds || c->creds.identity_token)
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "registry %s requires basic authentication: no credentials for "
                             "'%s' in docker config.json",
                             c->host, c->registry);
    if (basic_value(&c->creds, basic, sizeof(basic), err) < 0)
        return -1;
    rc = set_auth_header(c, "Basic", basic, err);
    explicit_bzero(basic, sizeof(basic));
    return rc;
}

/* Adopt the challenge of a 401 that FROM (the URL that answered) sent. Only
 * the registry's own origin may ask for its credentials: a redirect target
 * on another host that answers 401 gets nothing. */
int registry_take_challenge(struct registry_client *c, const struct registry_resp *resp,
                            const char *from, struct chrun_err *err)
{
    if (!chrun_registry_same_origin(from, c->base)) {
        char host[sizeof(((struct origin *) NULL)->hostport)];
        registry_url_hostport(from, host, sizeof(host));
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "redirect target %s answered 401: credentials for registry %s are "
                             "not sent to another host",
                             host, c->host);
    }
    if (resp->www_auth_too_long)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "registry %s: malformed WWW-Authenticate header: too long", c->host);
    if (resp->www_auth[0] == '\0')
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "registry %s: HTTP 401 without a WWW-Authenticate challenge",
                             c->host);
    if (chrun_auth_parse_challenge(&c->challenge, resp->www_auth, err) < 0)
        return chrun_err_prefix(err, "registry %s", c->host);
    c->have_challenge = true;
    return 0;
}

int registry_auth_refused(struct registry_client *c, const char *what, struct chrun_err *err)
{
    if (c->have_creds && c->challenge.scheme == CHRUN_AUTH_BASIC)
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "%s: registry %s refused the credentials of '%s': wrong username or "
                             "password",
                             what, c->host, c->creds.username);
    if (c->have_creds)
        return chrun_err_set(err, CHRUN_E_AUTH,
                             "%s: registry %s denied access%s%s%s: wrong credentials or no %s "
                             "permission",
                             what, c->host, c->creds.username[0] ? " to '" : "",
                             c->creds.username, c->creds.username[0] ? "'" : "", c->access);
    return chrun_err_set(err, CHRUN_E_AUTH,
                         "%s: registry %s requires authentication: no credentials for '%s' in "
                         "docker config.json",
                         what, c->host, c->registry);
}

/* A registry request with authentication: on 401, take the new challenge,
 * authenticate again once, and retry. There is no /v2/ ping up front (see
 * registry_ping for when there is one): the request's own 401 carries the
 * same challenge, and a registry that needs none, or a token already held,
 * costs one round trip. */
int registry_request(struct registry_client *c, struct registry_req *rq, struct registry_reply *r,
                            struct chrun_err *err)
{
    for (int round = 0;; round++) {
        rq->auth_header = c->auth_header;
        rq->auth_origin = c->base;
        if (registry_http(c, rq, r, err) < 0)
            return -1;
        if (r->resp.status != 401)
            return 0;
        if (round > 0)
            return registry_auth_refused(c, rq->what, err);
        if (registry_take_challenge(c, &r->resp, r->url, err) < 0 ||
            registry_authenticate(c, err) < 0)
            return chrun_err_prefix(err, "%s", rq->what);
    }
}


/* GET /v2/, the API's version check, and say whether the reply is one a
 * registry gives: 200, or 401 asking for credentials. Asked only after a
 * manifest request got 404, to tell a missing image from a host that is
 * not a registry at all (a web server, a wrong port, a proxy's error page);
 * a pull that works never pays this round trip. */
int registry_ping(struct registry_client *c, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX + 8];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = "registry check", .url = url, .max = REGISTRY_ERROR_BODY_MAX,
                         .auth_header = c->auth_header, .auth_origin = c->base};
    long status;

    snprintf(url, sizeof(url), "%s/v2/", c->base);
    if (registry_http(c, &rq, &r, err) < 0) {
        registry_reply_release(&r);
        return -1;
    }
    status = r.resp.status;
    registry_reply_release(&r);
    if (status == 200 || status == 401)
        return 0;
    return chrun_err_set(err, CHRUN_E_NETWORK,
                         "%s does not look like a registry: GET /v2/ answered HTTP %ld", c->host,
                         status);
}

void registry_reply_detail(const struct registry_reply *r, char *buf, size_t size)
{
    cleanup_json json_t *root = NULL;
    json_t *first;
    const char *code, *message;

    buf[0] = '\0';
    /* distribution's error body: {"errors":[{"code":..,"message":..}]} */
    root = json_loadb(r->excerpt, r->excerpt_len, 0, NULL);
    first = json_array_get(json_object_get(root, "errors"), 0);
    code = json_string_value(json_object_get(first, "code"));
    message = json_string_value(json_object_get(first, "message"));
    if (code == NULL && message == NULL)
        return;
    snprintf(buf, size, "%.64s%s%.200s", code ? code : "", code && message ? ": " : "",
             message ? message : "");
    chrun_sanitize(buf);
}

/* ADD <url>: one GET, streamed to a temporary file while hashed, published
 * atomically. See include/chrun/fetch.h. */
#include "chrun/fetch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "cleanup.h"
#include "registry-client.h"
#include "util.h"

#define DEFAULT_NAME "download"
/* Body of a redirect or error reply we read (and throw away). */
#define FETCH_ERROR_BODY_MAX (1024 * 1024)
#define CD_MAX 2048

/* URLs */

struct url_info {
    char scheme[8];      /* "http" or "https" */
    char display[1024];  /* scheme://host[:port]/path: no user info, no query */
};

static int url_info(const char *url, struct url_info *ui, struct chrun_err *err)
{
    cleanup_curl_url CURLU *u = curl_url();
    cleanup_curl_str char *scheme = NULL;
    cleanup_curl_str char *host = NULL;
    cleanup_curl_str char *port = NULL;
    cleanup_curl_str char *path = NULL;
    int rc = 0;
    if (u == NULL)
        return chrun_err_sys(err, ENOMEM, "url");
    if (strlen(url) > CHRUN_FETCH_URL_MAX || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = chrun_err_set(err, CHRUN_E_INPUT, "invalid URL '%.200s'", url);
    } else {
        for (char *p = scheme; *p; p++)
            *p = (char) tolower((unsigned char) *p);
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
            port = NULL;
        snprintf(ui->scheme, sizeof(ui->scheme), "%s", scheme);
        snprintf(ui->display, sizeof(ui->display), "%s://%s%s%s%s", scheme, host,
                 port ? ":" : "", port ? port : "", path);
        chrun_sanitize(ui->display);
        if (!streq(scheme, "http") && !streq(scheme, "https"))
            rc = chrun_err_set(err, CHRUN_E_INPUT, "URL '%s': only http and https are fetched",
                               ui->display);
    }
    return rc;
}

int chrun_fetch_check_redirect(const char *from, const char *to, struct chrun_err *err)
{
    struct url_info f, t;
    struct chrun_err e = CHRUN_ERR_INIT;
    if (url_info(from, &f, err) < 0)
        return -1;
    if (url_info(to, &t, &e) < 0) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%s", to);
        chrun_sanitize(shown);
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "'%s': refusing redirect to '%s%s' (only http and https)", f.display,
                             shown, strlen(to) >= sizeof(shown) ? "..." : "");
    }
    /* a download that started over TLS never continues in the clear */
    if (streq(f.scheme, "https") && streq(t.scheme, "http"))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "'%s': refusing redirect from https to plain http ('%s')", f.display,
                             t.display);
    return 0;
}

/* File names */

static bool is_tspecial(int c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool is_token_char(int c)
{
    return c > 0x20 && c < 0x7f && !is_tspecial(c);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 2231 "charset'lang'%xx..." for utf-8 or us-ascii, as Go decodes it. */
static bool decode_ext(const char *v, char *out, size_t size)
{
    const char *q1 = strchr(v, '\''), *q2, *p;
    size_t o = 0;
    if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
        return false;
    if (!((q1 - v == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
          (q1 - v == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
        return false;
    for (p = q2 + 1; *p; p++) {
        int c = (unsigned char) *p;
        if (c == '%') {
            int hi = hexval((unsigned char) p[1]), lo = hi < 0 ? -1 : hexval((unsigned char) p[2]);
            if (lo < 0)
                return false;
            c = hi * 16 + lo;
            p += 2;
        }
        if (c == 0 || o + 1 >= size)
            return false;
        out[o++] = (char) c;
    }
    out[o] = '\0';
    return true;
}

/* The filename parameter of a Content-Disposition value, as Go's
 * mime.ParseMediaType gives it (filename* decoded wins over filename).
 * False if the value does not parse or has no filename. */
static bool cd_filename(const char *cd, char *out, size_t size)
{
    char plain[CD_MAX] = "", ext[CD_MAX] = "";
    bool have_plain = false, have_ext = false;
    const char *p = skip_ws(cd);
    size_t n = 0;
    while (is_token_char((unsigned char) p[n]) || p[n] == '/')
        n++;
    if (n == 0)
        return false;
    p = skip_ws(p + n);
    while (*p != '\0') {
        char key[64], val[CD_MAX];
        size_t k = 0, v = 0;
        if (*p != ';')
            return false;
        p = skip_ws(p + 1);
        if (*p == '\0')
            break; /* Go accepts a trailing ';' */
        while (is_token_char((unsigned char) *p)) {
            if (k + 1 >= sizeof(key))
                return false;
            key[k++] = (char) tolower((unsigned char) *p++);
        }
        key[k] = '\0';
        if (k == 0 || *p != '=')
            return false;
        p++;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return false;
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (v + 1 >= sizeof(val))
                    return false;
                val[v++] = *p;
            }
            p++;
        } else {
            while (is_token_char((unsigned char) *p)) {
                if (v + 1 >= sizeof(val))
                    return false;
                val[v++] = *p++;
            }
            if (v == 0)
                return false;
        }
        val[v] = '\0';
        p = skip_ws(p);
        if (streq(key, "filename")) {
            if (have_plain)
                return false; /* duplicate parameter */
            have_plain = true;
            snprintf(plain, sizeof(plain), "%s", val);
        } else if (streq(key, "filename*")) {
            if (have_ext)
                return false;
            have_ext = decode_ext(val, ext, sizeof(ext));
        }
    }
    if (have_ext)
        return snprintf(out, size, "%s", ext) < (int) size;
    if (have_plain && plain[0] != '\0')
        return snprintf(out, size, "%s", plain) < (int) size;
    return false;
}

/* The last component of NAME (trailing slashes dropped, Go's path.Base),
 * into BUF; false for ".", "..", "/" and names too long for BUF. */
static bool base_name(const char *name, char *buf, size_t size)
{
    size_t len = strlen(name), start;
    while (len > 0 && name[len - 1] == '/')
        len--;
    start = len;
    while (start > 0 && name[start - 1] != '/')
        start--;
    len -= start;
    if (len == 0 || len >= size || (len == 1 && name[start] == '.') ||
        (len == 2 && name[start] == '.' && name[start + 1] == '.'))
        return false;
    memcpy(buf, name + start, len);
    buf[len] = '\0';
    return true;
}

void chrun_fetch_filename(const char *url, const char *content_disposition, char *buf,
                          size_t size)
{
    char cd[CD_MAX];
    cleanup_curl_url CURLU *u = NULL;
    cleanup_curl_str char *path = NULL;
    bool ok = false;

    if (content_disposition != NULL && cd_filename(content_disposition, cd, sizeof(cd)) &&
        cd[strlen(cd) - 1] != '/' && base_name(cd, buf, size))
        return;
    u = curl_url();
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK)
        ok = base_name(path, buf, size);
    if (!ok)
        snprintf(buf, size, "%s", DEFAULT_NAME);
}

/* The transfer */

struct fetch_state {
    const struct chrun_settings *settings; /* never NULL */
    int fd;
    struct chrun_digest_hasher h;
    uint64_t got, max, discarded;
    bool too_big, declared_too_big, write_failed;
    struct chrun_err werr;
    struct registry_resp resp;
    char cd[CD_MAX];
};

static size_t on_header(char *buf, size_t size, size_t n, void *data)
{
    struct fetch_state *s = data;
    size_t len = size * n;
    static const char cd_name[] = "content-disposition:";
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0)
        s->cd[0] = '\0';
    if (len > sizeof(cd_name) - 1 && strncasecmp(buf, cd_name, sizeof(cd_name) - 1) == 0) {
        const char *v = skip_ws(buf + sizeof(cd_name) - 1);
        size_t vlen = len - (size_t) (v - buf);
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        if (vlen < sizeof(s->cd)) {
            memcpy(s->cd, v, vlen);
            s->cd[vlen] = '\0';
        }
    }
    registry_resp_header_line(&s->resp, buf, len);
    if (registry_resp_declared_over(&s->resp, s->max)) {
        s->declared_too_big = true;
        return 0;
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *data)
{
    struct fetch_state *s = data;
    size_t len = size * n;
    if (s->resp.status < 200 || s->resp.status >= 300) {
        s->discarded += len;
        return s->discarded > FETCH_ERROR_BODY_MAX ? 0 : len;
    }
    if (s->got + len > s->max) {
        s->too_big = true;
        return 0;
    }
    if (chrun_digest_hasher_update(&s->h, buf, len, &s->werr) < 0 ||
        chrun_io_write_full(s->fd, buf, len, &s->werr) < 0) {
        s->write_failed = true;
        return 0;
    }
    s->got += len;
    return len;
}

/* The temporary file: removed unless published. */
struct temp_file {
    int dirfd;
    char name[64];
    int fd;
};

static void temp_file_cleanup(struct temp_file *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->name[0] != '\0')
        unlinkat(t->dirfd, t->name, 0);
}

/* GET URL into S->fd following redirects by hand. */
static int transfer(const char *url, const struct url_info *first, struct fetch_state *s,
                    int64_t *ret_mtime, bool *ret_has_mtime, struct chrun_err *err)
{
    cleanup_curl CURL *e = curl_easy_init();
    char cur[CHRUN_FETCH_URL_MAX + 1], errbuf[CURL_ERROR_SIZE];
    struct url_info ui = *first;
    uint64_t limit_s = s->settings->fetch_timeout_s;
    long long deadline =
        registry_mono_ms() + (long long) (limit_s > 86400 ? 86400 : limit_s) * 1000;

    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "curl init");

    snprintf(cur, sizeof(cur), "%s", url);
    for (int redirects = 0;; redirects++) {
        CURLcode rc;
        curl_off_t filetime = -1;
        char *loc = NULL;
        long long left = deadline - registry_mono_ms();

        if (left <= 0)
            return chrun_err_set(err, CHRUN_E_NETWORK, "fetch '%s': not done within %" PRIu64 " s",
                                 first->display, limit_s);

        registry_resp_reset(&s->resp);
        s->cd[0] = '\0';
        s->discarded = 0;
        curl_easy_reset(e);
        rc = registry_easy_defaults(e, cur, s->settings->connect_timeout_s,
                                    s->settings->stall_timeout_s, errbuf);
        registry_setopt(&rc, e, CURLOPT_HEADERFUNCTION, on_header);
        registry_setopt(&rc, e, CURLOPT_HEADERDATA, s);
        registry_setopt(&rc, e, CURLOPT_WRITEFUNCTION, on_body);
        registry_setopt(&rc, e, CURLOPT_WRITEDATA, s);
        registry_setopt(&rc, e, CURLOPT_FILETIME, 1L);
        /* SPEC "Bad input": a trickle that never stalls still ends */
        registry_setopt(&rc, e, CURLOPT_TIMEOUT_MS, (long) left);
        if (rc != CURLE_OK)
            return registry_curl_setup_failed(rc, ui.display, err);
        rc = curl_easy_perform(e);
        if (s->declared_too_big)
            return chrun_err_sys(err, EFBIG, "fetch '%s': Content-Length %" PRId64
                                 " over the limit of %" PRIu64 " bytes",
                                 ui.display, s->resp.content_length, s->max);
        if (s->too_big)
            return chrun_err_sys(err, EFBIG, "fetch '%s': more than %" PRIu64 " bytes",
                                 ui.display, s->max);
        if (s->write_failed) {
            *err = s->werr;
            return chrun_err_prefix(err, "fetch '%s'", ui.display);
        }
        /* curl counts its timeout from its own start: allow it a little early */
        if (rc == CURLE_OPERATION_TIMEDOUT && registry_mono_ms() + 200 >= deadline)
            return chrun_err_set(err, CHRUN_E_NETWORK, "fetch '%s': not done within %" PRIu64 " s",
                                 first->display, limit_s);
        if (rc != CURLE_OK)
            return chrun_err_set(err, CHRUN_E_NETWORK, "fetch '%s': %s", ui.display,
                                 registry_curl_msg(rc, errbuf));
        if (s->resp.status >= 300 && s->resp.status < 400 && s->resp.status != 304) {
            curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc);
            if (loc == NULL || strlen(loc) > CHRUN_FETCH_URL_MAX)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "fetch '%s': HTTP %ld without a usable Location", ui.display,
                                     s->resp.status);
            if (redirects >= CHRUN_FETCH_REDIRECTS_MAX)
                return chrun_err_set(err, CHRUN_E_INPUT, "fetch '%s': more than %d redirects",
                                     first->display, CHRUN_FETCH_REDIRECTS_MAX);
            if (chrun_fetch_check_redirect(cur, loc, err) < 0)
                return chrun_err_prefix(err, "fetch '%s'", first->display);
            snprintf(cur, sizeof(cur), "%s", loc);
            if (url_info(cur, &ui, err) < 0)
                return -1;
            continue;
        }
        if (s->resp.status < 200 || s->resp.status >= 300)
            return chrun_err_set(err, CHRUN_E_NETWORK, "fetch '%s': HTTP %ld", ui.display,
                                 s->resp.status);
        if (s->resp.content_length >= 0 && (uint64_t) s->resp.content_length != s->got)
            return chrun_err_set(err, CHRUN_E_NETWORK,
                                 "fetch '%s': got %" PRIu64 " bytes of %" PRId64, ui.display,
                                 s->got, s->resp.content_length);
        if (curl_easy_getinfo(e, CURLINFO_FILETIME_T, &filetime) == CURLE_OK && filetime >= 0) {
            *ret_has_mtime = true;
            *ret_mtime = (int64_t) filetime;
        }
        return 0;
    }
}

static int check_out_name(const char *name, struct chrun_err *err)
{
    if (*name == '\0' || strchr(name, '/') != NULL || streq(name, ".") || streq(name, ".."))
        return chrun_err_set(err, CHRUN_E_INPUT, "fetch: output name '%s' is not a plain name",
                             name);
    return 0;
}

int chrun_fetch_url(const char *url, const char *checksum, int out_dirfd, const char *out_name,
                    const struct chrun_settings *settings, struct chrun_fetch_result *ret,
                    struct chrun_err *err)
{
    __attribute__((cleanup(temp_file_cleanup))) struct temp_file tmp = {out_dirfd, "", -1};
    struct fetch_state s = {.settings = chrun_settings_or_defaults(settings), .fd = -1};
    struct chrun_digest want = {{0}}, got;
    struct url_info ui;
    struct timespec times[2];
    int64_t mtime = 0;
    bool has_mtime = false;
    int rc;

    if (url_info(url, &ui, err) < 0 || check_out_name(out_name, err) < 0)
        return -1;
    if (checksum != NULL) {
        if (strncmp(checksum, "sha256:", 7) != 0 && strchr(checksum, ':') != NULL)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "checksum '%.100s' for '%s': only sha256 is supported", checksum,
                                 ui.display);
        if (chrun_digest_parse(&want, checksum, err) < 0)
            return chrun_err_prefix(err, "checksum for '%s'", ui.display);
    }
    tmp.fd = chrun_fs_mkstemp_at(out_dirfd, ".fetch-", tmp.name, sizeof(tmp.name), err);
    if (tmp.fd < 0)
        return -1;
    if (chrun_digest_hasher_init(&s.h, err) < 0)
        return -1;
    s.fd = tmp.fd;
    s.max = s.settings->fetch_max_bytes;
    rc = transfer(url, &ui, &s, &mtime, &has_mtime, err);
    if (rc == 0)
        rc = chrun_digest_hasher_final(&s.h, &got, err);
    chrun_digest_hasher_release(&s.h);
    if (rc < 0)
        return -1;
    if (checksum != NULL && !streq(want.str, got.str))
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "fetch '%s': checksum mismatch: expected %s, got %s", ui.display,
                             want.str, got.str);
    /* BuildKit: mode 0600, mtime from Last-Modified or else the epoch */
    times[0] = times[1] = (struct timespec){.tv_sec = (time_t) mtime};
    if (fchmod(tmp.fd, 0600) < 0 || futimens(tmp.fd, times) < 0 || fsync(tmp.fd) < 0)
        return chrun_err_sys(err, errno, "fetch '%s': finish '%s'", ui.display, tmp.name);
    rc = close(take_fd(tmp.fd));
    if (rc < 0)
        return chrun_err_sys(err, errno, "fetch '%s': close '%s'", ui.display, tmp.name);
    if (renameat(out_dirfd, tmp.name, out_dirfd, out_name) < 0)
        return chrun_err_sys(err, errno, "fetch '%s': rename to '%s'", ui.display, out_name);
    tmp.name[0] = '\0';
    if (chrun_fs_fsync_dir(out_dirfd, err) < 0)
        return -1;
    memset(ret, 0, sizeof(*ret));
    ret->digest = got;
    ret->size_bytes = s.got;
    ret->has_mtime = has_mtime;
    ret->mtime_s = mtime;
    chrun_fetch_filename(url, s.cd[0] ? s.cd : NULL, ret->filename, sizeof(ret->filename));
    return 0;
}

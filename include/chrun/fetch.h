/* Download one http(s) URL to a file, for a Dockerfile's ADD <url>.
 *
 * The request goes through the libcurl setup every chrun download uses
 * (registry-client.h): http and https only, TLS verified against the system
 * CA store, the http_proxy / https_proxy / no_proxy variables (read by
 * libcurl), the connect and stall timeouts of the settings (settings.h),
 * and a whole-download deadline (settings->fetch_timeout_s, at most a day).
 * No credentials are
 * ever sent. Redirects are followed by hand, at most CHRUN_FETCH_REDIRECTS_MAX:
 * to http or https only, and never from https down to plain http. */
#ifndef CHRUN_FETCH_H
#define CHRUN_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/settings.h"

#define CHRUN_FETCH_REDIRECTS_MAX 10
/* Longest URL accepted. */
#define CHRUN_FETCH_URL_MAX 8192
/* Longest file name BuildKit's rule can give (one path component). */
#define CHRUN_FETCH_NAME_MAX 256

struct chrun_fetch_result {
    struct chrun_digest digest; /* sha256 of the body as stored */
    uint64_t size_bytes;
    /* The name Docker (BuildKit) gives the file when ADD's destination is a
     * directory: the Content-Disposition filename's last component, else the
     * last component of the URL's path (percent-decoded; the URL as written
     * in the Dockerfile, not where redirects led), else "download". */
    char filename[CHRUN_FETCH_NAME_MAX];
    /* Last-Modified of the reply, which BuildKit gives the file as its mtime
     * (without one, BuildKit uses the Unix epoch). */
    bool has_mtime;
    int64_t mtime_s;
};

/* GET URL into OUT_DIRFD/OUT_NAME (a plain name): streamed into a temporary
 * file in OUT_DIRFD while hashed, then fsynced and renamed to OUT_NAME with
 * mode 0600 (BuildKit's mode for a downloaded file) and Last-Modified as its
 * mtime. With CHECKSUM ("sha256:<64 hex>", ADD --checksum) the body must hash
 * to it. On any failure nothing is left in OUT_DIRFD and *ERR names the URL
 * (without user info or query): a bad URL or scheme, or a refused redirect,
 * is CHRUN_E_INPUT; a checksum mismatch is CHRUN_E_DIGEST with both digests;
 * a non-2xx status, transfer failure or deadline CHRUN_E_NETWORK; an oversized body
 * EFBIG. SETTINGS (NULL: defaults) give the timeouts, the whole-download
 * deadline (redirects included, so a body trickling just above the stall
 * limit still ends) and the largest body accepted (settings->fetch_max_bytes:
 * more fails with EFBIG, before the body when Content-Length says so).
 * Fills *RET on success. Returns 0 or -1. */
int chrun_fetch_url(const char *url, const char *checksum, int out_dirfd, const char *out_name,
                    const struct chrun_settings *settings, struct chrun_fetch_result *ret,
                    struct chrun_err *err);

/* The redirect rule: 0 if a reply from FROM may send us to TO (absolute),
 * else -1 with CHRUN_E_INPUT saying why. */
int chrun_fetch_check_redirect(const char *from, const char *to, struct chrun_err *err);

/* BuildKit's file name for URL given the reply's CONTENT_DISPOSITION header
 * value (NULL if none), into BUF of SIZE bytes (see filename above). */
void chrun_fetch_filename(const char *url, const char *content_disposition, char *buf,
                          size_t size);

#endif

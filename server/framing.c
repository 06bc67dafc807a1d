/* Framing checks over the headers libmicrohttpd parsed (it keeps every repeat of a header). */
#include "framing.h"

#include <string.h>
#include <strings.h>

typedef struct seen {
    unsigned content_length, transfer_encoding, host;
    const char *problem;
} seen;

/* RFC 9110 §5.6.2 token characters. */
static int is_tchar(unsigned char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int all_digits(const char *s, size_t n) {
    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static enum MHD_Result visit(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
                             size_t value_size) {
    (void)kind;
    seen *s = cls;
    for (size_t i = 0; i < key_size; i++)
        if (!is_tchar((unsigned char)key[i])) {
            s->problem = "a header name holds a character other than a token's (a space before the colon?)";
            return MHD_NO;
        }
    if (key_size == 0) {
        s->problem = "a header line has no name";
        return MHD_NO;
    }
    for (size_t i = 0; i < value_size; i++) {
        unsigned char ch = (unsigned char)value[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') {
            s->problem = "a header value holds a bare CR, LF or NUL";
            return MHD_NO;
        }
    }
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (++s->content_length > 1 || !all_digits(value, value_size))
            s->problem = s->content_length > 1 ? "more than one Content-Length header"
                                               : "Content-Length is not a plain decimal number";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (++s->transfer_encoding > 1 || value_size != 7 || strncasecmp(value, "chunked", 7) != 0)
            s->problem = s->transfer_encoding > 1 ? "more than one Transfer-Encoding header"
                                                  : "Transfer-Encoding other than a single 'chunked'";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        s->host++;
    }
    return s->problem ? MHD_NO : MHD_YES;
}

const char *tb_framing_check(struct MHD_Connection *conn, const char *version) {
    seen s = {0, 0, 0, NULL};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, visit, &s);
    if (s.problem)
        return s.problem;
    if (s.content_length && s.transfer_encoding)
        return "both Content-Length and Transfer-Encoding";
    int http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    if (s.transfer_encoding && !http11)
        return "Transfer-Encoding in a request older than HTTP/1.1";
    if (http11 && s.host != 1)
        return s.host ? "more than one Host header" : "an HTTP/1.1 request without a Host header";
    if (s.host > 1)
        return "more than one Host header";
    return NULL;
}

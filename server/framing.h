/* Strict request framing (RFC 9112 §6.1, §6.3, §11.2): what libmicrohttpd 0.9.75 accepts but a
 * proxy in front of us may frame otherwise — the stuff of request smuggling. */
#ifndef TB_SERVER_FRAMING_H
#define TB_SERVER_FRAMING_H

#include <microhttpd.h>

/* NULL when the request's framing is unambiguous; else why not (a static string). Checked on a
 * request's first callback: the answer to a bad one is a 400 and a closed connection, as the
 * bytes after it cannot be trusted to start a request. */
const char *tb_framing_check(struct MHD_Connection *conn, const char *version);

#endif

/* The access log: one JSON line per request on stderr. */
#ifndef TB_SERVER_ACCESS_LOG_H
#define TB_SERVER_ACCESS_LOG_H

#include <sys/socket.h>

#include "request.h"

/* Writes req's line: time, method, path, status, bytes, microseconds, client (from `client`, which
 * may be NULL), forwarded-for when sent, and "aborted" when the request did not complete. */
void tb_access_log_write(const struct sockaddr *client, const tb_request *req, double us, int completed);

#endif

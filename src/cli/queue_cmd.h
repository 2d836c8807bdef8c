/* correo queue list|show ID|flush [ID]|delete ID. */
#ifndef CLI_QUEUE_CMD_H
#define CLI_QUEUE_CMD_H

#include "core/config.h"

/* argv[0] is "queue". Returns the exit status: 0, 1 with one line
 * "correo: ..." on standard error (an unknown ID, an unreadable queue),
 * 2 on a usage error.
 *
 *   list        one line per message: ID CREATED SIZE <FROM> <RCPT>...
 *   show ID     "field: value" lines; per recipient "rcpt: <ADDR>
 *               pending|deferred" followed by indented status, code,
 *               remote-mta, diagnostic, last-attempt, retry-until,
 *               notify, orcpt when known; then attempts and next-attempt
 *   flush [ID]  makes that message (or every one) due now, then touches
 *               data_dir/queue/flush so that a running daemon looks at
 *               the queue; prints "flushed N message(s)"
 *   delete ID   removes the message without a report */
int cli_queue(const struct config *cfg, int argc, char **argv);

#endif

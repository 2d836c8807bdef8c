/* correo queue list|show ID|flush [ID]|delete ID. */
#ifndef CLI_QUEUE_CMD_H
#define CLI_QUEUE_CMD_H

#include "core/config.h"

/* argv[0] is "queue". Returns the exit status. */
int cli_queue(const struct config *cfg, int argc, char **argv);

#endif

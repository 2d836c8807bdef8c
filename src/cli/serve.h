/* correo serve and correo check-config. */
#ifndef CLI_SERVE_H
#define CLI_SERVE_H

#include "core/config.h"

/* Runs the daemon in the foreground until SIGTERM/SIGINT. Returns the exit
 * status. cfg is owned by the caller; SIGHUP loads cfg->path again. */
int serve_main(struct config *cfg, int verbose);

/* Loads and validates; prints "configuration OK" or the error. */
int check_config_main(const struct config *cfg);

#endif

/* The version correo reports (CLI, IMAP ID). */
#ifndef CORE_VERSION_H
#define CORE_VERSION_H

#define CORREO_VERSION "0.1.0"

#endif

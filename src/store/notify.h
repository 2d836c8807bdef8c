/* Change notification between sessions of one process: a session that
 * changed a user's mail (SMTP delivery, IMAP STORE/EXPUNGE/APPEND, POP3
 * deletions) says so, and the IMAP sessions watching that user learn of it
 * at once (IDLE, and untagged updates at the next command). Keyed by the
 * user's Maildir root path (userdb_maildir_path). Loop thread only. */
#ifndef STORE_NOTIFY_H
#define STORE_NOTIFY_H

struct notify_watch;

typedef void (*notify_fn)(void *arg);

/* Calls fn(arg) on the loop, soon after each notify_changed(root) by
 * anyone (also by the watcher itself: the caller ignores its own). */
struct notify_watch *notify_watch_add(const char *root, notify_fn fn,
    void *arg);
/* Stops and frees the watch (NULL is fine). Safe from inside fn. */
void notify_watch_remove(struct notify_watch *w);

/* Something changed under root. Watchers are called from a deferred
 * event, never from inside this call. */
void notify_changed(const char *root);

/* Watches currently registered (tests, logs). */
unsigned notify_watch_count(void);

#endif

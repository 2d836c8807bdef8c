/* Throttling of failed authentications, per client address and per
 * account, so that online guessing is slow. Loop thread only.
 *
 * After F failures from an address within the window, each new attempt is
 * delayed min(2^(F-2), 16) seconds (the first two failures are free); at
 * THROTTLE_BLOCK_AFTER failures the address is refused (temporary error)
 * until the window passes. Per account the same, counted over all
 * addresses, with a larger allowance. Successful login clears the address's
 * count. Entries expire after THROTTLE_WINDOW_S seconds without failures. */
#ifndef AUTH_THROTTLE_H
#define AUTH_THROTTLE_H

#include <stdbool.h>

#define THROTTLE_WINDOW_S	900
#define THROTTLE_BLOCK_AFTER	10
#define THROTTLE_ACCOUNT_BLOCK_AFTER 30

/* Milliseconds to wait before answering an attempt from ip for account
 * (account may be NULL when not known yet). */
unsigned throttle_delay_ms(const char *ip, const char *account);
/* True when ip or account is blocked: answer with a temporary failure. */
bool throttle_blocked(const char *ip, const char *account);
void throttle_failure(const char *ip, const char *account);
void throttle_success(const char *ip, const char *account);
/* For tests: forget everything; time source override (0: real time). */
void throttle_reset(void);
void throttle_set_clock(long long (*now_s)(void));

#endif

/* qb-reconcile's configuration keys ([qb-reconcile]): main.c's job and the fuzz target fuzz/fuzz_config.c share
 * this table. */
#include <stddef.h>

#include "config.h"

#include "qbr.h"

const struct cfg_key qbr_config_keys[] = {
	{ "environment", CFG_ENUM, "sandbox", 0, 0, "sandbox|production", 0,
	    "QuickBooks environment. production: real books; is_test invoices are never sent there." },
	{ "client_id", CFG_STR, NULL, 0, 0, NULL, CFG_REQUIRED, "Client ID of the Intuit app (Keys & credentials)." },
	{ "client_secret_file", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "File holding the app's client secret (mode 0600), or systemd credential qb-client-secret." },
	{ "redirect_uri", CFG_URL, NULL, 0, 0, NULL, 0,
	    "Redirect URI registered with the Intuit app (needed by `syncctl qb connect`)." },
	{ "api_base_url", CFG_URL, NULL, 0, 0, NULL, 0,
	    "API base. Default: https://sandbox-quickbooks.api.intuit.com or https://quickbooks.api.intuit.com." },
	{ "token_url", CFG_URL, "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer", 0, 0, NULL, 0,
	    "Intuit OAuth 2.0 token endpoint (the same for sandbox and production)." },
	{ "authorize_url", CFG_URL, "https://appcenter.intuit.com/connect/oauth2", 0, 0, NULL, 0,
	    "Intuit OAuth 2.0 authorization endpoint." },
	{ "scope", CFG_STR, "com.intuit.quickbooks.accounting", 0, 0, NULL, 0, "OAuth scope asked for." },
	{ "token_file", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "Token store (mode 0600, written atomically). Default: <paths.state_dir>/qb-reconcile/qb-tokens.json." },
	{ "currency", CFG_STR, "AUD", 0, 0, NULL, 0, "The QuickBooks company's home currency; other invoices fail." },
	{ "default_item", CFG_STR, "1", 0, 0, NULL, 0, "QuickBooks Item Id for invoice lines whose item is not mapped." },
	{ "item_map", CFG_STR, NULL, 0, 0, NULL, 0,
	    "Item per plan: plan=ItemId pairs separated by commas, e.g. essential=3,professional=5." },
	{ "minor_version", CFG_INT, "75", 1, 999, NULL, 0, "API minorversion (75: the only one honoured since 2025-08)." },
	{ "max_attempts", CFG_INT, "5", 1, 100, NULL, 0, "Failed push attempts before an invoice is abandoned." },
	{ "push_batch", CFG_INT, "30", 1, 100, NULL, 0, "Invoices per push step (one DocNumber lookup each)." },
	{ "query_batch", CFG_INT, "100", 1, 500, NULL, 0, "Invoices per query when reconciling without CDC." },
	{ "requests_per_minute", CFG_INT, "450", 1, 500, NULL, 0,
	    "Pace of API requests (QuickBooks allows 500/min and 10/s per company); sets min_interval unless given." },
	{ "throttle_wait", CFG_DURATION, "60s", 0, 600000, NULL, 0,
	    "Wait after a 429 / ThrottleExceeded without Retry-After (QuickBooks says 60 s)." },
	{ "cdc_margin", CFG_DURATION, "1h", 0, 86400000, NULL, 0,
	    "Reconcile overlaps the previous one by this much (clock differences, late commits)." },
	{ "cdc_max_objects", CFG_INT, "1000", 1, 100000, NULL, 0,
	    "Objects at which a CDC answer counts as cut (QuickBooks returns at most 1,000)." },
	{ "token_lock_timeout", CFG_DURATION, "60s", 1000, 600000, NULL, 0,
	    "How long a refresh waits for another process holding the token lock." },
	{ "invalid_grant_recheck", CFG_DURATION, "2m", 0, 3600000, NULL, 0,
	    "After an invalid_grant, ask again this much later before believing it (outages say it too); 0: never." },
	{ "hard_expiry_warn", CFG_DURATION, "60d", 0, 31536000000, NULL, 0,
	    "Mail the operator once when the refresh token's hard (5-year) expiry is this close." },
	{ "connect_state_lifetime", CFG_DURATION, "1h", 60000, 86400000, NULL, 0,
	    "How long the URL of `syncctl qb connect` stays usable." },
	{ "digest", CFG_BOOL, "no", 0, 0, NULL, 0, "Mail a summary after every cycle, not only when something needs "
	    "the operator." },
	{ "billing_source", CFG_ENUM, "local", 0, 0, "local|d1", 0,
	    "Where billing writes the invoices: local (ops.db) or d1 (the ops database of [d1]; docs/qb-reconcile.md)." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

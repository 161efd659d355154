/*
 * The cycle plan that init writes and the later phases read (cycle_state, canonical UTC text), and the one mapping
 * of a source error onto the engine.  Every phase uses these; they live here so that no phase calls another.
 */
#include <string.h>

#include "cycle.h"
#include "plan.h"
#include "tgatime.h"

bool
plan_get(struct step *st, const char *key, int64_t *ticks)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), key);
	bool zone;

	return cJSON_IsString(v) && ticks_parse(v->valuestring, strlen(v->valuestring), ticks, &zone);
}

void
plan_set(struct step *st, const char *key, int64_t ticks)
{
	cJSON *cs = step_cycle_state(st);
	char t[TICKS_LEN];

	cJSON_DeleteItemFromObjectCaseSensitive(cs, key);
	cJSON_AddStringToObject(cs, key, ticks_format(ticks, t));
}

void
phase_fail(struct step *st, const struct src_error *e)
{
	switch (e->status) {
	case SRC_CREDENTIALS:
	case SRC_FAULT:
		step_fail(st, STEP_FATAL, "%s", e->msg);
		break;
	default:
		step_fail(st, STEP_RETRY, "%s", e->msg[0] ? e->msg : "failed");
		break;
	}
}

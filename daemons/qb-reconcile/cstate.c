/* Cycle-state counters: kept in the cycle's JSON state, so they commit with each step and survive a resume. */
#include <cJSON.h>

#include "cycle.h"
#include "qbr.h"

int64_t
cstate_get(struct step *st, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(step_cycle_state(st), key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

void
cstate_add(struct step *st, const char *key, int64_t n)
{
	cJSON *cs = step_cycle_state(st);
	int64_t v = cstate_get(st, key) + n;

	cJSON_DeleteItemFromObject(cs, key);
	cJSON_AddNumberToObject(cs, key, (double)v);
}

void
cstate_set_bool(struct step *st, const char *key, bool v)
{
	cJSON *cs = step_cycle_state(st);

	cJSON_DeleteItemFromObject(cs, key);
	cJSON_AddBoolToObject(cs, key, v);
}


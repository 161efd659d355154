/* Reading QuickBooks' answers (qbo-read.h): one reader for the push, the reconcile and the fuzz target. */
#include <string.h>

#include "qbo-read.h"
#include "qbr.h"

void
qbo_invoice_read(const cJSON *qi, struct qbo_invoice *inv)
{
	memset(inv, 0, sizeof *inv);
	inv->id = json_str(qi, "Id");
	inv->sync_token = json_str(qi, "SyncToken");
	inv->doc_number = json_str(qi, "DocNumber");
	inv->customer = json_str(json_get(qi, "CustomerRef"), "value");
	inv->status = json_str(qi, "status");
	inv->note = json_str(qi, "PrivateNote");
	inv->amounts = json_cents(qi, "TotalAmt", &inv->total_cents) && json_cents(qi, "Balance", &inv->balance_cents);
	if (!inv->amounts)
		inv->total_cents = inv->balance_cents = 0;
	inv->updated_ok = qbo_time_utc(json_str(json_get(qi, "MetaData"), "LastUpdatedTime"), inv->updated);
	if (!inv->updated_ok)
		inv->updated[0] = '\0';
}

const cJSON *
qbo_query_rows(const cJSON *json, const char *entity)
{
	const cJSON *rows = json_get(json_get(json, "QueryResponse"), entity);

	return cJSON_IsArray(rows) ? rows : NULL;
}

bool
qbo_customer_row(const cJSON *row, const char **name, const char **id)
{
	*name = json_str(row, "DisplayName");
	*id = json_str(row, "Id");
	return *name != NULL && *id != NULL;
}

int
qbo_cdc_each(const cJSON *json, qbo_cdc_fn fn, void *arg)
{
	const cJSON *cdc = json_get(json, "CDCResponse"), *blk, *arr, *obj;

	cdc = cJSON_IsArray(cdc) ? cJSON_GetArrayItem(cdc, 0) : cdc;
	cJSON_ArrayForEach(blk, json_get(cdc, "QueryResponse")) {
		cJSON_ArrayForEach(arr, blk) {
			if (!cJSON_IsArray(arr) || arr->string == NULL)
				continue;
			cJSON_ArrayForEach(obj, arr)
				if (fn(arr->string, obj, arg) == -1)
					return -1;
		}
	}
	return 0;
}

/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  Retry policies: their validation and the delay they give.
 *
 * A retry policy is a jsonb object with these keys, all optional:
 *
 *	backoff		"fixed", "linear" or "exponential" (default "exponential")
 *	delay		base delay in seconds, >= 0 (default 1)
 *	factor		growth factor of exponential backoff, >= 1 (default 2)
 *	max_delay	cap in seconds, >= 0 (default 3600)
 *	jitter		"none", "full", "equal" or "decorrelated" (default "none")
 *
 * After attempt n (1 for the first run) fails, the job waits
 *
 *	fixed:        d = delay
 *	linear:       d = delay * n
 *	exponential:  d = delay * factor^(n-1)
 *	capped:       c = min(d, max_delay)
 *
 * and then, by jitter (r is uniform in [0,1) from the server's PRNG):
 *
 *	none:         c
 *	full:         r * c
 *	equal:        c/2 + r * c/2
 *	decorrelated: min(max_delay, delay + r * (max(delay, 3 * prev) - delay))
 *	              where prev is the delay before the previous retry (delay
 *	              for the first); the backoff kind does not apply.
 *
 * A queue stores a complete policy (keys left out take the defaults); a
 * job may carry a partial one whose keys override its queue's at the time
 * of the failure.  Every key is validated on its own, so any merge of
 * valid policies is valid.
 *
 * IDENTIFICATION
 *	  src/backoff.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_check_retry_policy);
PG_FUNCTION_INFO_V1(queue_backoff_delay);

/* Largest delay or cap a policy may name, in seconds (about 31 years). */
#define MAX_POLICY_SECONDS	1.0e9
/* Largest exponential factor. */
#define MAX_POLICY_FACTOR	1000.0

typedef enum BackoffKind
{
	BACKOFF_FIXED,
	BACKOFF_LINEAR,
	BACKOFF_EXPONENTIAL
} BackoffKind;

typedef enum JitterKind
{
	JITTER_NONE,
	JITTER_FULL,
	JITTER_EQUAL,
	JITTER_DECORRELATED
} JitterKind;

typedef struct RetryPolicy
{
	BackoffKind backoff;
	double		delay;
	double		factor;
	double		max_delay;
	JitterKind	jitter;
} RetryPolicy;

static const char *const backoff_names[] = {"fixed", "linear", "exponential", NULL};
static const char *const jitter_names[] = {"none", "full", "equal", "decorrelated", NULL};

/*
 * policy_string
 *		The index of v's string among names, or an error naming the key.
 */
static int
policy_string(const char *key, JsonbValue *v, const char *const *names)
{
	if (v->type == jbvString)
	{
		int			i;

		for (i = 0; names[i] != NULL; i++)
		{
			if (strlen(names[i]) == (size_t) v->val.string.len &&
				strncmp(names[i], v->val.string.val, v->val.string.len) == 0)
				return i;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid retry policy: unknown %s", key),
			 errhint("Use one of: %s.",
					 names == backoff_names ? "fixed, linear, exponential"
					 : "none, full, equal, decorrelated")));
	return 0;					/* keep compiler quiet */
}

/*
 * policy_number
 *		v as a double within [min, max], or an error naming the key.
 */
static double
policy_number(const char *key, JsonbValue *v, double min, double max)
{
	double		d;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid retry policy: %s must be a number", key)));
	/* no overflow error: a number beyond a double is simply out of range */
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (isnan(d) || d < min || d > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid retry policy: %s must be between %g and %g",
						key, min, max)));
	return d;
}

/*
 * parse_policy
 *		Validates policy and fills *out, starting from the defaults.
 */
static void
parse_policy(Jsonb *policy, RetryPolicy *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	out->backoff = BACKOFF_EXPONENTIAL;
	out->delay = 1.0;
	out->factor = 2.0;
	out->max_delay = 3600.0;
	out->jitter = JITTER_NONE;

	if (policy == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid retry policy: must be a JSON object")));

	it = JsonbIteratorInit(&policy->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (strcmp(key, "backoff") == 0)
				out->backoff = (BackoffKind) policy_string(key, &v, backoff_names);
			else if (strcmp(key, "jitter") == 0)
				out->jitter = (JitterKind) policy_string(key, &v, jitter_names);
			else if (strcmp(key, "delay") == 0)
				out->delay = policy_number(key, &v, 0, MAX_POLICY_SECONDS);
			else if (strcmp(key, "max_delay") == 0)
				out->max_delay = policy_number(key, &v, 0, MAX_POLICY_SECONDS);
			else if (strcmp(key, "factor") == 0)
				out->factor = policy_number(key, &v, 1, MAX_POLICY_FACTOR);
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid retry policy: unknown key \"%s\"", key),
						 errhint("The keys are backoff, delay, factor, max_delay and jitter.")));
		}
	}
}

/*
 * queue_check_policy_keys
 *		Raises unless policy is a valid (possibly partial) retry policy.
 */
void
queue_check_policy_keys(Jsonb *policy)
{
	RetryPolicy scratch;

	parse_policy(policy, &scratch);
}

/*
 * queue_compute_delay
 *		Seconds to wait after the given attempt failed, per the header's
 *		formulas; previous is the delay before the previous retry, or a
 *		negative number when there was none.
 */
double
queue_compute_delay(Jsonb *policy, int attempt, double previous)
{
	RetryPolicy p;
	double		d;
	double		r;

	parse_policy(policy, &p);
	if (attempt < 1)
		attempt = 1;

	if (p.jitter == JITTER_DECORRELATED)
	{
		double		prev = previous < 0 ? p.delay : previous;
		double		hi = Max(p.delay, 3.0 * prev);

		r = pg_prng_double(&pg_global_prng_state);
		d = p.delay + r * (hi - p.delay);
		return Min(d, p.max_delay);
	}

	switch (p.backoff)
	{
		case BACKOFF_FIXED:
			d = p.delay;
			break;
		case BACKOFF_LINEAR:
			d = p.delay * attempt;
			break;
		case BACKOFF_EXPONENTIAL:
		default:
			/* factor^(n-1) overflows to infinity long before n does */
			d = p.delay == 0 ? 0 : p.delay * pow(p.factor, attempt - 1);
			break;
	}
	if (d > p.max_delay)
		d = p.max_delay;

	switch (p.jitter)
	{
		case JITTER_FULL:
			r = pg_prng_double(&pg_global_prng_state);
			d = r * d;
			break;
		case JITTER_EQUAL:
			r = pg_prng_double(&pg_global_prng_state);
			d = d / 2.0 + r * d / 2.0;
			break;
		default:
			break;
	}
	return d;
}

/*
 * queue._check_retry_policy(policy, complete): validates; with complete,
 * returns the policy with every key present (defaults filled in), as a
 * queue stores it; otherwise returns it as given.
 */
Datum
queue_check_retry_policy(PG_FUNCTION_ARGS)
{
	Jsonb	   *policy;
	RetryPolicy p;
	StringInfoData buf;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	policy = PG_GETARG_JSONB_P(0);
	parse_policy(policy, &p);
	if (!PG_ARGISNULL(1) && !PG_GETARG_BOOL(1))
		PG_RETURN_JSONB_P(policy);

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"backoff\": \"%s\", \"delay\": %s, \"factor\": %s, "
					 "\"max_delay\": %s, \"jitter\": \"%s\"}",
					 backoff_names[p.backoff], float8out_internal(p.delay),
					 float8out_internal(p.factor), float8out_internal(p.max_delay),
					 jitter_names[p.jitter]);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * queue.backoff_delay(policy, attempt, previous_delay): the delay after
 * the given attempt fails, as an interval.  NULL policy means the defaults.
 */
Datum
queue_backoff_delay(PG_FUNCTION_ARGS)
{
	Jsonb	   *policy = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	int32		attempt;
	double		previous = -1;
	double		seconds;

	QUEUE_ARG_NOT_NULL(1, "attempt");
	attempt = PG_GETARG_INT32(1);
	if (attempt < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attempt must be at least 1, not %d", attempt)));
	if (!PG_ARGISNULL(2))
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(2);

		previous = queue_interval_seconds(iv);
		if (previous < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("previous_delay must not be negative")));
	}

	seconds = queue_compute_delay(policy, attempt, previous);
	PG_RETURN_INTERVAL_P(queue_seconds_interval(seconds));
}

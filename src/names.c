/*-------------------------------------------------------------------------
 *
 * names.c
 *	  Validation of the names users give: queues and workers.
 *
 * Queue names never become SQL identifiers (queues are rows, told apart by
 * id), so the allow-list is not what keeps SQL injection out; it keeps
 * names printable, unambiguous in logs, metrics and URLs, and short enough
 * to index.  Allowed: 1 to 64 bytes of ASCII letters, digits, and the
 * punctuation _ - . : , starting with a letter or a digit.
 *
 * IDENTIFICATION
 *	  src/names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_check_name);

/*
 * queue_check_name_value
 *		Raises unless name is a valid name; what says what it names
 *		("queue", later "topic" and so on) for the message.
 */
void
queue_check_name_value(const char *name, const char *what)
{
	size_t		len = strlen(name);
	const char *p;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s name must not be empty", what)));
	if (len > QUEUE_NAME_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s name is too long", what),
				 errdetail("The name has %zu bytes; the limit is %d.",
						   len, QUEUE_NAME_MAXLEN)));
	for (p = name; *p; p++)
	{
		char		c = *p;
		bool		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9');

		if (!ok && p != name)
			ok = (c == '_' || c == '-' || c == '.' || c == ':');
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid %s name \"%s\"", what, name),
					 errdetail("Names start with a letter or digit and contain only ASCII letters, digits, and the characters _ - . :")));
	}
}

/*
 * queue_check_worker_name
 *		Raises unless worker is a usable worker name: any text of 1 to
 *		QUEUE_WORKER_MAXLEN bytes (it is only stored and shown).
 */
void
queue_check_worker_name(const char *worker)
{
	size_t		len = strlen(worker);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("worker name must not be empty")));
	if (len > QUEUE_WORKER_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("worker name is too long"),
				 errdetail("The name has %zu bytes; the limit is %d.",
						   len, QUEUE_WORKER_MAXLEN)));
}

/*
 * queue._check_name(name, what): the SQL face of queue_check_name_value.
 */
Datum
queue_check_name(PG_FUNCTION_ARGS)
{
	char	   *what = PG_ARGISNULL(1) ? "queue" : text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s name must not be null", what)));
	queue_check_name_value(text_to_cstring(PG_GETARG_TEXT_PP(0)), what);
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

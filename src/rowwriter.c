/*-------------------------------------------------------------------------
 *
 * rowwriter.c
 *	  Inserting rows into the extension's own tables without planning and
 *	  starting an INSERT statement for each call.
 *
 * An enqueue of one job through SPI spends most of its time not writing
 * the row but setting up the statement that writes it: executor start,
 * the projection of the VALUES list, and above all ExecConstraints, which
 * reads each CHECK constraint back from its stored text (stringToNode) and
 * plans it again on every execution.  A row writer does what the executor
 * does for an INSERT, and nothing else:
 *
 *	  - the row is built from the caller's values, column by column by
 *		name, so the code does not depend on the table's column order;
 *	  - every constraint of the table is checked (ExecConstraints: NOT NULL
 *		and all CHECK constraints, users' own included), with the constraint
 *		trees kept per backend, keyed by their stored text, so only the
 *		text's parsing (and planning, where nothing can change it under the
 *		same text) is saved, never a check;
 *	  - the heap insert, then every index (partial ones by their predicate,
 *		unique ones checked), as ExecInsertIndexTuples does it for INSERT;
 *		a batch goes to the heap with one multi-insert per group of rows, as
 *		COPY writes it.  As in COPY, the rows of a group are all checked
 *		before any is written, so of a batch with several bad rows, a
 *		constraint error of a later row may be the one reported before a
 *		duplicate key of an earlier one.
 *
 * Whatever the writer cannot do exactly as an INSERT would, it declines,
 * and the caller falls back to its SQL statement: a table with triggers
 * (which also covers foreign keys and deferrable unique constraints) or
 * rules, a partition, a stored generated column, row-level security that
 * applies, no INSERT privilege (the statement then reports it), a column
 * the caller does not know that has a default or is NOT NULL, or a column
 * of another type or with a type modifier.  So a user's trigger or CHECK
 * on queue.job keeps its effect.
 *
 * The rows are written with the current command id, as an INSERT's are;
 * later statements of the transaction see them after the next command
 * counter increment (SPI makes one before each statement).
 *
 * IDENTIFICATION
 *	  src/rowwriter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "queue.h"

/*
 * The CHECK constraints of one relation, read from their stored texts
 * (ccbin) and reused while those texts are the same.  A constraint whose
 * planning depends on nothing that can change under the same text is kept
 * planned: it calls no function that could be replaced (none of OID
 * FirstUnpinnedObjectId or more, the plan cache's own rule; planning may
 * inline such a function, or fold an immutable one into a constant), and
 * expression_planner_with_deps reports no dependency (a domain, whose
 * constraints could change).  Any other is kept parsed and planned at each
 * use, as the executor does.  A writer works on copies, so an entry may be
 * refilled at any time.
 */
typedef struct CheckCacheEntry
{
	Oid			relid;			/* InvalidOid: unused */
	uint64		last_used;		/* for the choice of an entry to refill */
	int			ncheck;
	char	  **ccbin;			/* copies of the texts read */
	Node	  **expr;			/* the constraints, parsed or planned */
	bool	   *planned;		/* expr[i] is planned already */
	MemoryContext cxt;
} CheckCacheEntry;

/*
 * The tables writers write are queue.job and queue.job_archive; the spare
 * entries keep tables of a dropped and re-created extension from pushing
 * those two out of each other's way.
 */
#define CHECK_CACHE_SIZE	4

static CheckCacheEntry check_cache[CHECK_CACHE_SIZE];
static uint64 check_cache_clock = 0;

/* check_functions_in_node callback: a function that could be replaced? */
static bool
replaceable_function_checker(Oid func_id, void *context)
{
	return func_id >= (Oid) FirstUnpinnedObjectId;
}

/* Whether an expression calls a function that could be replaced. */
static bool
calls_replaceable_function(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, replaceable_function_checker, context))
		return true;
	return expression_tree_walker(node, calls_replaceable_function, context);
}

/*
 * check_cache_for
 *		The cache entry of rel's CHECK constraints, filled from the stored
 *		texts unless it holds them already; the least recently used entry
 *		is refilled when none is rel's.
 */
static CheckCacheEntry *
check_cache_for(Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	int			ncheck = constr->num_check;
	CheckCacheEntry *e = NULL;
	bool		same;
	MemoryContext old;

	for (int k = 0; k < CHECK_CACHE_SIZE && e == NULL; k++)
		if (check_cache[k].relid == RelationGetRelid(rel))
			e = &check_cache[k];
	if (e == NULL)
	{
		e = &check_cache[0];
		for (int k = 1; k < CHECK_CACHE_SIZE; k++)
			if (check_cache[k].last_used < e->last_used)
				e = &check_cache[k];
	}
	e->last_used = ++check_cache_clock;

	same = (e->relid == RelationGetRelid(rel) && e->ncheck == ncheck);
	for (int i = 0; same && i < ncheck; i++)
		same = (strcmp(e->ccbin[i], constr->check[i].ccbin) == 0);
	if (same)
		return e;

	if (e->cxt == NULL)
		e->cxt = AllocSetContextCreate(TopMemoryContext, "queue check constraints",
									   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(e->cxt);
	e->relid = InvalidOid;

	old = MemoryContextSwitchTo(e->cxt);
	e->ccbin = palloc(sizeof(char *) * Max(ncheck, 1));
	e->expr = palloc(sizeof(Node *) * Max(ncheck, 1));
	e->planned = palloc(sizeof(bool) * Max(ncheck, 1));
	for (int i = 0; i < ncheck; i++)
	{
		Node	   *parsed = stringToNode(constr->check[i].ccbin);
		List	   *relations = NIL;
		List	   *items = NIL;
		Expr	   *planned;

		planned = expression_planner_with_deps((Expr *) copyObject(parsed),
											   &relations, &items);
		e->ccbin[i] = pstrdup(constr->check[i].ccbin);
		e->planned[i] = (relations == NIL && items == NIL &&
						 !calls_replaceable_function(parsed, NULL));
		e->expr[i] = e->planned[i] ? (Node *) planned : parsed;
	}
	MemoryContextSwitchTo(old);
	e->ncheck = ncheck;
	e->relid = RelationGetRelid(rel);
	return e;
}

/*
 * writer_applies
 *		Whether rows can go into rel as an INSERT of the given columns would
 *		put them, without the executor; fills map (column i of the caller
 *		is attribute map[i] - 1).
 */
static bool
writer_applies(Relation rel, const QueueColumn *columns, int ncolumns,
			   AttrNumber *map)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->trigdesc != NULL || rel->rd_rules != NULL)
		return false;
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition)
		return false;
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		return false;
	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return false;
	/* no privilege error of our own: the INSERT statement reports it */
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return false;

	for (int i = 0; i < ncolumns; i++)
		map[i] = InvalidAttrNumber;
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			i;

		if (att->attisdropped)
			continue;
		for (i = 0; i < ncolumns; i++)
			if (strcmp(NameStr(att->attname), columns[i].name) == 0)
				break;
		if (i == ncolumns)
		{
			/* left out of the INSERT: it must take NULL, as we would */
			if (att->atthasdef || att->attnotnull)
				return false;
			continue;
		}
		/* a type modifier would have the INSERT coerce the value */
		if (att->atttypid != columns[i].type || att->atttypmod != -1)
			return false;
		map[i] = att->attnum;
	}
	for (int i = 0; i < ncolumns; i++)
		if (map[i] == InvalidAttrNumber)
			return false;
	return true;
}

/*
 * queue_row_writer_open
 *		A writer of rows of queue.<relname> with the given columns, or NULL
 *		if the table is one a writer must not write (see the header): the
 *		caller then runs its INSERT statement.
 *
 * Takes RowExclusiveLock on the table, as an INSERT does, kept to the end
 * of the transaction.
 */
QueueRowWriter *
queue_row_writer_open(const char *relname, const QueueColumn *columns,
					  int ncolumns)
{
	QueueRowWriter *w;
	Oid			relid;
	Relation	rel;
	AttrNumber *map = palloc(sizeof(AttrNumber) * ncolumns);
	MemoryContext old;

	/* what the executor checks before any INSERT */
	PreventCommandIfReadOnly("INSERT");
	PreventCommandIfParallelMode("INSERT");

	relid = get_relname_relid(relname, get_namespace_oid("queue", false));
	if (!OidIsValid(relid))
		elog(ERROR, "table queue.%s is missing", relname);
	rel = table_open(relid, RowExclusiveLock);
	if (!writer_applies(rel, columns, ncolumns, map))
	{
		table_close(rel, NoLock);
		pfree(map);
		return NULL;
	}

	w = palloc0(sizeof(QueueRowWriter));
	w->rel = rel;
	w->map = map;
	w->estate = CreateExecutorState();
	old = MemoryContextSwitchTo(w->estate->es_query_cxt);
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, rel, 0, NULL, 0);
	ExecOpenIndices(w->rri, false);
	if (rel->rd_att->constr != NULL && rel->rd_att->constr->num_check > 0)
	{
		/* what ExecRelCheck would build, from the trees we keep */
		int			ncheck = rel->rd_att->constr->num_check;
		CheckCacheEntry *checks = check_cache_for(rel);

		w->rri->ri_ConstraintExprs = palloc(sizeof(ExprState *) * ncheck);
		for (int i = 0; i < ncheck; i++)
		{
			Expr	   *expr = (Expr *) copyObject(checks->expr[i]);

			w->rri->ri_ConstraintExprs[i] = checks->planned[i] ?
				ExecInitExpr(expr, NULL) : ExecPrepareExpr(expr, w->estate);
		}
	}
	w->values = palloc0(sizeof(Datum) * RelationGetDescr(rel)->natts);
	w->isnull = palloc(sizeof(bool) * RelationGetDescr(rel)->natts);
	memset(w->isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
	MemoryContextSwitchTo(old);
	return w;
}

/*
 * queue_row_writer_set
 *		Sets the value of the caller's column i in the row being built.
 */
void
queue_row_writer_set(QueueRowWriter *w, int i, Datum value, bool isnull)
{
	w->values[w->map[i] - 1] = value;
	w->isnull[w->map[i] - 1] = isnull;
}

/*
 * insert_index_entries
 *		The index entries of a row just written, as an INSERT makes them.
 */
static inline void
insert_index_entries(QueueRowWriter *w, TupleTableSlot *slot)
{
#if PG_VERSION_NUM >= 160000
	(void) ExecInsertIndexTuples(w->rri, slot, w->estate, false, false, NULL, NIL,
								 false);
#else
	(void) ExecInsertIndexTuples(w->rri, slot, w->estate, false, false, NULL, NIL);
#endif
}

/*
 * flush_rows
 *		Writes the buffered rows to the heap, one multi-insert for a batch
 *		(one WAL record per page instead of one per row, as COPY does),
 *		then their index entries.
 */
static void
flush_rows(QueueRowWriter *w)
{
	if (w->nbuffered == 0)
		return;
	if (w->nbuffered == 1)
		simple_table_tuple_insert(w->rel, w->slots[0]);
	else
		table_multi_insert(w->rel, w->slots, w->nbuffered,
						   GetCurrentCommandId(true), 0, NULL);
	for (int i = 0; i < w->nbuffered; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			insert_index_entries(w, w->slots[i]);
		ResetPerTupleExprContext(w->estate);
		ExecClearTuple(w->slots[i]);
	}
	w->nbuffered = 0;
}

/*
 * queue_row_writer_insert
 *		Adds the row built by the calls of queue_row_writer_set since the
 *		last one (columns not set are NULL), after checking the table's
 *		constraints on it.  Rows are buffered and written in groups (at the
 *		latest by queue_row_writer_close); the values set must stay valid
 *		until then.
 */
void
queue_row_writer_insert(QueueRowWriter *w)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	TupleTableSlot *slot;

	if (w->slots[w->nbuffered] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->slots[w->nbuffered] = ExecInitExtraTupleSlot(w->estate, desc,
														table_slot_callbacks(w->rel));
		MemoryContextSwitchTo(old);
	}
	slot = w->slots[w->nbuffered];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, w->values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, w->isnull, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);
	if (desc->constr != NULL)
	{
		ExecConstraints(w->rri, slot, w->estate);
		ResetPerTupleExprContext(w->estate);
	}
	w->nbuffered++;
	if (w->nbuffered == QUEUE_ROW_WRITER_BUFFER)
		flush_rows(w);

	/* the next row starts all NULL */
	memset(w->isnull, true, sizeof(bool) * desc->natts);
}

/*
 * queue_row_writer_close
 *		Ends the writer: closes the indexes and the table (the lock stays
 *		to the end of the transaction) and frees its executor state.
 */
void
queue_row_writer_close(QueueRowWriter *w)
{
	flush_rows(w);
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	pfree(w->map);
	pfree(w);
}

/*-------------------------------------------------------------------------
 *
 * rowwriter.c
 *	  Inserting rows into the extension's own tables, updating rows the
 *	  caller has locked, and deleting rows by primary key, without planning
 *	  and starting an INSERT, UPDATE or DELETE statement for each call.
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
 *		and all CHECK constraints, users' own included);
 *	  - the heap insert, then every index (partial ones by their predicate,
 *		unique ones checked), as ExecInsertIndexTuples does it for INSERT;
 *		a batch goes to the heap with one multi-insert per group of rows, as
 *		COPY writes it.  As in COPY, the rows of a group are all checked
 *		before any is written, so of a batch with several bad rows, a
 *		constraint error of a later row may be the one reported before a
 *		duplicate key of an earlier one.
 *
 * An updater (queue_row_updater_open) does for rows the caller has locked
 * (SELECT ... FOR UPDATE, in this transaction) what an UPDATE does: the
 * new version is the locked one with the caller's columns set, checked
 * against every constraint, written by a heap update (HOT when no indexed
 * column changed), and, unless HOT, given its index entries.  Its executor
 * state has the range table of an UPDATE of the columns set, so that
 * ExecInsertIndexTuples tells each index whether its key is unchanged, the
 * hint of bottom-up index deletion.  A claim writes its rows so.
 *
 * A deleter (queue_row_deleter_open) does what "DELETE ... WHERE pk = $1
 * AND column = $2" does: the row the snapshot sees through the primary
 * key, its column compared, the heap delete; a row another transaction
 * changed meanwhile is handled by the executor's rules (see
 * queue_row_writer_delete).  A completion deletes its jobs so.
 *
 * Whatever a writer cannot do exactly as its statement would, it declines,
 * and the caller falls back to its SQL statement: a table with triggers
 * (which also covers foreign keys and deferrable unique constraints) or
 * rules, a partition, a stored generated column, row-level security that
 * applies, no INSERT privilege (for an updater, no UPDATE or SELECT; for
 * a deleter, no DELETE or SELECT; the statement then reports it), a
 * column of another type or with a type modifier; for an INSERT, a column
 * the caller does not know that has a default or is NOT NULL; for an
 * UPDATE or DELETE, inheritance children; for a deleter, a primary key
 * other than the caller's first column alone.  So a user's trigger or CHECK
 * on queue.job keeps its effect.
 *
 * What the executor rebuilds for every statement (the IndexInfo of each
 * index, the states of partial-index predicates and CHECK constraints,
 * parsed and planned again from their stored text) a backend keeps per
 * table between calls, rebuilt when the relcache reports a change (see
 * WriterCacheEntry): only the setup is saved, never a check.
 *
 * The rows are written with the current command id, as a statement's are;
 * later statements of the transaction see them after the next command
 * counter increment (SPI makes one before each statement).
 *
 * IDENTIFICATION
 *	  src/rowwriter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_am.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "queue.h"

#define QUEUE_ROW_WRITER_BUFFER 100	/* rows per heap multi-insert */

/* ResultRelInfo's states of the CHECK constraints, renamed in PostgreSQL 18 */
#if PG_VERSION_NUM >= 180000
#define RRI_CHECK_EXPRS(rri)	((rri)->ri_CheckConstraintExprs)
#else
#define RRI_CHECK_EXPRS(rri)	((rri)->ri_ConstraintExprs)
#endif

struct QueueRowWriter
{
	Relation	rel;
	AttrNumber *map;			/* caller's column i is attribute map[i] */
	struct WriterCacheEntry *cache_entry;	/* what the backend keeps */
	uint64		cache_generation;	/* of cache_entry when opened */
	bool		uses_cache;		/* runs the entry's expression states */
	CmdType		cmd;			/* CMD_INSERT, CMD_UPDATE or CMD_DELETE */
	EState	   *estate;
	ResultRelInfo *rri;
	Datum	   *values;			/* the row being built, by attribute */
	bool	   *isnull;
	int			nbuffered;		/* rows checked, not yet written */
	TupleTableSlot **slots;		/* QUEUE_ROW_WRITER_BUFFER of them, made on
								 * first use: the cache entry's, or own;
								 * NULL for a deleter */
	MemoryContext slot_cxt;		/* with uses_cache: where the entry's slots */
	TupleDesc	slot_desc;		/* are made, and their row type, as of the
								 * open */
	TupleTableSlot *old_slot;	/* an updater's or deleter's row as fetched */
	Bitmapset **updated_cols;	/* what ExecGetUpdatedCols reports */
	Relation	key_index;		/* a deleter's: the primary key */
	RegProcedure key_eq_proc;	/* its equality function */
};

/*
 * What a writer of one table keeps between calls, per backend: the map
 * of the caller's columns, the table's CHECK constraints and its indexes'
 * IndexInfo, each with its expression states ready to run.  Rebuilding
 * these for every call (ExecOpenIndices, ExecPrepareQual for each partial
 * index, ExecRelCheck's parsing and planning) cost about as much as the
 * row's heap and index writes.
 *
 * An entry is keyed by the table and the caller's column list (by its
 * address: callers pass static arrays).  It is rebuilt when the relcache
 * reports a change of the table or of one of its indexes (a constraint,
 * an index created or dropped, an index becoming ready for inserts), and
 * a rebuilt entry's memory is handed to the transaction, so a writer
 * still using the old one keeps it until the transaction ends.
 *
 * An expression is kept ready only when nothing can change it without
 * such an invalidation, and its state holds nothing of one statement
 * (plan_if_keepable): plain scalar nodes calling no function that could
 * be replaced (none of OID FirstUnpinnedObjectId or more, the plan
 * cache's own rule).  Any other, and every index of an access method
 * other than btree (some keep per-index state in their IndexInfo), is
 * prepared at each call, as the executor does.  The EXECUTE privilege on
 * the functions of kept states is checked at each use, as the executor
 * checks it at each statement.
 *
 * The entry also keeps the writer's row slots (up to one per row of a
 * multi-insert), made once instead of at every call: a slot is a few
 * allocations, and a batch of 100 rows made 100 of them per call.  They
 * hold a row only while the writer runs (it clears them), and are tied to
 * a copy of the table's row type, which a change of the table invalidates
 * with the rest of the entry.
 *
 * The expression states are not reentrant: a writer opened while another
 * uses the same entry (a constraint's function enqueueing into the same
 * table) prepares everything itself.  After an error the entry is
 * rebuilt, in case a state was left half-run.
 */
typedef struct WriterCacheEntry
{
	Oid			relid;			/* InvalidOid: unused */
	const QueueColumn *columns; /* the caller's column list, by address */
	int			ncolumns;
	CmdType		cmd;			/* the writer's, which the columns are for */
	bool		valid;			/* false once the relcache said it changed */
	bool		busy;			/* a writer uses its expression states */
	uint64		generation;		/* bumped when the entry is rebuilt */
	uint64		last_used;		/* for the choice of an entry to reuse */
	MemoryContext cxt;			/* what the entry holds, NULL if nothing */
	bool		fits;			/* the columns fit the table (else decline) */
	Oid			key_index;		/* a deleter's: the primary key */
	RegProcedure key_eq_proc;	/* its equality function */
	AttrNumber *map;			/* caller's column i is attribute map[i] */
	int			natts;
	int			ncheck;
	ExprState **check_state;	/* NULL: prepared at each call */
	int			nindexes;
	Oid		   *index_oids;		/* RelationGetIndexList's order */
	IndexInfo **index_info;		/* NULL: built at each call */
	List	   *funcs;			/* OIDs of the functions the states call */
	TupleDesc	slot_desc;		/* a copy of the table's, for the slots */
	TupleTableSlot **slots;		/* the writer's row slots, made on first use */
} WriterCacheEntry;

/*
 * The writers are four: enqueue's and the claim's of queue.job, the
 * completion's deleter of queue.job and its writer of queue.job_archive;
 * the spare entries keep a dropped and re-created extension's tables from
 * pushing those out of each other's way.
 */
#define WRITER_CACHE_SIZE	6

static WriterCacheEntry writer_cache[WRITER_CACHE_SIZE];
static uint64 writer_cache_clock = 0;
static bool writer_callbacks_registered = false;

/* check_functions_in_node callback: a function that could be replaced? */
static bool
replaceable_function_checker(Oid func_id, void *context)
{
	return func_id >= (Oid) FirstUnpinnedObjectId;
}

/* check_functions_in_node callback: adds the function to *context. */
static bool
collect_function(Oid func_id, void *context)
{
	List	  **funcs = (List **) context;

	*funcs = list_append_unique_oid(*funcs, func_id);
	return false;
}

/*
 * unkeepable_node
 *		expression_tree_walker callback: whether the expression holds a node
 *		whose state must not outlive one statement, or a function that
 *		could be replaced.
 *
 * Only plain scalar expressions are kept.  Others set themselves up on
 * their first run in the statement's memory (a whole-row Var, a row type
 * conversion, a hashed IN list), or bind at initialization what can
 * change without a relcache invalidation of the table: a domain's
 * constraints (ALTER DOMAIN invalidates only the type), a type's default
 * comparison (MinMaxExpr), a subscripting routine.  A Var of a row type
 * is left out too, so a NullTest never reads a row type's descriptor.
 */
static bool
unkeepable_node(Node *node, void *context)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			if (((Var *) node)->varattno <= 0 ||
				type_is_rowtype(((Var *) node)->vartype))
				return true;
			break;
		case T_ScalarArrayOpExpr:
			if (OidIsValid(((ScalarArrayOpExpr *) node)->hashfuncid))
				return true;
			break;
		case T_Const:
		case T_FuncExpr:
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_RelabelType:
		case T_CoerceViaIO:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoalesceExpr:
		case T_ArrayExpr:
		case T_List:
			break;
		default:
			return true;
	}
	if (check_functions_in_node(node, replaceable_function_checker, NULL))
		return true;
	return expression_tree_walker(node, unkeepable_node, context);
}

/* expression_tree_walker callback: collects the functions called. */
static bool
collect_functions(Node *node, void *context)
{
	if (node == NULL)
		return false;
	(void) check_functions_in_node(node, collect_function, context);
	return expression_tree_walker(node, collect_functions, context);
}

/*
 * plan_if_keepable
 *		Plans expr (a tree, or an implicit-AND list) into *planned and
 *		returns true if its state can be kept for as long as the table's
 *		relcache entry does not change (see WriterCacheEntry); adds the
 *		functions it calls to *funcs, whose EXECUTE privilege each use then
 *		checks, as the executor's initialization of the state would.
 *
 * A function that could be replaced is looked for before planning too,
 * since planning may inline it or fold it into a constant; planning
 * reports a dependency when it drops a domain that has no constraints.
 */
static bool
plan_if_keepable(Node *expr, Node **planned, List **funcs)
{
	List	   *relations = NIL;
	List	   *items = NIL;

	if (unkeepable_node(expr, NULL))
		return false;
	*planned = (Node *) expression_planner_with_deps((Expr *) copyObject(expr),
													 &relations, &items);
	if (relations != NIL || items != NIL || unkeepable_node(*planned, NULL))
		return false;
	(void) collect_functions(*planned, funcs);
	return true;
}

/*
 * ready_index_info
 *		The IndexInfo of a btree index with its predicate and expressions
 *		ready to run, in the current memory context, or NULL if one of them
 *		cannot be kept (it is then built at each call).  Adds the functions
 *		they call to *funcs.
 */
static IndexInfo *
ready_index_info(Relation index, List **funcs)
{
	IndexInfo  *ii = BuildIndexInfo(index);
	List	   *states = NIL;
	Node	   *predicate = NULL;
	ListCell   *lc;

	if (ii->ii_Predicate != NIL &&
		!plan_if_keepable((Node *) ii->ii_Predicate, &predicate, funcs))
		return NULL;
	foreach(lc, ii->ii_Expressions)
	{
		Node	   *planned;

		if (!plan_if_keepable((Node *) lfirst(lc), &planned, funcs))
			return NULL;
		states = lappend(states, planned);
	}
	/* as ExecPrepareQual and ExecPrepareExprList would make them */
	if (predicate != NULL)
		ii->ii_PredicateState = ExecInitQual((List *) predicate, NULL);
	foreach(lc, states)
		lfirst(lc) = ExecInitExpr((Expr *) lfirst(lc), NULL);
	ii->ii_ExpressionsState = states;
	return ii;
}

/*
 * map_columns
 *		Whether the caller's columns fit rel as an INSERT of them would
 *		fill it (for an updater: whether each is a column of rel, of its
 *		type); fills map (column i of the caller is attribute map[i]).
 */
static bool
map_columns(TupleDesc desc, const QueueColumn *columns, int ncolumns,
			CmdType cmd, AttrNumber *map)
{
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
			/* left out of an INSERT: it must take NULL, as we would */
			if (cmd == CMD_INSERT && (att->atthasdef || att->attnotnull))
				return false;
			continue;
		}
		/* a type modifier would have the statement coerce the value */
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
 * find_key_index
 *		Whether rel's primary key is a unique btree index of attribute
 *		attnum alone, of that attribute's type, as a deleter needs; sets
 *		*index_oid and *eq_proc, its equality function.
 */
static bool
find_key_index(Relation rel, AttrNumber attnum, Oid *index_oid,
			   RegProcedure *eq_proc)
{
	Form_pg_attribute key = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	Relation	index;
	bool		fits;

	/* RelationGetIndexList fills rd_pkindex (again, after a rebuild) */
	list_free(RelationGetIndexList(rel));
	if (!OidIsValid(rel->rd_pkindex))
		return false;
	index = index_open(rel->rd_pkindex, AccessShareLock);
	fits = (index->rd_rel->relam == BTREE_AM_OID && index->rd_index->indisunique &&
			IndexRelationGetNumberOfKeyAttributes(index) == 1 &&
			index->rd_index->indkey.values[0] == attnum &&
			index->rd_opcintype[0] == key->atttypid);
	if (fits)
	{
		Oid			eq = get_opfamily_member(index->rd_opfamily[0],
											 index->rd_opcintype[0],
											 index->rd_opcintype[0],
											 BTEqualStrategyNumber);

		if (!OidIsValid(eq))
			elog(ERROR, "missing equality operator for the primary key of %s",
				 RelationGetRelationName(rel));
		*index_oid = RelationGetRelid(index);
		*eq_proc = get_opcode(eq);
	}
	index_close(index, NoLock);
	return fits;
}

/*
 * writer_cache_invalidate
 *		Relcache invalidation callback: marks stale the entries of relid, or
 *		of the table relid is an index of (or all, for InvalidOid).
 */
static void
writer_cache_invalidate(Datum arg, Oid relid)
{
	for (int k = 0; k < WRITER_CACHE_SIZE; k++)
	{
		WriterCacheEntry *e = &writer_cache[k];
		bool		hit = (relid == InvalidOid || relid == e->relid);

		for (int i = 0; !hit && i < e->nindexes; i++)
			hit = (e->index_oids[i] == relid);
		if (hit)
			e->valid = false;
	}
}

/*
 * writer_cache_xact_callback
 *		At the end of a transaction no writer is open: an entry still busy
 *		is one an error interrupted, and is rebuilt before its next use.
 */
static void
writer_cache_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			for (int k = 0; k < WRITER_CACHE_SIZE; k++)
				if (writer_cache[k].busy)
				{
					writer_cache[k].busy = false;
					writer_cache[k].valid = false;
				}
			break;
		default:
			break;
	}
}

/*
 * writer_cache_reset
 *		Empties e.  Its memory may still be in use by an open writer (a
 *		nested call), so it is handed to the transaction rather than freed.
 */
static void
writer_cache_reset(WriterCacheEntry *e)
{
	if (e->cxt != NULL)
		MemoryContextSetParent(e->cxt, TopTransactionContext);
	e->cxt = NULL;
	e->relid = InvalidOid;
	e->columns = NULL;
	e->valid = false;
	e->busy = false;
	e->nindexes = 0;
	e->index_oids = NULL;
	e->slot_desc = NULL;
	e->slots = NULL;
	e->generation++;
}

/*
 * writer_cache_build
 *		Fills e for rel and the caller's columns.  indexes is rel's index
 *		list, and all of rel's indexes are locked already.
 *
 * The content is built in a context of the transaction and moved under
 * CacheMemoryContext once complete; an error on the way (a missing
 * EXECUTE privilege on a function of a constraint, which the executor
 * reports too, or out of memory) leaves e empty and the context to die
 * with the transaction.  An invalidation that arrives while building
 * (looking up a function or a type can take a catalog lock, which reads
 * the invalidation queue) marks the entry stale: it then serves this
 * call, with everything prepared by the caller, and is built again at the
 * next.
 */
static void
writer_cache_build(WriterCacheEntry *e, Relation rel,
				   const QueueColumn *columns, int ncolumns, CmdType cmd,
				   List *indexes)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	MemoryContext cxt;
	MemoryContext old;

	writer_cache_reset(e);
	cxt = AllocSetContextCreate(TopTransactionContext, "queue row writer cache",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			i = 0;
		ListCell   *lc;

		e->cxt = cxt;
		e->relid = RelationGetRelid(rel);
		e->columns = columns;
		e->ncolumns = ncolumns;
		e->cmd = cmd;
		e->natts = desc->natts;
		e->nindexes = list_length(indexes);
		e->index_oids = palloc(sizeof(Oid) * Max(e->nindexes, 1));
		foreach(lc, indexes)
			e->index_oids[i++] = lfirst_oid(lc);
		e->ncheck = (constr != NULL) ? constr->num_check : 0;
		e->check_state = palloc0(sizeof(ExprState *) * Max(e->ncheck, 1));
		e->index_info = palloc0(sizeof(IndexInfo *) * Max(e->nindexes, 1));
		e->funcs = NIL;
		e->map = palloc(sizeof(AttrNumber) * ncolumns);
		/* a deleter writes no rows */
		e->slot_desc = (cmd != CMD_DELETE) ? CreateTupleDescCopy(desc) : NULL;
		e->slots = (cmd != CMD_DELETE) ?
			palloc0(sizeof(TupleTableSlot *) * QUEUE_ROW_WRITER_BUFFER) : NULL;
		/* from here on, an invalidation of rel or its indexes reaches e */
		e->valid = true;

		e->fits = map_columns(desc, columns, ncolumns, cmd, e->map);
		/* a deleter finds its rows by the primary key, its first column */
		if (cmd == CMD_DELETE && e->fits)
			e->fits = find_key_index(rel, e->map[0], &e->key_index,
									 &e->key_eq_proc);
		/* a deleter neither checks constraints nor writes index entries */
		for (i = 0; i < e->ncheck && cmd != CMD_DELETE; i++)
		{
			Node	   *planned;

			if (plan_if_keepable(stringToNode(constr->check[i].ccbin), &planned,
								 &e->funcs))
				e->check_state[i] = ExecInitExpr((Expr *) planned, NULL);
		}
		for (i = 0; i < e->nindexes && cmd != CMD_DELETE; i++)
		{
			Relation	index = index_open(e->index_oids[i], RowExclusiveLock);

			if (index->rd_rel->relam == BTREE_AM_OID)
				e->index_info[i] = ready_index_info(index, &e->funcs);
			index_close(index, NoLock);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		e->cxt = NULL;			/* goes with the transaction */
		writer_cache_reset(e);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextSetParent(cxt, CacheMemoryContext);
}

/*
 * writer_cache_usable
 *		Whether the current user may run the functions of e's kept states,
 *		checked at each use as the executor checks them at each statement
 *		(a role's privileges can change without any invalidation of the
 *		table); runs the function execute hooks (sepgsql) it would run.
 */
static bool
writer_cache_usable(WriterCacheEntry *e)
{
	ListCell   *lc;

	foreach(lc, e->funcs)
	{
		Oid			func = lfirst_oid(lc);

#if PG_VERSION_NUM >= 160000
		if (object_aclcheck(ProcedureRelationId, func, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			return false;
#else
		if (pg_proc_aclcheck(func, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			return false;
#endif
	}
	foreach(lc, e->funcs)
		InvokeFunctionExecuteHook(lfirst_oid(lc));
	return true;
}

/*
 * writer_cache_entry
 *		The cache entry of rel and the caller's columns, rebuilt if the
 *		relcache reported a change since it was filled; the least recently
 *		used entry is reused when none is theirs.
 */
static WriterCacheEntry *
writer_cache_entry(Relation rel, const QueueColumn *columns, int ncolumns,
				   CmdType cmd)
{
	Oid			relid = RelationGetRelid(rel);
	WriterCacheEntry *e = NULL;
	List	   *indexes;
	bool		same;
	ListCell   *lc;
	int			i;

	if (!writer_callbacks_registered)
	{
		CacheRegisterRelcacheCallback(writer_cache_invalidate, (Datum) 0);
		RegisterXactCallback(writer_cache_xact_callback, NULL);
		writer_callbacks_registered = true;
	}

	for (int k = 0; k < WRITER_CACHE_SIZE && e == NULL; k++)
		if (writer_cache[k].relid == relid && writer_cache[k].columns == columns)
			e = &writer_cache[k];
	if (e == NULL)
	{
		e = &writer_cache[0];
		for (int k = 1; k < WRITER_CACHE_SIZE; k++)
			if (writer_cache[k].last_used < e->last_used)
				e = &writer_cache[k];
		e->valid = false;
	}
	e->last_used = ++writer_cache_clock;

	/* what ExecOpenIndices opens; the same list, or the entry is stale */
	indexes = RelationGetForm(rel)->relhasindex ? RelationGetIndexList(rel) : NIL;
	same = (e->valid && e->relid == relid && e->columns == columns &&
			e->ncolumns == ncolumns && e->cmd == cmd &&
			e->natts == RelationGetDescr(rel)->natts &&
			e->ncheck == (rel->rd_att->constr ? rel->rd_att->constr->num_check : 0) &&
			e->nindexes == list_length(indexes));
	i = 0;
	foreach(lc, indexes)
	{
		if (!same)
			break;
		same = (e->index_oids[i++] == lfirst_oid(lc));
	}
	if (!same)
	{
		/* lock the indexes first: taking a lock reads invalidations */
		foreach(lc, indexes)
			index_close(index_open(lfirst_oid(lc), RowExclusiveLock), NoLock);
		writer_cache_build(e, rel, columns, ncolumns, cmd, indexes);
	}
	list_free(indexes);
	return e;
}

/*
 * writer_declines
 *		Whether rel is a table a writer for cmd must leave to the INSERT,
 *		UPDATE or DELETE statement (see the header), from what can change
 *		without a relcache invalidation of rel (the role, row_security) or
 *		is cheap to read.
 */
static bool
writer_declines(Relation rel, CmdType cmd)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->trigdesc != NULL || rel->rd_rules != NULL)
		return true;
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition)
		return true;
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		return true;
	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return true;
#if PG_VERSION_NUM >= 180000
	/* the executor expands virtual columns and skips NOT ENFORCED checks */
	if (desc->constr != NULL)
	{
		if (desc->constr->has_generated_virtual)
			return true;
		for (int i = 0; i < desc->constr->num_check; i++)
			if (!desc->constr->check[i].ccenforced)
				return true;
	}
#endif
	/* an UPDATE or DELETE of the table reaches its children too */
	if (cmd != CMD_INSERT && rel->rd_rel->relhassubclass)
		return true;
	/* no privilege error of our own: the statement reports it */
	switch (cmd)
	{
		case CMD_INSERT:
			return pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK;
		case CMD_UPDATE:
		case CMD_DELETE:
			/* the statement reads the row too */
			return pg_class_aclcheck(relid, GetUserId(),
									 cmd == CMD_UPDATE ? ACL_UPDATE : ACL_DELETE) != ACLCHECK_OK ||
				pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK;
		default:
			elog(ERROR, "unexpected row writer command %d", (int) cmd);
	}
	return true;				/* keep the compiler quiet */
}

/*
 * open_indexes
 *		What ExecOpenIndices does, with the entry's IndexInfos where it has
 *		them.
 */
static void
open_indexes(ResultRelInfo *rri, WriterCacheEntry *e)
{
	int			n = e->nindexes;

	if (n == 0)
		return;
	rri->ri_NumIndices = n;
	rri->ri_IndexRelationDescs = palloc(sizeof(Relation) * n);
	rri->ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * n);
	for (int i = 0; i < n; i++)
	{
		Relation	index = index_open(e->index_oids[i], RowExclusiveLock);

		rri->ri_IndexRelationDescs[i] = index;
		rri->ri_IndexRelationInfo[i] = e->index_info[i] ? e->index_info[i] :
			BuildIndexInfo(index);
		/* the unchanged-key hint is worked out again for this writer's columns */
		rri->ri_IndexRelationInfo[i]->ii_CheckedUnchanged = false;
		rri->ri_IndexRelationInfo[i]->ii_IndexUnchanged = false;
	}
}

/*
 * init_range_table
 *		Gives an updater's executor state the range table of an UPDATE of
 *		rel, so that ExecGetUpdatedCols reports the columns it sets: from
 *		them ExecInsertIndexTuples tells each index whether the update
 *		changed its key, the hint of bottom-up index deletion, which keeps
 *		the primary key free of the dead versions claims leave.
 */
static void
init_range_table(QueueRowWriter *w)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(w->rel);
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	{
		RTEPermissionInfo *perminfo = makeNode(RTEPermissionInfo);

		perminfo->relid = rte->relid;
		perminfo->inh = false;
		perminfo->requiredPerms = ACL_UPDATE;
		rte->perminfoindex = 1;
#if PG_VERSION_NUM >= 180000
		ExecInitRangeTable(w->estate, list_make1(rte), list_make1(perminfo),
						   bms_make_singleton(1));
#else
		ExecInitRangeTable(w->estate, list_make1(rte), list_make1(perminfo));
#endif
		w->updated_cols = &perminfo->updatedCols;
	}
#else
	rte->requiredPerms = ACL_UPDATE;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->updated_cols = &rte->updatedCols;
#endif
}

/*
 * writer_open
 *		A writer of rows of queue.<relname> with the given columns, for
 *		cmd (CMD_INSERT: queue_row_writer_open; CMD_UPDATE and CMD_DELETE:
 *		queue_row_updater_open, queue_row_deleter_open), or NULL if the
 *		table is one a writer must not write (see the header).
 */
static QueueRowWriter *
writer_open(const char *relname, const QueueColumn *columns, int ncolumns,
			CmdType cmd)
{
	const char *command = (cmd == CMD_INSERT) ? "INSERT" :
		(cmd == CMD_UPDATE) ? "UPDATE" : "DELETE";
	QueueRowWriter *w;
	Oid			relid;
	Relation	rel;
	WriterCacheEntry *e;
	TupleConstr *constr;
	TupleDesc	desc;
	MemoryContext old;

	/* what the executor checks before any INSERT, UPDATE or DELETE */
	PreventCommandIfReadOnly(command);
	PreventCommandIfParallelMode(command);

	relid = get_relname_relid(relname, get_namespace_oid("queue", false));
	if (!OidIsValid(relid))
		elog(ERROR, "table queue.%s is missing", relname);
	rel = table_open(relid, RowExclusiveLock);
	if (writer_declines(rel, cmd) ||
		!(e = writer_cache_entry(rel, columns, ncolumns, cmd))->fits)
	{
		table_close(rel, NoLock);
		return NULL;
	}

	/* what the executor checks of a table it updates or deletes from */
	CheckCmdReplicaIdentity(rel, cmd);

	desc = RelationGetDescr(rel);
	w = palloc0(sizeof(QueueRowWriter));
	w->rel = rel;
	w->map = e->map;
	w->cache_entry = e;
	w->cache_generation = e->generation;
	w->cmd = cmd;
	if (cmd == CMD_DELETE)
	{
		w->key_index = index_open(e->key_index, AccessShareLock);
		w->key_eq_proc = e->key_eq_proc;
	}
	w->estate = CreateExecutorState();
	old = MemoryContextSwitchTo(w->estate->es_query_cxt);
	w->rri = makeNode(ResultRelInfo);
	if (cmd == CMD_UPDATE)
	{
		init_range_table(w);
		InitResultRelInfo(w->rri, rel, 1, NULL, 0);
	}
	else
		InitResultRelInfo(w->rri, rel, 0, NULL, 0);
	if (cmd != CMD_INSERT)
		w->old_slot = ExecInitExtraTupleSlot(w->estate, desc,
											 table_slot_callbacks(rel));
	constr = desc->constr;
	if (cmd == CMD_DELETE)
	{
		/* a DELETE neither checks constraints nor writes index entries */
	}
	else if (e->valid && !e->busy && writer_cache_usable(e))
	{
		e->busy = true;
		w->uses_cache = true;
		open_indexes(w->rri, e);
		if (e->ncheck > 0)
		{
			/* what ExecRelCheck would build, from the states we keep */
			RRI_CHECK_EXPRS(w->rri) = palloc(sizeof(ExprState *) * e->ncheck);
			for (int i = 0; i < e->ncheck; i++)
				RRI_CHECK_EXPRS(w->rri)[i] = e->check_state[i] ? e->check_state[i] :
					ExecPrepareExpr((Expr *) stringToNode(constr->check[i].ccbin),
									w->estate);
		}
	}
	else
	{
		/* as the executor does it; ExecRelCheck prepares the constraints */
		ExecOpenIndices(w->rri, false);
	}
	/*
	 * The entry's slots, and where to make more of them, are taken now: a
	 * nested writer may rebuild the entry while this one runs, and the old
	 * entry's memory then lives on to the end of the transaction.
	 */
	if (w->uses_cache)
	{
		w->slots = e->slots;
		w->slot_cxt = e->cxt;
		w->slot_desc = e->slot_desc;
	}
	else if (cmd != CMD_DELETE)
		w->slots = palloc0(sizeof(TupleTableSlot *) * QUEUE_ROW_WRITER_BUFFER);
	w->values = palloc0(sizeof(Datum) * desc->natts);
	w->isnull = palloc(sizeof(bool) * desc->natts);
	memset(w->isnull, true, sizeof(bool) * desc->natts);
	MemoryContextSwitchTo(old);
	return w;
}

/*
 * queue_row_writer_open
 *		A writer of rows of queue.<relname> with the given columns, or NULL
 *		if the table is one a writer must not write (see the header): the
 *		caller then runs its INSERT statement.  columns must be a static
 *		array: the cache knows a caller by its address.
 *
 * Takes RowExclusiveLock on the table and its indexes, as an INSERT does,
 * kept to the end of the transaction.
 */
QueueRowWriter *
queue_row_writer_open(const char *relname, const QueueColumn *columns,
					  int ncolumns)
{
	return writer_open(relname, columns, ncolumns, CMD_INSERT);
}

/*
 * queue_row_updater_open
 *		An updater of rows of queue.<relname>: the caller's columns are
 *		those it reads (queue_row_writer_get) and sets (queue_row_writer_set)
 *		in rows it has locked.  NULL if the table is one a writer must not
 *		write: the caller then runs its UPDATE statement.  columns must be
 *		a static array, as for queue_row_writer_open.
 */
QueueRowWriter *
queue_row_updater_open(const char *relname, const QueueColumn *columns,
					   int ncolumns)
{
	return writer_open(relname, columns, ncolumns, CMD_UPDATE);
}

/*
 * queue_row_deleter_open
 *		A deleter of rows of queue.<relname>, found by the table's primary
 *		key: the caller's columns are those it reads (queue_row_writer_get)
 *		of the rows it deletes, the first of them the key, which must be
 *		the primary key's only column (else the deleter declines).  NULL if the
 *		table is one a writer must not write: the caller then runs its
 *		DELETE statement.  columns must be a static array, as for
 *		queue_row_writer_open.
 */
QueueRowWriter *
queue_row_deleter_open(const char *relname, const QueueColumn *columns,
					   int ncolumns)
{
	return writer_open(relname, columns, ncolumns, CMD_DELETE);
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
	if (w->cmd == CMD_UPDATE &&
		!bms_is_member(w->map[i] - FirstLowInvalidHeapAttributeNumber, *w->updated_cols))
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		*w->updated_cols = bms_add_member(*w->updated_cols,
										  w->map[i] - FirstLowInvalidHeapAttributeNumber);
		MemoryContextSwitchTo(old);
	}
}

/*
 * queue_row_writer_get
 *		The value of the caller's column i in the row an updater fetched or
 *		a deleter found (or as set since).  A value of the fetched row points into its
 *		buffer page, valid until the next fetch or the close.
 */
Datum
queue_row_writer_get(QueueRowWriter *w, int i, bool *isnull)
{
	*isnull = w->isnull[w->map[i] - 1];
	return w->values[w->map[i] - 1];
}

/*
 * queue_row_writer_get_copy
 *		queue_row_writer_get, copied into the current memory context: for a
 *		value that must outlive the fetched row's buffer pin.
 */
Datum
queue_row_writer_get_copy(QueueRowWriter *w, int i, bool *isnull)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(w->rel), w->map[i] - 1);
	Datum		value = queue_row_writer_get(w, i, isnull);

	return *isnull ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
}

/* load_row: makes the row in old_slot the writer's row. */
static void
load_row(QueueRowWriter *w)
{
	int			natts = RelationGetDescr(w->rel)->natts;

	slot_getallattrs(w->old_slot);
	memcpy(w->values, w->old_slot->tts_values, sizeof(Datum) * natts);
	memcpy(w->isnull, w->old_slot->tts_isnull, sizeof(bool) * natts);
}

/*
 * queue_row_writer_fetch
 *		Reads the row version at tid into the updater's row.  The caller
 *		has locked that version (SELECT ... FOR UPDATE in this transaction),
 *		so it is the row's latest and stays so.
 */
void
queue_row_writer_fetch(QueueRowWriter *w, ItemPointer tid)
{
	Assert(w->cmd == CMD_UPDATE);
	if (!table_tuple_fetch_row_version(w->rel, tid, SnapshotAny, w->old_slot))
		elog(ERROR, "could not fetch locked row (%u,%u) of %s",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid),
			 RelationGetRelationName(w->rel));
	load_row(w);
}

/*
 * fetch_by_key
 *		Reads the version of the row with primary key key that snapshot
 *		sees into the deleter's row; false if there is none.
 */
static bool
fetch_by_key(QueueRowWriter *w, Datum key, Snapshot snapshot)
{
	ScanKeyData skey;
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, w->key_eq_proc, key);
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(w->rel, w->key_index, snapshot, NULL, 1, 0);
#else
	scan = index_beginscan(w->rel, w->key_index, snapshot, 1, 0);
#endif
	index_rescan(scan, &skey, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w->old_slot);
	index_endscan(scan);
	if (found)
		load_row(w);
	return found;
}

/*
 * queue_row_writer_delete
 *		Deletes the row whose primary key is key if the deleter's column i
 *		holds value (binary equality), as "DELETE ... WHERE pk = key AND
 *		column = value" does in this transaction; returns whether it did.
 *		The deleted row stays readable (queue_row_writer_get) until the
 *		next call or the close.
 *
 * The row is the version the active snapshot sees.  When another
 * transaction updated or deleted it since, the executor's rules apply: in
 * READ COMMITTED, the delete waits for that transaction, then locks the
 * row's latest version and checks the condition again on it (what
 * EvalPlanQual does for a DELETE); in REPEATABLE READ and SERIALIZABLE it
 * fails with a serialization failure.  A row this command already deleted
 * is left alone.
 */
bool
queue_row_writer_delete(QueueRowWriter *w, Datum key, int i, Datum value)
{
	Snapshot	snapshot = GetActiveSnapshot();
	CommandId	cid = GetCurrentCommandId(true);
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(w->rel), w->map[i] - 1);
	Form_pg_attribute key_att = TupleDescAttr(RelationGetDescr(w->rel), w->map[0] - 1);

	Assert(w->cmd == CMD_DELETE);
	if (!fetch_by_key(w, key, snapshot))
		return false;
	for (;;)
	{
		ItemPointerData tid;
		TM_FailureData tmfd;
		TM_Result	result;

		if (w->isnull[w->map[i] - 1] ||
			!datumIsEqual(w->values[w->map[i] - 1], value, att->attbyval, att->attlen))
			return false;
		tid = w->old_slot->tts_tid;
		result = table_tuple_delete(w->rel, &tid, cid, snapshot, InvalidSnapshot,
									true, &tmfd, false);
		switch (result)
		{
			case TM_Ok:
				return true;
			case TM_SelfModified:
				/* deleted or updated by this command already */
				return false;
			case TM_Updated:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent update")));
				result = table_tuple_lock(w->rel, &tid, snapshot, w->old_slot, cid,
										  LockTupleExclusive, LockWaitBlock,
										  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
				if (result != TM_Ok)
				{
					/* deleted meanwhile, or updated by this transaction */
					if (result != TM_Deleted && result != TM_SelfModified)
						elog(ERROR, "unexpected table_tuple_lock status: %u", result);
					return false;
				}
				/* the latest version, locked: check it, then delete it */
				load_row(w);
				if (!datumIsEqual(w->values[w->map[0] - 1], key, key_att->attbyval,
								  key_att->attlen))
					return false;
				break;
			case TM_Deleted:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent delete")));
				return false;
			default:
				elog(ERROR, "unexpected table_tuple_delete status: %u", result);
		}
	}
}

/*
 * checked_row
 *		Puts the row being built into slot k of the writer, checks the
 *		table's constraints on it (ExecConstraints: NOT NULL and every
 *		CHECK), and returns the slot.
 */
static TupleTableSlot *
checked_row(QueueRowWriter *w, int k)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	TupleTableSlot *slot;

	if (w->slots[k] == NULL)
	{
		MemoryContext old;

		if (w->uses_cache)
		{
			/* the entry's, for the calls to come (see WriterCacheEntry) */
			old = MemoryContextSwitchTo(w->slot_cxt);
			w->slots[k] = MakeSingleTupleTableSlot(w->slot_desc,
												   table_slot_callbacks(w->rel));
		}
		else
		{
			old = MemoryContextSwitchTo(w->estate->es_query_cxt);
			w->slots[k] = ExecInitExtraTupleSlot(w->estate, desc,
												 table_slot_callbacks(w->rel));
		}
		MemoryContextSwitchTo(old);
	}
	slot = w->slots[k];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, w->values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, w->isnull, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);
	if (desc->constr != NULL)
	{
		ExecConstraints(w->rri, slot, w->estate);
		ResetPerTupleExprContext(w->estate);
	}
	return slot;
}

/*
 * insert_index_entries
 *		The index entries of a row just written: as an INSERT makes them, or
 *		(update) as an UPDATE does for a new row version, then with the
 *		executor's hint for the indexes whose keys it left unchanged (and,
 *		from PostgreSQL 16, only_summarizing after a HOT update).
 */
static inline void
insert_index_entries(QueueRowWriter *w, TupleTableSlot *slot, bool update,
					 bool only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	(void) ExecInsertIndexTuples(w->rri, slot, w->estate, update, false, NULL, NIL,
								 only_summarizing);
#else
	Assert(!only_summarizing);
	(void) ExecInsertIndexTuples(w->rri, slot, w->estate, update, false, NULL, NIL);
#endif
}

/*
 * queue_row_writer_update
 *		Replaces the row version fetched last with the updater's row, as an
 *		UPDATE statement does: the table's constraints checked on the new
 *		version, then the heap update (a HOT one when no indexed column
 *		changed), then, unless HOT, the new version's index entries, unique
 *		ones checked.
 */
void
queue_row_writer_update(QueueRowWriter *w)
{
	ItemPointerData otid = w->old_slot->tts_tid;
	TupleTableSlot *slot;
	bool		index_entries;
	bool		only_summarizing = false;
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes update_indexes;
#endif

	Assert(w->cmd == CMD_UPDATE);
	slot = checked_row(w, 0);
#if PG_VERSION_NUM >= 160000
	simple_table_tuple_update(w->rel, &otid, slot, GetActiveSnapshot(),
							  &update_indexes);
	index_entries = (update_indexes != TU_None);
	only_summarizing = (update_indexes == TU_Summarizing);
#else
	simple_table_tuple_update(w->rel, &otid, slot, GetActiveSnapshot(),
							  &index_entries);
#endif
	if (index_entries && w->rri->ri_NumIndices > 0)
		insert_index_entries(w, slot, true, only_summarizing);
	ResetPerTupleExprContext(w->estate);
	/* as flush_rows does: a kept slot holds no row between calls */
	ExecClearTuple(slot);
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
			insert_index_entries(w, w->slots[i], false, false);
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

	Assert(w->cmd == CMD_INSERT);
	(void) checked_row(w, w->nbuffered);
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
	if (w->key_index != NULL)
		index_close(w->key_index, NoLock);
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	if (w->uses_cache && w->cache_entry->generation == w->cache_generation)
		w->cache_entry->busy = false;
	pfree(w);
}

-- The ledger's integrity checks once ledger_transfers and ledger_entries are partitioned by
-- month and old months can be archived (migration 0022; ledger/archive.py).
--
-- 1. Transfer ids stay unique forever, across months and archives. A partitioned table's
--    unique constraints must contain its partition key, so (id) alone can no longer be the
--    key of ledger_transfers: a retry of a transfer in the next month would go to another
--    partition and insert it twice. The narrow, unpartitioned ledger_transfer_ids keeps one
--    row per transfer (its id, the pending transfer it resolves, its month), with the two
--    unique constraints the wide table had: the id, and one resolution per pending transfer.
--    Every insert into ledger_transfers adds its ids as each row is written (a row
--    trigger), so a duplicate fails with unique_violation exactly
--    as it did on the old primary key, and the engine's retry then sees the winner. The ids
--    of archived transfers stay: an archived transfer's id can never be reused.
-- 2. An account's entries continue from its archive anchor. Balances live in ledger_accounts
--    and never depend on entries; the checks that read an account's previous entry (the
--    chain of a new entry, the newest entry of a changed account) fall back to the state the
--    archive recorded at its boundary (ledger_archived_accounts) when that entry was
--    archived, so an account idle since an archived month still takes new transfers.
-- 3. (account_id, version) is no longer a unique constraint of its own (it is unique per
--    month with created_at); the entries check refuses a version that exists already,
--    live or archived. Writers assign versions under the account's row lock, as before.

-- (a row trigger, BEFORE: the duplicate fails as the transfer row is written, as the old key
-- failed it, before the statement moves any balance; a statement trigger at the end would let
-- a second resolution of one hold drive its balance negative first, a check violation that
-- the caller does not retry)
CREATE OR REPLACE FUNCTION ledger_record_transfer_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_transfer_ids (id, pending_id, created_at)
    VALUES (NEW.id, NEW.pending_id, NEW.created_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_check_account_changes() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
BEGIN
    SELECT n.id INTO v_id
      FROM ledger_accounts_new n
      LEFT JOIN LATERAL (
          SELECT x.version, x.debits_pending, x.debits_posted, x.credits_pending,
                 x.credits_posted
            FROM ((SELECT e.version, e.debits_pending, e.debits_posted, e.credits_pending,
                          e.credits_posted
                     FROM ledger_entries e WHERE e.account_id = n.id
                    ORDER BY e.version DESC LIMIT 1)
                  UNION ALL
                  SELECT z.version, z.debits_pending, z.debits_posted, z.credits_pending,
                         z.credits_posted
                    FROM ledger_archived_accounts z WHERE z.account_id = n.id) x
           ORDER BY x.version DESC LIMIT 1) e ON true
     WHERE (n.version, n.debits_pending, n.debits_posted, n.credits_pending, n.credits_posted)
           IS DISTINCT FROM (coalesce(e.version, 0), coalesce(e.debits_pending, 0),
                             coalesce(e.debits_posted, 0), coalesce(e.credits_pending, 0),
                             coalesce(e.credits_posted, 0))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'balance of ' || v_id || ' changed without matching ledger entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ledger_check_entries() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
BEGIN
    -- each new entry continues its account's chain (from its previous entry, live or at the
    -- archive's boundary), takes a version nobody has, and its account has caught up with it
    SELECT n.account_id || ' version ' || n.version INTO v_id
      FROM ledger_entries_new n
      LEFT JOIN LATERAL (
          SELECT x.* FROM (
              SELECT p.version, p.debits_pending, p.debits_posted, p.credits_pending,
                     p.credits_posted
                FROM ledger_entries p
               WHERE p.account_id = n.account_id AND p.version = n.version - 1
              UNION ALL
              SELECT z.version, z.debits_pending, z.debits_posted, z.credits_pending,
                     z.credits_posted
                FROM ledger_archived_accounts z
               WHERE z.account_id = n.account_id AND z.version = n.version - 1) x
           LIMIT 1) p ON true
      LEFT JOIN ledger_archived_accounts z ON z.account_id = n.account_id
      LEFT JOIN ledger_accounts a ON a.id = n.account_id
     WHERE (n.debits_pending, n.debits_posted, n.credits_pending, n.credits_posted)
           IS DISTINCT FROM (coalesce(p.debits_pending, 0) + n.debits_pending_delta,
                             coalesce(p.debits_posted, 0) + n.debits_posted_delta,
                             coalesce(p.credits_pending, 0) + n.credits_pending_delta,
                             coalesce(p.credits_posted, 0) + n.credits_posted_delta)
        OR (p.version IS NULL AND n.version <> 1)
        OR n.version <= coalesce(z.version, 0)
        OR (SELECT count(*) FROM ledger_entries d
             WHERE d.account_id = n.account_id AND d.version = n.version) > 1
        OR a.version IS NULL OR a.version < n.version
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'entry ' || v_id || ' does not continue its account''s entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT n.transfer_id INTO v_id
      FROM (SELECT DISTINCT transfer_id FROM ledger_entries_new) n
      LEFT JOIN ledger_transfers t ON t.id = n.transfer_id
      LEFT JOIN LATERAL (
          SELECT count(*) AS legs,
                 count(*) FILTER (WHERE e.leg = 'debit' AND e.account_id = t.debit_account_id)
                     AS debit_legs,
                 count(*) FILTER (WHERE e.leg = 'credit' AND e.account_id = t.credit_account_id)
                     AS credit_legs,
                 sum(e.debits_pending_delta + e.debits_posted_delta) AS debits,
                 sum(e.credits_pending_delta + e.credits_posted_delta) AS credits
            FROM ledger_entries e WHERE e.transfer_id = n.transfer_id) s ON true
     WHERE t.id IS NULL OR s.legs <> 2 OR s.debit_legs <> 1 OR s.credit_legs <> 1
        OR s.debits IS DISTINCT FROM s.credits
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || v_id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- 4. Plans made once. A PL/pgSQL statement with parameters (a transfer id, a pending id, the
--    time) is planned for its values each call until a generic plan looks as cheap; over a
--    partitioned table planning means every month's partition and its indexes, and the
--    planner kept choosing a fresh plan: measured on the single-event function, 1,500
--    transfers took 1.7-2.3x as long as before partitioning, and 1.1-1.2x with generic plans.
--    A lookup by id cannot be pruned to a month anyway (the id carries no date), so the
--    generic plan is the custom plan; these functions run with seq scans off already.
ALTER FUNCTION ledger_create_transfer(text, text, text, text, bigint, text, text, text, integer,
    boolean, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_create_transfer_locked(text, text, text, text, bigint, text, text, text,
    integer, boolean, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_create_transfers(jsonb, timestamptz)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_expire_pending(timestamptz) SET plan_cache_mode = force_generic_plan;

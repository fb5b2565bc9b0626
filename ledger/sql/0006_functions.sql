-- Ledger, faster without giving anything up (ledger/models.py has the specification).
--
-- 1. The integrity checks run once per statement instead of once per row. 0002 checked every
--    changed account and every new transfer with a deferred per-row trigger (a PL/pgSQL call
--    and a query each, at commit; re-planned every time), and every entry paid two
--    foreign-key checks. Here one statement-level trigger per table reads the rows the
--    statement wrote (transition tables) and checks them all with one query at its end:
--    - ledger_entries: every new entry continues its account's chain (its balances are the
--      previous entry's plus its deltas; versions 1, 2, ... without gaps), its account has
--      caught up with it (balances moved in the same statement), it belongs to an existing
--      transfer and sits on that transfer's account for its leg, and the transfer ends up with
--      exactly one debit and one credit entry of equal size;
--    - ledger_accounts: a changed account equals its latest entry (balances and version; an
--      account without entries is all zero). With chained entries this is 0002's rule ("the
--      entries after the old version add up to the change, the newest holds the new
--      balances"), and a rewind to an earlier entry is refused as before;
--    - ledger_transfers: every new transfer has entries (so, with the above, exactly its two).
--    Stronger than 0002, which never looked at an inserted entry: a third leg, a leg on an
--    account that is not the transfer's, two debit legs that cancel out, a wrong running
--    balance in the middle of a batch, or a transfer and entries that the balances never saw
--    were all accepted.
--    The entries check makes the entries' foreign keys redundant, so they go: an entry's
--    transfer exists when the entry is written and transfers can never be deleted (append-only
--    triggers, no TRUNCATE); its account is its transfer's account, which the transfer's own
--    foreign key keeps from being deleted or renamed.
--    The checks are immediate rather than deferred to commit, so a writer puts a transfer, its
--    entries and the balance updates in one statement; every function below does.
-- Every function here plans with seq scans, hash joins and merge joins disabled (they stay
-- possible where nothing else is). PL/pgSQL caches its plans for the whole session, and the
-- checks' queries have no parameters, so the plan made on first use is kept: made while a
-- table was nearly empty it would scan the whole table long after it has grown (a fresh
-- database went from 0.1 ms to 18 ms per check within minutes). Every lookup here has an
-- index made for it; the settings cost a fraction of a microsecond per call.
-- 2. ledger_create_transfer: a batch of one as typed arguments, without the batch machinery.
-- 3. The batch function and expiry adapted to (1), and made cheaper (see each).

CREATE OR REPLACE FUNCTION ledger_check_account_changes() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
BEGIN
    SELECT n.id INTO v_id
      FROM ledger_accounts_new n
      LEFT JOIN LATERAL (
          SELECT e.version, e.debits_pending, e.debits_posted, e.credits_pending,
                 e.credits_posted
            FROM ledger_entries e WHERE e.account_id = n.id
           ORDER BY e.version DESC LIMIT 1) e ON true
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
    -- each new entry continues its account's chain, and its account has caught up with it
    SELECT n.account_id || ' version ' || n.version INTO v_id
      FROM ledger_entries_new n
      LEFT JOIN ledger_entries p ON p.account_id = n.account_id AND p.version = n.version - 1
      LEFT JOIN ledger_accounts a ON a.id = n.account_id
     WHERE (n.debits_pending, n.debits_posted, n.credits_pending, n.credits_posted)
           IS DISTINCT FROM (coalesce(p.debits_pending, 0) + n.debits_pending_delta,
                             coalesce(p.debits_posted, 0) + n.debits_posted_delta,
                             coalesce(p.credits_pending, 0) + n.credits_pending_delta,
                             coalesce(p.credits_posted, 0) + n.credits_posted_delta)
        OR (p.account_id IS NULL AND n.version <> 1)
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

CREATE OR REPLACE FUNCTION ledger_check_transfers_have_entries() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
BEGIN
    SELECT t.id INTO v_id FROM ledger_transfers_new t
     WHERE NOT EXISTS (SELECT FROM ledger_entries e WHERE e.transfer_id = t.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || v_id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER ledger_accounts_change_has_entry ON ledger_accounts;
DROP TRIGGER ledger_transfers_balanced ON ledger_transfers;
DROP FUNCTION ledger_check_account_entry();
DROP FUNCTION ledger_check_transfer_balanced();
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_account_id_fkey,
    DROP CONSTRAINT ledger_entries_transfer_id_fkey;
CREATE TRIGGER ledger_accounts_change_has_entries AFTER UPDATE ON ledger_accounts
    REFERENCING NEW TABLE AS ledger_accounts_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_account_changes();
CREATE TRIGGER ledger_entries_balance_their_transfer AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS ledger_entries_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_entries();
CREATE TRIGGER ledger_transfers_have_entries AFTER INSERT ON ledger_transfers
    REFERENCING NEW TABLE AS ledger_transfers_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_transfers_have_entries();


-- A batch of one, without the batch machinery. Most calls carry a single event; the batch
-- function pays for unpacking jsonb, slot maps, chain snapshots and set-based write-back even
-- then. This one takes the event as typed arguments and applies exactly the rules of
-- ledger_create_transfers to a batch of one (same checks in the same order, same rows), in
-- two statements when it can: one read, one write.
--
-- Whether the accounts must be locked before checking depends on the event. Only the
-- account limits (exceeds_credits / exceeds_debits) depend on balances that a concurrent
-- transfer can change; every other check reads rows that never change once written (the
-- transfer with this id, its failure, the pending transfer, a resolution, which account
-- exists in which currency). So:
-- - a single or pending transfer that a limit applies to (debit account with
--   debits_must_not_exceed_credits, or credit account with credits_must_not_exceed_debits)
--   goes to ledger_create_transfer_locked: accounts locked in id order, then checked;
-- - anything else is checked without locks and written by one statement that adds its
--   amounts to the balances (the UPDATE takes the row locks, in id order, as late as the
--   bare reference does) and records the entries from the balances it returns. A concurrent
--   writer of the same id or of another resolution of the same pending transfer makes its
--   insert fail with unique_violation, which the caller retries (and then sees the winner).
CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_id text, p_kind text, p_debit text, p_credit text, p_amount bigint, p_currency text,
    p_code text, p_pending_id text DEFAULT NULL, p_timeout integer DEFAULT 0,
    p_linked boolean DEFAULT false, p_now timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_timeout integer := coalesce(p_timeout, 0);
    v_result text;
    r record;  -- everything the event refers to, read at once
    v_amount bigint; v_dpe bigint; v_dpo bigint; v_cpe bigint; v_cpo bigint;
    v_debit text; v_credit text; v_currency text; v_expires timestamptz;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('single', 'pending', 'post_pending', 'void_pending') THEN
        RAISE EXCEPTION USING MESSAGE = 'unknown transfer kind (expected single, pending,'
            || ' post_pending or void_pending)', ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a lone linked event leaves its chain open: nothing happens, the id stays free
    IF coalesce(p_linked, false) THEN RETURN 'linked_event_chain_open'; END IF;

    -- the stored transfer with this id and its failure, the pending transfer a post or void
    -- resolves and its resolution, and the two accounts (the pending transfer's, if any)
    SELECT t.kind AS t_kind, t.linked AS t_linked, t.debit_account_id AS t_debit,
           t.credit_account_id AS t_credit, t.amount AS t_amount,
           t.currency::text AS t_currency, t.code AS t_code, t.pending_id AS t_pending,
           t.timeout_seconds AS t_timeout, f.result AS failed,
           p.kind AS p_kind, p.debit_account_id AS p_debit, p.credit_account_id AS p_credit,
           p.amount AS p_amount, p.currency::text AS p_currency, p.expires_at AS p_expires,
           res.kind AS resolution,
           d.id AS d_id, d.currency::text AS d_currency,
           d.debits_must_not_exceed_credits AS d_limited,
           c.id AS c_id, c.currency::text AS c_currency,
           c.credits_must_not_exceed_debits AS c_limited
      INTO r
      FROM (SELECT) one
      LEFT JOIN ledger_transfers t ON t.id = p_id
      LEFT JOIN ledger_transfer_failures f ON f.id = p_id
      LEFT JOIN ledger_transfers p ON p.id = p_pending_id
      LEFT JOIN ledger_transfers res ON res.pending_id = p_pending_id
      LEFT JOIN ledger_accounts d ON d.id = coalesce(p.debit_account_id, p_debit)
      LEFT JOIN ledger_accounts c ON c.id = coalesce(p.credit_account_id, p_credit);

    IF r.t_kind IS NOT NULL THEN
        -- 1. a repeated id answers with the original outcome
        RETURN CASE
            WHEN r.t_kind <> p_kind OR r.t_linked THEN 'exists_with_different_flags'
            WHEN r.t_pending IS DISTINCT FROM p_pending_id
                THEN 'exists_with_different_pending_id'
            WHEN r.t_timeout <> v_timeout THEN 'exists_with_different_timeout'
            WHEN p_debit <> r.t_debit THEN 'exists_with_different_debit_account_id'
            WHEN p_credit <> r.t_credit THEN 'exists_with_different_credit_account_id'
            WHEN p_amount <> r.t_amount THEN 'exists_with_different_amount'
            WHEN p_currency <> r.t_currency THEN 'exists_with_different_currency'
            WHEN p_code IS DISTINCT FROM r.t_code THEN 'exists_with_different_code'
            ELSE 'exists' END;
    ELSIF r.failed IS NOT NULL THEN
        RETURN 'id_already_failed';
    ELSIF v_timeout > 0 AND p_kind <> 'pending' THEN
        v_result := 'timeout_reserved_for_pending_transfer';
    ELSIF p_kind IN ('single', 'pending') THEN
        -- 2. a new single or pending transfer
        v_amount := p_amount;
        IF p_pending_id IS NOT NULL THEN v_result := 'pending_id_must_be_empty';
        ELSIF v_amount IS NULL OR v_amount <= 0 THEN v_result := 'amount_must_be_positive';
        ELSIF p_debit = p_credit THEN v_result := 'accounts_must_be_different';
        ELSIF r.d_id IS NULL THEN v_result := 'debit_account_not_found';
        ELSIF r.c_id IS NULL THEN v_result := 'credit_account_not_found';
        ELSIF p_currency IS NULL OR r.d_currency <> p_currency OR r.c_currency <> p_currency THEN
            v_result := 'currency_mismatch';
        ELSIF r.d_limited OR r.c_limited THEN
            -- the outcome depends on balances: check them under the accounts' locks
            RETURN ledger_create_transfer_locked(p_id, p_kind, p_debit, p_credit, p_amount,
                p_currency, p_code, p_pending_id, p_timeout, p_linked, v_now);
        ELSIF p_kind = 'single' THEN
            v_dpe := 0; v_dpo := v_amount; v_cpe := 0; v_cpo := v_amount;
        ELSE
            v_dpe := v_amount; v_dpo := 0; v_cpe := v_amount; v_cpo := 0;
            IF v_timeout > 0 THEN v_expires := v_now + make_interval(secs => v_timeout); END IF;
        END IF;
        v_debit := p_debit; v_credit := p_credit; v_currency := p_currency;
    ELSE
        -- 3. a new post or void of a pending transfer (never limited: it only ever lowers
        -- debits_pending + debits_posted and credits_pending + credits_posted)
        IF p_pending_id IS NULL THEN v_result := 'pending_id_required';
        ELSIF p_pending_id = p_id THEN v_result := 'pending_id_must_be_different';
        ELSIF p_amount IS NOT NULL AND p_amount <= 0 THEN v_result := 'amount_must_be_positive';
        ELSIF r.p_kind IS NULL THEN v_result := 'pending_transfer_not_found';
        ELSIF r.p_kind <> 'pending' THEN v_result := 'pending_transfer_not_pending';
        ELSIF p_debit <> r.p_debit THEN
            v_result := 'pending_transfer_has_different_debit_account_id';
        ELSIF p_credit <> r.p_credit THEN
            v_result := 'pending_transfer_has_different_credit_account_id';
        ELSIF p_currency <> r.p_currency THEN
            v_result := 'pending_transfer_has_different_currency';
        ELSIF r.resolution = 'post_pending' THEN v_result := 'pending_transfer_already_posted';
        ELSIF r.resolution = 'void_pending' THEN v_result := 'pending_transfer_already_voided';
        ELSIF r.resolution = 'expire_pending' OR r.p_expires <= v_now THEN
            v_result := 'pending_transfer_expired';
        ELSIF p_kind = 'post_pending' AND p_amount > r.p_amount THEN
            v_result := 'exceeds_pending_transfer_amount';
        ELSIF p_kind = 'void_pending' AND p_amount <> r.p_amount THEN
            v_result := 'pending_transfer_has_different_amount';
        ELSIF p_kind = 'post_pending' THEN
            v_amount := coalesce(p_amount, r.p_amount);
            v_dpe := -r.p_amount; v_dpo := v_amount; v_cpe := -r.p_amount; v_cpo := v_amount;
        ELSE
            v_amount := r.p_amount;
            v_dpe := -r.p_amount; v_dpo := 0; v_cpe := -r.p_amount; v_cpo := 0;
        END IF;
        v_debit := r.p_debit; v_credit := r.p_credit; v_currency := r.p_currency;
    END IF;

    IF v_result IS NOT NULL THEN
        -- a failed id stays failed; if a concurrent request failed it first, say so
        INSERT INTO ledger_transfer_failures (id, result) VALUES (p_id, v_result)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN RETURN 'id_already_failed'; END IF;
        RETURN v_result;
    END IF;

    -- apply, in one statement: the transfer, the balances (row locks taken here, in id
    -- order), and the two legs with the balances the update returns
    WITH moved AS (
        UPDATE ledger_accounts a
           SET debits_pending = a.debits_pending + m.dpe,
               debits_posted = a.debits_posted + m.dpo,
               credits_pending = a.credits_pending + m.cpe,
               credits_posted = a.credits_posted + m.cpo, version = a.version + 1
          FROM (SELECT * FROM (VALUES (v_debit, 'debit', v_dpe, v_dpo, 0::bigint, 0::bigint),
                                      (v_credit, 'credit', 0::bigint, 0::bigint, v_cpe, v_cpo))
                           AS legs(id, leg, dpe, dpo, cpe, cpo)
                 ORDER BY id) m
         WHERE a.id = m.id
        RETURNING a.id, m.leg, m.dpe, m.dpo, m.cpe, m.cpo, a.version, a.debits_pending,
                  a.debits_posted, a.credits_pending, a.credits_posted
    ), legs AS (
        INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
            debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
            debits_posted, credits_pending, credits_posted)
        SELECT m.id, m.version, p_id, m.leg, m.dpe, m.dpo, m.cpe, m.cpo, m.debits_pending,
               m.debits_posted, m.credits_pending, m.credits_posted
          FROM moved m
    )
    INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
        code, kind, pending_id, timeout_seconds, expires_at, linked)
    VALUES (p_id, v_debit, v_credit, v_amount, v_currency, p_code, p_kind, p_pending_id,
        v_timeout, v_expires, false);
    RETURN 'ok';
END $$;


-- A batch of one whose limits depend on balances: the accounts are locked (in id order, as
-- the batch function locks them) before anything is read, then the event is checked and
-- applied exactly as the batch function would.
CREATE OR REPLACE FUNCTION ledger_create_transfer_locked(
    p_id text, p_kind text, p_debit text, p_credit text, p_amount bigint, p_currency text,
    p_code text, p_pending_id text DEFAULT NULL, p_timeout integer DEFAULT 0,
    p_linked boolean DEFAULT false, p_now timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_timeout integer := coalesce(p_timeout, 0);
    v_result text;
    t record;      -- the stored transfer with this id (if any) and this id's earlier failure
    p record;      -- the pending transfer a post/void resolves
    d record;      -- the debit account, locked
    c record;      -- the credit account, locked
    v_res text;    -- how the pending transfer was resolved, if it was
    v_amount bigint; v_dpe bigint; v_dpo bigint; v_cpe bigint; v_cpo bigint;
    v_debit text := p_debit; v_credit text := p_credit; v_currency text := p_currency;
    v_expires timestamptz;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('single', 'pending', 'post_pending', 'void_pending') THEN
        RAISE EXCEPTION USING MESSAGE = 'unknown transfer kind (expected single, pending,'
            || ' post_pending or void_pending)', ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a lone linked event leaves its chain open: nothing happens, the id stays free
    IF coalesce(p_linked, false) THEN RETURN 'linked_event_chain_open'; END IF;

    -- Lock the accounts the event can touch, in id order (as the batch function does), so
    -- that a concurrent writer of the same id has committed before we look for it below.
    IF p_kind IN ('post_pending', 'void_pending') THEN
        -- transfers are immutable: the pending transfer's accounts can be read before locking
        SELECT r.kind, r.debit_account_id AS debit, r.credit_account_id AS credit, r.amount,
               r.currency::text AS currency, r.expires_at
          INTO p FROM ledger_transfers r WHERE r.id = p_pending_id;
        IF FOUND THEN v_debit := p.debit; v_credit := p.credit; END IF;
    END IF;
    IF v_debit < v_credit OR v_credit IS NULL THEN
        SELECT a.id, a.currency::text AS currency, a.debits_must_not_exceed_credits AS dmnec,
               a.credits_must_not_exceed_debits AS cmned, a.debits_pending AS dpe,
               a.debits_posted AS dpo, a.credits_pending AS cpe, a.credits_posted AS cpo,
               a.version
          INTO d FROM ledger_accounts a WHERE a.id = v_debit FOR NO KEY UPDATE;
        SELECT a.id, a.currency::text AS currency, a.debits_must_not_exceed_credits AS dmnec,
               a.credits_must_not_exceed_debits AS cmned, a.debits_pending AS dpe,
               a.debits_posted AS dpo, a.credits_pending AS cpe, a.credits_posted AS cpo,
               a.version
          INTO c FROM ledger_accounts a WHERE a.id = v_credit FOR NO KEY UPDATE;
    ELSE
        SELECT a.id, a.currency::text AS currency, a.debits_must_not_exceed_credits AS dmnec,
               a.credits_must_not_exceed_debits AS cmned, a.debits_pending AS dpe,
               a.debits_posted AS dpo, a.credits_pending AS cpe, a.credits_posted AS cpo,
               a.version
          INTO c FROM ledger_accounts a WHERE a.id = v_credit FOR NO KEY UPDATE;
        SELECT a.id, a.currency::text AS currency, a.debits_must_not_exceed_credits AS dmnec,
               a.credits_must_not_exceed_debits AS cmned, a.debits_pending AS dpe,
               a.debits_posted AS dpo, a.credits_pending AS cpe, a.credits_posted AS cpo,
               a.version
          INTO d FROM ledger_accounts a WHERE a.id = v_debit FOR NO KEY UPDATE;
    END IF;

    SELECT r.kind, r.linked, r.debit_account_id AS debit, r.credit_account_id AS credit,
           r.amount, r.currency::text AS currency, r.code, r.pending_id, r.timeout_seconds,
           f.result AS failed
      INTO t
      FROM (SELECT) one
      LEFT JOIN ledger_transfers r ON r.id = p_id
      LEFT JOIN ledger_transfer_failures f ON f.id = p_id;

    IF t.kind IS NOT NULL THEN
        -- 1. a repeated id answers with the original outcome
        RETURN CASE
            WHEN t.kind <> p_kind OR t.linked THEN 'exists_with_different_flags'
            WHEN t.pending_id IS DISTINCT FROM p_pending_id THEN 'exists_with_different_pending_id'
            WHEN t.timeout_seconds <> v_timeout THEN 'exists_with_different_timeout'
            WHEN p_debit <> t.debit THEN 'exists_with_different_debit_account_id'
            WHEN p_credit <> t.credit THEN 'exists_with_different_credit_account_id'
            WHEN p_amount <> t.amount THEN 'exists_with_different_amount'
            WHEN p_currency <> t.currency THEN 'exists_with_different_currency'
            WHEN p_code IS DISTINCT FROM t.code THEN 'exists_with_different_code'
            ELSE 'exists' END;
    ELSIF t.failed IS NOT NULL THEN
        RETURN 'id_already_failed';
    ELSIF v_timeout > 0 AND p_kind <> 'pending' THEN
        v_result := 'timeout_reserved_for_pending_transfer';
    ELSIF p_kind IN ('single', 'pending') THEN
        -- 2. a new single or pending transfer
        v_amount := p_amount;
        IF p_pending_id IS NOT NULL THEN v_result := 'pending_id_must_be_empty';
        ELSIF v_amount IS NULL OR v_amount <= 0 THEN v_result := 'amount_must_be_positive';
        ELSIF p_debit = p_credit THEN v_result := 'accounts_must_be_different';
        ELSIF d.id IS NULL THEN v_result := 'debit_account_not_found';
        ELSIF c.id IS NULL THEN v_result := 'credit_account_not_found';
        ELSIF p_currency IS NULL OR d.currency <> p_currency OR c.currency <> p_currency THEN
            v_result := 'currency_mismatch';
        ELSIF d.dmnec AND d.dpe + d.dpo + v_amount > d.cpo THEN v_result := 'exceeds_credits';
        ELSIF c.cmned AND c.cpe + c.cpo + v_amount > c.dpo THEN v_result := 'exceeds_debits';
        ELSIF p_kind = 'single' THEN
            v_dpe := 0; v_dpo := v_amount; v_cpe := 0; v_cpo := v_amount;
        ELSE
            v_dpe := v_amount; v_dpo := 0; v_cpe := v_amount; v_cpo := 0;
            IF v_timeout > 0 THEN v_expires := v_now + make_interval(secs => v_timeout); END IF;
        END IF;
    ELSE
        -- 3. a new post or void of a pending transfer
        IF p_pending_id IS NULL THEN v_result := 'pending_id_required';
        ELSIF p_pending_id = p_id THEN v_result := 'pending_id_must_be_different';
        ELSIF p_amount IS NOT NULL AND p_amount <= 0 THEN v_result := 'amount_must_be_positive';
        ELSIF p.kind IS NULL THEN v_result := 'pending_transfer_not_found';
        ELSIF p.kind <> 'pending' THEN v_result := 'pending_transfer_not_pending';
        ELSIF p_debit <> p.debit THEN
            v_result := 'pending_transfer_has_different_debit_account_id';
        ELSIF p_credit <> p.credit THEN
            v_result := 'pending_transfer_has_different_credit_account_id';
        ELSIF p_currency <> p.currency THEN
            v_result := 'pending_transfer_has_different_currency';
        ELSE
            SELECT r.kind INTO v_res FROM ledger_transfers r WHERE r.pending_id = p_pending_id;
            IF v_res = 'post_pending' THEN v_result := 'pending_transfer_already_posted';
            ELSIF v_res = 'void_pending' THEN v_result := 'pending_transfer_already_voided';
            ELSIF v_res = 'expire_pending' OR p.expires_at <= v_now THEN
                v_result := 'pending_transfer_expired';
            ELSIF p_kind = 'post_pending' AND p_amount > p.amount THEN
                v_result := 'exceeds_pending_transfer_amount';
            ELSIF p_kind = 'void_pending' AND p_amount <> p.amount THEN
                v_result := 'pending_transfer_has_different_amount';
            ELSIF p_kind = 'post_pending' THEN
                v_amount := coalesce(p_amount, p.amount);
                v_dpe := -p.amount; v_dpo := v_amount; v_cpe := -p.amount; v_cpo := v_amount;
            ELSE
                v_amount := p.amount;
                v_dpe := -p.amount; v_dpo := 0; v_cpe := -p.amount; v_cpo := 0;
            END IF;
            v_currency := p.currency;
        END IF;
    END IF;

    IF v_result IS NOT NULL THEN
        -- a failed id stays failed
        INSERT INTO ledger_transfer_failures (id, result) VALUES (p_id, v_result)
        ON CONFLICT (id) DO NOTHING;
        RETURN v_result;
    END IF;

    -- apply, in one statement: the transfer, its two legs with the balances after each,
    -- and the balances themselves
    WITH transfer AS (
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
            code, kind, pending_id, timeout_seconds, expires_at, linked)
        VALUES (p_id, v_debit, v_credit, v_amount, v_currency, p_code, p_kind, p_pending_id,
            v_timeout, v_expires, false)
    ), legs AS (
        INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
            debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
            debits_posted, credits_pending, credits_posted)
        VALUES (v_debit, d.version + 1, p_id, 'debit', v_dpe, v_dpo, 0, 0, d.dpe + v_dpe,
                d.dpo + v_dpo, d.cpe, d.cpo),
               (v_credit, c.version + 1, p_id, 'credit', 0, 0, v_cpe, v_cpo, c.dpe, c.dpo,
                c.cpe + v_cpe, c.cpo + v_cpo)
    )
    UPDATE ledger_accounts a
       SET debits_pending = u.dpe, debits_posted = u.dpo, credits_pending = u.cpe,
           credits_posted = u.cpo, version = u.ver
      FROM (VALUES (v_debit, d.dpe + v_dpe, d.dpo + v_dpo, d.cpe, d.cpo, d.version + 1),
                   (v_credit, c.dpe, c.dpo, c.cpe + v_cpe, c.cpo + v_cpo, c.version + 1))
           AS u(id, dpe, dpo, cpe, cpo, ver)
     WHERE a.id = u.id;
    RETURN 'ok';
END $$;


-- The batch function, adapted to the statement-level checks above (0003 otherwise):
-- - transfers, entries and balances are written by one statement (the checks run at its end);
-- - the slot map is built in one statement and a new transfer is remembered in `known` only
--   when a later event of the batch can refer to it (both were quadratic in the batch size);
-- - generic plans: the custom plans its statements got were re-planned on every call;
-- - FOR NO KEY UPDATE: the balances change, never the key, so foreign-key checks of other
--   transactions (KEY SHARE) need not wait for the lock.
CREATE OR REPLACE FUNCTION ledger_create_transfers(p_events jsonb, p_now timestamptz DEFAULT NULL)
RETURNS text[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    n integer := jsonb_array_length(p_events);
    results text[] := array_fill(NULL::text, ARRAY[n]);
    -- the events, as columns
    e_id text[]; e_kind text[]; e_debit text[]; e_credit text[]; e_amount bigint[];
    e_currency text[]; e_code text[]; e_pending text[]; e_timeout integer[]; e_linked boolean[];
    -- the locked accounts, by slot; a_slot maps id -> slot
    v_ids text[]; v_pending_ids text[]; a_slot jsonb; a_id text[]; a_currency text[]; a_dmnec boolean[]; a_cmned boolean[];
    a_dpe bigint[]; a_dpo bigint[]; a_cpe bigint[]; a_cpo bigint[]; a_ver bigint[];
    a_ver0 bigint[];
    -- ids a later event of the batch may look up (as its own id, or as the pending it resolves)
    v_refs text[];
    -- transfers this batch knows (stored ones it refers to, and the ones it creates),
    -- resolutions of pending transfers, and failed ids
    known jsonb; resolved jsonb; failed jsonb;
    -- what to write at the end
    t_id text[] := '{}'; t_debit text[] := '{}'; t_credit text[] := '{}';
    t_amount bigint[] := '{}'; t_currency text[] := '{}'; t_code text[] := '{}';
    t_kind text[] := '{}'; t_pending text[] := '{}'; t_timeout integer[] := '{}';
    t_expires timestamptz[] := '{}'; t_linked boolean[] := '{}';
    en_account text[] := '{}'; en_version bigint[] := '{}'; en_transfer text[] := '{}';
    en_leg text[] := '{}'; en_ddpe bigint[] := '{}'; en_ddpo bigint[] := '{}';
    en_dcpe bigint[] := '{}'; en_dcpo bigint[] := '{}'; en_dpe bigint[] := '{}';
    en_dpo bigint[] := '{}'; en_cpe bigint[] := '{}'; en_cpo bigint[] := '{}';
    f_id text[] := '{}'; f_result text[] := '{}';
    -- chain snapshots (restored when a linked chain fails)
    s_known jsonb; s_resolved jsonb; s_dpe bigint[]; s_dpo bigint[]; s_cpe bigint[];
    s_cpo bigint[]; s_ver bigint[]; s_nt integer; s_ne integer;
    -- per event
    i integer; j integer; v_start integer := 1; v_end integer; v_failed integer;
    v_result text; t jsonb; p jsonb; ds integer; cs integer; v_amount bigint; v_p bigint;
    v_dpe bigint; v_dpo bigint; v_cpe bigint; v_cpo bigint; v_kind text; v_res text;
BEGIN
    IF n = 0 THEN RETURN results; END IF;
    SELECT array_agg(x.e->>'id' ORDER BY x.ord), array_agg(x.e->>'kind' ORDER BY x.ord),
           array_agg(x.e->>'debit_account_id' ORDER BY x.ord),
           array_agg(x.e->>'credit_account_id' ORDER BY x.ord),
           array_agg((x.e->>'amount')::bigint ORDER BY x.ord),
           array_agg(x.e->>'currency' ORDER BY x.ord), array_agg(x.e->>'code' ORDER BY x.ord),
           array_agg(x.e->>'pending_id' ORDER BY x.ord),
           array_agg(coalesce((x.e->>'timeout_seconds')::integer, 0) ORDER BY x.ord),
           array_agg(coalesce((x.e->>'linked')::boolean, false) ORDER BY x.ord)
      INTO e_id, e_kind, e_debit, e_credit, e_amount, e_currency, e_code, e_pending,
           e_timeout, e_linked
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, ord);
    IF EXISTS (SELECT FROM unnest(e_kind) k
                WHERE k IS NULL OR k NOT IN ('single', 'pending', 'post_pending', 'void_pending'))
    THEN
        RAISE EXCEPTION USING MESSAGE = 'unknown transfer kind (expected single, pending,'
            || ' post_pending or void_pending)',
            ERRCODE = 'invalid_parameter_value';
    END IF;

    v_refs := ARRAY(SELECT r FROM unnest(e_pending) r WHERE r IS NOT NULL
                    UNION ALL
                    SELECT r FROM unnest(e_id) r GROUP BY r HAVING count(*) > 1);

    -- Lock every account the batch can touch, in id order, and read them: concurrent
    -- batches never wait on each other in a cycle, and nothing below reads stale balances.
    v_pending_ids := array_remove(e_pending, NULL);
    v_ids := array_remove(e_debit || e_credit, NULL);
    IF cardinality(v_pending_ids) > 0 THEN
        v_ids := v_ids || ARRAY(
            SELECT unnest(ARRAY[t.debit_account_id, t.credit_account_id])
              FROM ledger_transfers t WHERE t.id = ANY (v_pending_ids));
    END IF;
    SELECT array_agg(l.id), array_agg(l.currency), array_agg(l.debits_must_not_exceed_credits),
           array_agg(l.credits_must_not_exceed_debits), array_agg(l.debits_pending),
           array_agg(l.debits_posted), array_agg(l.credits_pending), array_agg(l.credits_posted),
           array_agg(l.version)
      INTO a_id, a_currency, a_dmnec, a_cmned, a_dpe, a_dpo, a_cpe, a_cpo, a_ver
      FROM (SELECT a.id, a.currency, a.debits_must_not_exceed_credits,
                   a.credits_must_not_exceed_debits, a.debits_pending, a.debits_posted,
                   a.credits_pending, a.credits_posted, a.version
              FROM ledger_accounts a WHERE a.id = ANY (v_ids)
             ORDER BY a.id FOR NO KEY UPDATE) l;
    SELECT coalesce(jsonb_object_agg(u.id, u.slot), '{}') INTO a_slot
      FROM unnest(a_id) WITH ORDINALITY AS u(id, slot);
    a_ver0 := a_ver;

    -- after the locks: a concurrent batch that touched these accounts has committed
    SELECT coalesce(jsonb_object_agg(t.id, jsonb_build_object(
               'kind', t.kind, 'linked', t.linked, 'debit', t.debit_account_id,
               'credit', t.credit_account_id, 'amount', t.amount, 'currency', t.currency,
               'code', t.code, 'pending_id', t.pending_id, 'timeout', t.timeout_seconds,
               'expires_at', t.expires_at)), '{}')
      INTO known FROM ledger_transfers t WHERE t.id = ANY (e_id || e_pending);
    resolved := '{}';
    IF cardinality(v_pending_ids) > 0 THEN
        SELECT coalesce(jsonb_object_agg(r.pending_id, r.kind), '{}')
          INTO resolved FROM ledger_transfers r WHERE r.pending_id = ANY (v_pending_ids);
    END IF;
    SELECT coalesce(jsonb_object_agg(f.id, f.result), '{}')
      INTO failed FROM ledger_transfer_failures f WHERE f.id = ANY (e_id);

    WHILE v_start <= n LOOP
        v_end := v_start;
        WHILE v_end <= n AND e_linked[v_end] LOOP v_end := v_end + 1; END LOOP;
        IF v_end > n THEN
            FOR i IN v_start .. n LOOP results[i] := 'linked_event_chain_open'; END LOOP;
            EXIT;
        END IF;
        IF v_end > v_start THEN
            s_known := known; s_resolved := resolved; s_dpe := a_dpe; s_dpo := a_dpo;
            s_cpe := a_cpe; s_cpo := a_cpo; s_ver := a_ver;
            s_nt := cardinality(t_id); s_ne := cardinality(en_account);
        END IF;
        v_failed := NULL;

        FOR i IN v_start .. v_end LOOP
            v_result := NULL;
            v_kind := e_kind[i];
            t := known -> e_id[i];
            IF t IS NOT NULL THEN
                -- 1. a repeated id answers with the original outcome
                v_result := CASE
                    WHEN t->>'kind' <> v_kind OR (t->>'linked')::boolean <> e_linked[i]
                        THEN 'exists_with_different_flags'
                    WHEN t->>'pending_id' IS DISTINCT FROM e_pending[i]
                        THEN 'exists_with_different_pending_id'
                    WHEN (t->>'timeout')::integer <> e_timeout[i]
                        THEN 'exists_with_different_timeout'
                    WHEN e_debit[i] IS NOT NULL AND e_debit[i] <> t->>'debit'
                        THEN 'exists_with_different_debit_account_id'
                    WHEN e_credit[i] IS NOT NULL AND e_credit[i] <> t->>'credit'
                        THEN 'exists_with_different_credit_account_id'
                    WHEN e_amount[i] IS NOT NULL AND e_amount[i] <> (t->>'amount')::bigint
                        THEN 'exists_with_different_amount'
                    WHEN e_currency[i] IS NOT NULL AND e_currency[i] <> t->>'currency'
                        THEN 'exists_with_different_currency'
                    WHEN e_code[i] IS DISTINCT FROM t->>'code' THEN 'exists_with_different_code'
                    ELSE 'exists' END;
            ELSIF failed ? e_id[i] THEN
                v_result := 'id_already_failed';
            ELSIF e_timeout[i] > 0 AND v_kind <> 'pending' THEN
                v_result := 'timeout_reserved_for_pending_transfer';
            ELSIF v_kind IN ('single', 'pending') THEN
                -- 2. a new single or pending transfer
                ds := (a_slot->>e_debit[i])::integer;
                cs := (a_slot->>e_credit[i])::integer;
                v_amount := e_amount[i];
                IF e_pending[i] IS NOT NULL THEN v_result := 'pending_id_must_be_empty';
                ELSIF v_amount IS NULL OR v_amount <= 0 THEN v_result := 'amount_must_be_positive';
                ELSIF e_debit[i] = e_credit[i] THEN v_result := 'accounts_must_be_different';
                ELSIF ds IS NULL THEN v_result := 'debit_account_not_found';
                ELSIF cs IS NULL THEN v_result := 'credit_account_not_found';
                ELSIF e_currency[i] IS NULL OR a_currency[ds] <> e_currency[i]
                      OR a_currency[cs] <> e_currency[i] THEN v_result := 'currency_mismatch';
                ELSIF a_dmnec[ds] AND a_dpe[ds] + a_dpo[ds] + v_amount > a_cpo[ds] THEN
                    v_result := 'exceeds_credits';
                ELSIF a_cmned[cs] AND a_cpe[cs] + a_cpo[cs] + v_amount > a_dpo[cs] THEN
                    v_result := 'exceeds_debits';
                ELSE
                    IF v_kind = 'single' THEN
                        v_dpe := 0; v_dpo := v_amount; v_cpe := 0; v_cpo := v_amount;
                    ELSE
                        v_dpe := v_amount; v_dpo := 0; v_cpe := v_amount; v_cpo := 0;
                    END IF;
                    t_expires := t_expires || CASE WHEN e_timeout[i] > 0
                        THEN v_now + make_interval(secs => e_timeout[i]) END;
                    v_result := 'ok';
                END IF;
            ELSE
                -- 3. a new post or void of a pending transfer
                p := known -> e_pending[i];
                v_res := resolved ->> e_pending[i];
                IF e_pending[i] IS NULL THEN v_result := 'pending_id_required';
                ELSIF e_pending[i] = e_id[i] THEN v_result := 'pending_id_must_be_different';
                ELSIF e_amount[i] IS NOT NULL AND e_amount[i] <= 0 THEN
                    v_result := 'amount_must_be_positive';
                ELSIF p IS NULL THEN v_result := 'pending_transfer_not_found';
                ELSIF p->>'kind' <> 'pending' THEN v_result := 'pending_transfer_not_pending';
                ELSIF e_debit[i] IS NOT NULL AND e_debit[i] <> p->>'debit' THEN
                    v_result := 'pending_transfer_has_different_debit_account_id';
                ELSIF e_credit[i] IS NOT NULL AND e_credit[i] <> p->>'credit' THEN
                    v_result := 'pending_transfer_has_different_credit_account_id';
                ELSIF e_currency[i] IS NOT NULL AND e_currency[i] <> p->>'currency' THEN
                    v_result := 'pending_transfer_has_different_currency';
                ELSIF v_res = 'post_pending' THEN v_result := 'pending_transfer_already_posted';
                ELSIF v_res = 'void_pending' THEN v_result := 'pending_transfer_already_voided';
                ELSIF v_res = 'expire_pending'
                      OR (p->>'expires_at')::timestamptz <= v_now THEN
                    v_result := 'pending_transfer_expired';
                ELSE
                    v_p := (p->>'amount')::bigint;
                    IF v_kind = 'post_pending' AND e_amount[i] > v_p THEN
                        v_result := 'exceeds_pending_transfer_amount';
                    ELSIF v_kind = 'void_pending' AND e_amount[i] IS NOT NULL
                          AND e_amount[i] <> v_p THEN
                        v_result := 'pending_transfer_has_different_amount';
                    ELSE
                        ds := (a_slot->>(p->>'debit'))::integer;
                        cs := (a_slot->>(p->>'credit'))::integer;
                        IF ds IS NULL OR cs IS NULL THEN
                            -- the pending transfer committed after the accounts were chosen
                            -- for locking: its accounts are not locked; try again
                            RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
                                MESSAGE = 'pending transfer ' || e_pending[i]
                                          || ' appeared while the batch was locking';
                        END IF;
                        IF v_kind = 'post_pending' THEN
                            v_amount := coalesce(e_amount[i], v_p);
                            v_dpo := v_amount; v_cpo := v_amount;
                        ELSE
                            v_amount := v_p;
                            v_dpo := 0; v_cpo := 0;
                        END IF;
                        v_dpe := -v_p; v_cpe := -v_p;
                        e_debit[i] := p->>'debit';
                        e_credit[i] := p->>'credit';
                        e_currency[i] := p->>'currency';
                        t_expires := t_expires || NULL::timestamptz;
                        resolved := resolved || jsonb_build_object(e_pending[i], v_kind);
                        v_result := 'ok';
                    END IF;
                END IF;
            END IF;

            results[i] := v_result;
            IF v_result = 'ok' THEN
                -- apply: the transfer, its two legs, and the balances after each
                t_id := t_id || e_id[i]; t_debit := t_debit || e_debit[i];
                t_credit := t_credit || e_credit[i]; t_amount := t_amount || v_amount;
                t_currency := t_currency || e_currency[i]; t_code := t_code || e_code[i];
                t_kind := t_kind || v_kind; t_pending := t_pending || e_pending[i];
                t_timeout := t_timeout || e_timeout[i]; t_linked := t_linked || e_linked[i];
                -- later events of this batch may repeat this id or post/void it
                IF i < n AND e_id[i] = ANY (v_refs) THEN known := known || jsonb_build_object(e_id[i], jsonb_build_object(
                    'kind', v_kind, 'linked', e_linked[i], 'debit', e_debit[i],
                    'credit', e_credit[i], 'amount', v_amount, 'currency', e_currency[i],
                    'code', e_code[i], 'pending_id', e_pending[i], 'timeout', e_timeout[i],
                    'expires_at', t_expires[cardinality(t_expires)])); END IF;
                a_dpe[ds] := a_dpe[ds] + v_dpe; a_dpo[ds] := a_dpo[ds] + v_dpo;
                a_ver[ds] := a_ver[ds] + 1;
                en_account := en_account || a_id[ds]; en_version := en_version || a_ver[ds];
                en_transfer := en_transfer || e_id[i]; en_leg := en_leg || 'debit'::text;
                en_ddpe := en_ddpe || v_dpe; en_ddpo := en_ddpo || v_dpo;
                en_dcpe := en_dcpe || 0::bigint; en_dcpo := en_dcpo || 0::bigint;
                en_dpe := en_dpe || a_dpe[ds]; en_dpo := en_dpo || a_dpo[ds];
                en_cpe := en_cpe || a_cpe[ds]; en_cpo := en_cpo || a_cpo[ds];
                a_cpe[cs] := a_cpe[cs] + v_cpe; a_cpo[cs] := a_cpo[cs] + v_cpo;
                a_ver[cs] := a_ver[cs] + 1;
                en_account := en_account || a_id[cs]; en_version := en_version || a_ver[cs];
                en_transfer := en_transfer || e_id[i]; en_leg := en_leg || 'credit'::text;
                en_ddpe := en_ddpe || 0::bigint; en_ddpo := en_ddpo || 0::bigint;
                en_dcpe := en_dcpe || v_cpe; en_dcpo := en_dcpo || v_cpo;
                en_dpe := en_dpe || a_dpe[cs]; en_dpo := en_dpo || a_dpo[cs];
                en_cpe := en_cpe || a_cpe[cs]; en_cpo := en_cpo || a_cpo[cs];
            ELSIF v_result <> 'exists' THEN
                v_failed := i;
                EXIT;
            END IF;
        END LOOP;

        IF v_failed IS NOT NULL THEN
            IF v_end > v_start THEN
                -- the chain fails as a whole: undo what its earlier events did
                known := s_known; resolved := s_resolved; a_dpe := s_dpe; a_dpo := s_dpo;
                a_cpe := s_cpe; a_cpo := s_cpo; a_ver := s_ver;
                t_id := t_id[1:s_nt]; t_debit := t_debit[1:s_nt];
                t_credit := t_credit[1:s_nt]; t_amount := t_amount[1:s_nt];
                t_currency := t_currency[1:s_nt]; t_code := t_code[1:s_nt];
                t_kind := t_kind[1:s_nt]; t_pending := t_pending[1:s_nt];
                t_timeout := t_timeout[1:s_nt]; t_expires := t_expires[1:s_nt];
                t_linked := t_linked[1:s_nt];
                en_account := en_account[1:s_ne]; en_version := en_version[1:s_ne];
                en_transfer := en_transfer[1:s_ne]; en_leg := en_leg[1:s_ne];
                en_ddpe := en_ddpe[1:s_ne]; en_ddpo := en_ddpo[1:s_ne];
                en_dcpe := en_dcpe[1:s_ne]; en_dcpo := en_dcpo[1:s_ne];
                en_dpe := en_dpe[1:s_ne]; en_dpo := en_dpo[1:s_ne];
                en_cpe := en_cpe[1:s_ne]; en_cpo := en_cpo[1:s_ne];
                FOR j IN v_start .. v_end LOOP
                    IF j <> v_failed THEN results[j] := 'linked_event_failed'; END IF;
                END LOOP;
            END IF;
            -- a failed id stays failed; an id that exists is not a failure
            v_result := results[v_failed];
            IF v_result NOT LIKE 'exists%' AND v_result <> 'id_already_failed' THEN
                failed := failed || jsonb_build_object(e_id[v_failed], v_result);
                f_id := f_id || e_id[v_failed]; f_result := f_result || v_result;
            END IF;
        END IF;
        v_start := v_end + 1;
    END LOOP;

    -- write back, in one statement
    IF cardinality(t_id) > 0 THEN
        WITH transfers AS (
            INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount,
                currency, code, kind, pending_id, timeout_seconds, expires_at, linked)
            SELECT * FROM unnest(t_id, t_debit, t_credit, t_amount, t_currency, t_code, t_kind,
                t_pending, t_timeout, t_expires, t_linked)
        ), entries AS (
            INSERT INTO ledger_entries (account_id, version, transfer_id, leg,
                debits_pending_delta, debits_posted_delta, credits_pending_delta,
                credits_posted_delta, debits_pending, debits_posted, credits_pending,
                credits_posted)
            SELECT * FROM unnest(en_account, en_version, en_transfer, en_leg, en_ddpe, en_ddpo,
                en_dcpe, en_dcpo, en_dpe, en_dpo, en_cpe, en_cpo)
        )
        UPDATE ledger_accounts a
           SET debits_pending = u.dpe, debits_posted = u.dpo, credits_pending = u.cpe,
               credits_posted = u.cpo, version = u.ver
          FROM unnest(a_id, a_dpe, a_dpo, a_cpe, a_cpo, a_ver, a_ver0)
               AS u(id, dpe, dpo, cpe, cpo, ver, ver0)
         WHERE a.id = u.id AND u.ver <> u.ver0;
    END IF;
    IF cardinality(f_id) > 0 THEN
        INSERT INTO ledger_transfer_failures (id, result)
        SELECT * FROM unnest(f_id, f_result) ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN results;
END $$;


-- Release every unresolved pending transfer whose timeout has passed, in one statement: the
-- expiry transfers, their entries (versions and balances chained per account, in pending id
-- order) and the balances. (0002 updated each balance before writing its entry, which the
-- immediate checks above refuse.)
CREATE OR REPLACE FUNCTION ledger_expire_pending(p_now timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_due text[];
    v_count integer;
BEGIN
    SELECT array_agg(t.id) INTO v_due FROM ledger_transfers t
     WHERE t.expires_at <= v_now
       AND NOT EXISTS (SELECT FROM ledger_transfers r WHERE r.pending_id = t.id);
    IF v_due IS NULL THEN RETURN 0; END IF;
    PERFORM FROM ledger_accounts a
     WHERE a.id IN (SELECT unnest(ARRAY[t.debit_account_id, t.credit_account_id])
                      FROM ledger_transfers t WHERE t.id = ANY (v_due))
     ORDER BY a.id FOR NO KEY UPDATE;
    -- after the locks: a post or void that committed meanwhile has resolved its pending
    WITH due AS (
        SELECT t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.code
          FROM ledger_transfers t
         WHERE t.id = ANY (v_due)
           AND NOT EXISTS (SELECT FROM ledger_transfers r WHERE r.pending_id = t.id)
    ), legs AS (
        SELECT d.id AS pending_id, d.debit_account_id AS account_id, 'debit' AS leg,
               -d.amount AS dpe, 0::bigint AS cpe
          FROM due d
        UNION ALL
        SELECT d.id, d.credit_account_id, 'credit', 0::bigint, -d.amount FROM due d
    ), chained AS (
        SELECT l.*, a.version + row_number() OVER w AS version,
               a.debits_pending + sum(l.dpe) OVER w AS debits_pending, a.debits_posted,
               a.credits_pending + sum(l.cpe) OVER w AS credits_pending, a.credits_posted
          FROM legs l JOIN ledger_accounts a ON a.id = l.account_id
        WINDOW w AS (PARTITION BY l.account_id ORDER BY l.pending_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ), entries AS (
        INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
            debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
            debits_posted, credits_pending, credits_posted)
        SELECT c.account_id, c.version, c.pending_id || '~expired', c.leg, c.dpe, 0, c.cpe, 0,
               c.debits_pending, c.debits_posted, c.credits_pending, c.credits_posted
          FROM chained c
    ), balances AS (
        UPDATE ledger_accounts a
           SET debits_pending = a.debits_pending + s.dpe,
               credits_pending = a.credits_pending + s.cpe, version = a.version + s.n
          FROM (SELECT l.account_id, sum(l.dpe) AS dpe, sum(l.cpe) AS cpe, count(*) AS n
                  FROM legs l GROUP BY l.account_id) s
         WHERE a.id = s.account_id
    )
    INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
        code, kind, pending_id)
    SELECT d.id || '~expired', d.debit_account_id, d.credit_account_id, d.amount, d.currency,
           d.code, 'expire_pending', d.id
      FROM due d;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

DROP FUNCTION ledger_post_legs(text, text, text, bigint, bigint, bigint, bigint);

-- The ledger's per-payment statements name the month they read (migration 0032, issue #23).
--
-- Since 0022 every lookup by transfer id, by resolution or by an account's neighbouring
-- entry went to every live month's partition of ledger_transfers / ledger_entries (the id
-- carries no date): one index probe per month, and per call the executor opened every
-- month's partition. At 500 days of history (17 months) a payment's write path took 2.67x as
-- long as at 5 days. Here each such read goes to the one month where the row is:
--
-- 1. By transfer id: ledger_transfer_ids (unpartitioned, one row per transfer) holds each
--    transfer's created_at; the functions (the single-event ones and the batch function)
--    read it first, then the wide row by (id, created_at), which the executor prunes to one partition (a PL/pgSQL variable is a
--    parameter of the generic plan: pruned when the plan starts). Likewise the pending
--    transfer a post or void resolves, and its resolution (the id table's unique index on
--    pending_id). A concurrent writer committing between the two reads is the race the
--    engine already retries (the insert fails on the id table's key).
-- 2. The entries check reads each new entry's predecessor in the statement's months first;
--    only when one is not there (an account's first entry of a month, its version 1, its
--    first after the archive's boundary) does it read every month, exactly as 0022 did. Its duplicate-version check reads from the month before
--    the statement's oldest entry onward. That is exact because of a new rule: an entry is
--    never dated more than a month before its predecessor. Any entry (account, v) continued
--    the one entry (account, v - 1) (versions are unique, checked on every insert), so it is
--    dated at most a month before it; if that predecessor lies in the statement's months,
--    every entry with this version lies from the month before them onward. (Writers date
--    entries now(): a transaction would have to stay open for a month to break the rule,
--    and then it is refused, not let through.)
-- 3. An entry lies in its transfer's month (new rule; every writer writes a transfer and its
--    legs in one statement, and archiving already requires both legs in the month). So the
--    transfer check reads the transfer and its legs in the statement's months only, and the
--    transfers check reads the legs of the new transfers in theirs.
-- 4. A changed account is compared with its entry at its new version, which must be above
--    its old one (trigger with OLD TABLE; a rewind is refused outright). Entries are never
--    ahead of their account (the entries check), so that entry is its newest: the same rule
--    as 0006's "equals its latest entry", without an ORDER BY over every month. The entry
--    was written in this statement: it is read in this month first, in every month only
--    when it is not there.
-- 5. The once-triggers of events and status history look for an earlier row of the same id
--    from the month of the payment's creation (less a day for clock skew) onward: a
--    payment's events and status records are never older than the payment. Rows of no
--    payment are looked up in every month, as before.


-- 1. The single-event functions of 0006, with their reads by transfer id through the id table.
CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_id text, p_kind text, p_debit text, p_credit text, p_amount bigint, p_currency text,
    p_code text, p_pending_id text DEFAULT NULL, p_timeout integer DEFAULT 0,
    p_linked boolean DEFAULT false, p_now timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_timeout integer := coalesce(p_timeout, 0);
    v_result text;
    r record;  -- everything the event refers to, read at once
    v_amount bigint; v_dpe bigint; v_dpo bigint; v_cpe bigint; v_cpo bigint;
    v_debit text; v_credit text; v_currency text; v_expires timestamptz;
    -- the months of the transfer with this id, of the pending transfer, of its resolution
    v_t_at timestamptz; v_p_at timestamptz; v_r_id text; v_r_at timestamptz;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('single', 'pending', 'post_pending', 'void_pending') THEN
        RAISE EXCEPTION USING MESSAGE = 'unknown transfer kind (expected single, pending,'
            || ' post_pending or void_pending)', ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a lone linked event leaves its chain open: nothing happens, the id stays free
    IF coalesce(p_linked, false) THEN RETURN 'linked_event_chain_open'; END IF;

    -- where the transfers it refers to live: the id table holds each one's created_at, so
    -- the read below goes to one month's partition for each instead of probing every month
    SELECT ti.created_at, pi.created_at, ri.id, ri.created_at
      INTO v_t_at, v_p_at, v_r_id, v_r_at
      FROM (SELECT) one
      LEFT JOIN ledger_transfer_ids ti ON ti.id = p_id
      LEFT JOIN ledger_transfer_ids pi ON pi.id = p_pending_id
      LEFT JOIN ledger_transfer_ids ri ON ri.pending_id = p_pending_id;
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
      LEFT JOIN ledger_transfers t ON t.id = p_id AND t.created_at = v_t_at
      LEFT JOIN ledger_transfer_failures f ON f.id = p_id
      LEFT JOIN ledger_transfers p ON p.id = p_pending_id AND p.created_at = v_p_at
      LEFT JOIN ledger_transfers res ON res.id = v_r_id AND res.created_at = v_r_at
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


CREATE OR REPLACE FUNCTION ledger_create_transfer_locked(
    p_id text, p_kind text, p_debit text, p_credit text, p_amount bigint, p_currency text,
    p_code text, p_pending_id text DEFAULT NULL, p_timeout integer DEFAULT 0,
    p_linked boolean DEFAULT false, p_now timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
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
    v_at timestamptz; v_r_id text;  -- a transfer's month (from the id table), a resolution
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
        SELECT i.created_at INTO v_at FROM ledger_transfer_ids i WHERE i.id = p_pending_id;
        SELECT r.kind, r.debit_account_id AS debit, r.credit_account_id AS credit, r.amount,
               r.currency::text AS currency, r.expires_at
          INTO p FROM ledger_transfers r WHERE r.id = p_pending_id AND r.created_at = v_at;
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

    SELECT i.created_at INTO v_at FROM ledger_transfer_ids i WHERE i.id = p_id;
    SELECT r.kind, r.linked, r.debit_account_id AS debit, r.credit_account_id AS credit,
           r.amount, r.currency::text AS currency, r.code, r.pending_id, r.timeout_seconds,
           f.result AS failed
      INTO t
      FROM (SELECT) one
      LEFT JOIN ledger_transfers r ON r.id = p_id AND r.created_at = v_at
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
            SELECT i.id, i.created_at INTO v_r_id, v_at
              FROM ledger_transfer_ids i WHERE i.pending_id = p_pending_id;
            SELECT r.kind INTO v_res
              FROM ledger_transfers r WHERE r.id = v_r_id AND r.created_at = v_at;
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



-- 1. The batch function of 0006, with its reads of stored transfers through the id table and
-- in the months those transfers lie in.
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
    -- the months of the stored transfers the batch refers to (from the id table)
    v_from timestamptz; v_to timestamptz;
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
    -- every stored transfer the batch can refer to (its ids, the pending transfers it
    -- resolves, their resolutions) lies between these times: the reads of the wide rows
    -- below go to those months only, each row by (id, created_at)
    SELECT min(i.created_at), max(i.created_at) INTO v_from, v_to
      FROM ledger_transfer_ids i
     WHERE i.id = ANY (e_id || e_pending) OR i.pending_id = ANY (v_pending_ids);
    IF cardinality(v_pending_ids) > 0 THEN
        v_ids := v_ids || ARRAY(
            SELECT unnest(ARRAY[t.debit_account_id, t.credit_account_id])
              FROM ledger_transfer_ids i
              JOIN ledger_transfers t ON t.id = i.id AND t.created_at = i.created_at
             WHERE i.id = ANY (v_pending_ids)
               AND t.created_at >= v_from AND t.created_at <= v_to);
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

    -- after the locks: a concurrent batch that touched these accounts has committed (the
    -- months again: it may have written one of these ids)
    SELECT min(i.created_at), max(i.created_at) INTO v_from, v_to
      FROM ledger_transfer_ids i
     WHERE i.id = ANY (e_id || e_pending) OR i.pending_id = ANY (v_pending_ids);
    SELECT coalesce(jsonb_object_agg(t.id, jsonb_build_object(
               'kind', t.kind, 'linked', t.linked, 'debit', t.debit_account_id,
               'credit', t.credit_account_id, 'amount', t.amount, 'currency', t.currency,
               'code', t.code, 'pending_id', t.pending_id, 'timeout', t.timeout_seconds,
               'expires_at', t.expires_at)), '{}')
      INTO known
      FROM ledger_transfer_ids i
      JOIN ledger_transfers t ON t.id = i.id AND t.created_at = i.created_at
     WHERE i.id = ANY (e_id || e_pending)
       AND t.created_at >= v_from AND t.created_at <= v_to;
    resolved := '{}';
    IF cardinality(v_pending_ids) > 0 THEN
        SELECT coalesce(jsonb_object_agg(r.pending_id, r.kind), '{}')
          INTO resolved
          FROM ledger_transfer_ids i
          JOIN ledger_transfers r ON r.id = i.id AND r.created_at = i.created_at
         WHERE i.pending_id = ANY (v_pending_ids)
           AND r.created_at >= v_from AND r.created_at <= v_to;
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

-- 2, 3. The entries check (0022's, with its reads bounded to the statement's months).
CREATE OR REPLACE FUNCTION ledger_check_entries() RETURNS trigger LANGUAGE plpgsql
SET TimeZone = 'UTC'
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
    v_from timestamptz;  -- the start of the month of the statement's oldest entry
    v_to timestamptz;    -- the end of the month of its newest
BEGIN
    SELECT date_trunc('month', min(created_at)),
           date_trunc('month', max(created_at)) + interval '1 month'
      INTO v_from, v_to FROM ledger_entries_new;
    -- each new entry continues its account's chain (from its previous entry, live or at the
    -- archive's boundary), is not dated more than a month before it, takes a version nobody
    -- has, and its account has caught up with it
    IF EXISTS (SELECT FROM ledger_entries_new n
                WHERE NOT EXISTS (SELECT FROM ledger_entries p
                                   WHERE p.account_id = n.account_id
                                     AND p.version = n.version - 1
                                     AND p.created_at >= v_from AND p.created_at < v_to)) THEN
        -- an entry without a live predecessor in the statement's months: an account's first
        -- entry of a month, its very first (version 1) or its first after the archive's
        -- boundary (no predecessor bounds where a second entry of that version could be),
        -- or an entry dated before its predecessor: every month is read, as 0022 did
        SELECT n.account_id || ' version ' || n.version INTO v_id
          FROM ledger_entries_new n
          LEFT JOIN LATERAL (
              SELECT x.* FROM (
                  SELECT p.version, p.debits_pending, p.debits_posted, p.credits_pending,
                         p.credits_posted, p.created_at
                    FROM ledger_entries p
                   WHERE p.account_id = n.account_id AND p.version = n.version - 1
                  UNION ALL
                  SELECT z.version, z.debits_pending, z.debits_posted, z.credits_pending,
                         z.credits_posted, NULL
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
            OR n.created_at < p.created_at - interval '1 month'
            OR (SELECT count(*) FROM ledger_entries d
                 WHERE d.account_id = n.account_id AND d.version = n.version) > 1
            OR a.version IS NULL OR a.version < n.version
         LIMIT 1;
    ELSE
        -- every predecessor is live in the statement's months: a second entry of the same
        -- version lies from the month before them onward (see 2.)
        SELECT n.account_id || ' version ' || n.version INTO v_id
          FROM ledger_entries_new n
          LEFT JOIN LATERAL (
              SELECT x.* FROM (
                  SELECT p.version, p.debits_pending, p.debits_posted, p.credits_pending,
                         p.credits_posted, p.created_at
                    FROM ledger_entries p
                   WHERE p.account_id = n.account_id AND p.version = n.version - 1
                     AND p.created_at >= v_from AND p.created_at < v_to
                  UNION ALL
                  SELECT z.version, z.debits_pending, z.debits_posted, z.credits_pending,
                         z.credits_posted, NULL
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
            OR n.created_at < p.created_at - interval '1 month'
            OR (SELECT count(*) FROM ledger_entries d
                 WHERE d.account_id = n.account_id AND d.version = n.version
                   AND d.created_at >= v_from - interval '1 month') > 1
            OR a.version IS NULL OR a.version < n.version
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'entry ' || v_id || ' does not continue its account''s entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- each transfer has one debit and one credit leg of equal size on its own accounts, all
    -- in its own month (3.): the transfer and its legs are read in the statement's months
    SELECT n.transfer_id INTO v_id
      FROM (SELECT transfer_id, min(created_at) AS first_at, max(created_at) AS last_at
              FROM ledger_entries_new GROUP BY transfer_id) n
      LEFT JOIN ledger_transfers t ON t.id = n.transfer_id
           AND t.created_at >= v_from AND t.created_at < v_to
      LEFT JOIN LATERAL (
          SELECT count(*) AS legs,
                 count(*) FILTER (WHERE e.leg = 'debit' AND e.account_id = t.debit_account_id)
                     AS debit_legs,
                 count(*) FILTER (WHERE e.leg = 'credit' AND e.account_id = t.credit_account_id)
                     AS credit_legs,
                 sum(e.debits_pending_delta + e.debits_posted_delta) AS debits,
                 sum(e.credits_pending_delta + e.credits_posted_delta) AS credits
            FROM ledger_entries e
           WHERE e.transfer_id = n.transfer_id
             AND e.created_at >= v_from AND e.created_at < v_to) s ON true
     WHERE t.id IS NULL OR s.legs <> 2 OR s.debit_legs <> 1 OR s.credit_legs <> 1
        OR s.debits IS DISTINCT FROM s.credits
        OR date_trunc('month', n.first_at) <> date_trunc('month', t.created_at)
        OR date_trunc('month', n.last_at) <> date_trunc('month', t.created_at)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || v_id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- 3. Every new transfer has entries, in its own month.
CREATE OR REPLACE FUNCTION ledger_check_transfers_have_entries() RETURNS trigger
LANGUAGE plpgsql SET TimeZone = 'UTC'
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
    v_from timestamptz;
    v_to timestamptz;
BEGIN
    SELECT date_trunc('month', min(created_at)),
           date_trunc('month', max(created_at)) + interval '1 month'
      INTO v_from, v_to FROM ledger_transfers_new;
    SELECT t.id INTO v_id FROM ledger_transfers_new t
     WHERE NOT EXISTS (SELECT FROM ledger_entries e
                        WHERE e.transfer_id = t.id
                          AND e.created_at >= v_from AND e.created_at < v_to)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || v_id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- 4. A changed account moved forward to an entry that holds exactly its balances.
CREATE OR REPLACE FUNCTION ledger_check_account_changes() RETURNS trigger LANGUAGE plpgsql
SET TimeZone = 'UTC'
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_id text;
    -- this month: where the statement's entries are (dated now())
    v_from timestamptz := date_trunc('month', now());
    v_to timestamptz := date_trunc('month', now()) + interval '1 month';
BEGIN
    IF EXISTS (SELECT FROM ledger_accounts_new n JOIN ledger_accounts_old o ON o.id = n.id
                WHERE n.version > o.version
                  AND NOT EXISTS (SELECT FROM ledger_entries e
                                   WHERE e.account_id = n.id AND e.version = n.version
                                     AND e.created_at >= v_from AND e.created_at < v_to)) THEN
        -- an entry written with another date: look in every month
        v_from := '-infinity';
        v_to := 'infinity';
    END IF;
    SELECT n.id INTO v_id
      FROM ledger_accounts_new n
      JOIN ledger_accounts_old o ON o.id = n.id
      LEFT JOIN LATERAL (
          SELECT e.version, e.debits_pending, e.debits_posted, e.credits_pending,
                 e.credits_posted
            FROM ledger_entries e
           WHERE e.account_id = n.id AND e.version = n.version
             AND e.created_at >= v_from AND e.created_at < v_to
           LIMIT 1) e ON true
     WHERE (n.version, n.debits_pending, n.debits_posted, n.credits_pending, n.credits_posted)
           IS DISTINCT FROM (o.version, o.debits_pending, o.debits_posted, o.credits_pending,
                             o.credits_posted)
       AND (n.version <= o.version
            OR (n.version, n.debits_pending, n.debits_posted, n.credits_pending,
                n.credits_posted)
               IS DISTINCT FROM (e.version, e.debits_pending, e.debits_posted,
                                 e.credits_pending, e.credits_posted))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            MESSAGE = 'balance of ' || v_id || ' changed without matching ledger entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER ledger_accounts_change_has_entries ON ledger_accounts;
CREATE TRIGGER ledger_accounts_change_has_entries AFTER UPDATE ON ledger_accounts
    REFERENCING OLD TABLE AS ledger_accounts_old NEW TABLE AS ledger_accounts_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_account_changes();

-- 5. Written once, looked up from the payment's month.
CREATE OR REPLACE FUNCTION events_once() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_from timestamptz;
BEGIN
    IF NEW.payment_id IS NOT NULL THEN
        SELECT date_trunc('month', p.created_at - interval '1 day', 'UTC')
          INTO v_from FROM payments p WHERE p.id = NEW.payment_id;
    END IF;
    IF EXISTS (SELECT FROM events e
                WHERE e.id = NEW.id AND e.created_at >= coalesce(v_from, '-infinity')) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION payment_status_history_once() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_from timestamptz;
BEGIN
    SELECT date_trunc('month', p.created_at - interval '1 day', 'UTC')
      INTO v_from FROM payments p WHERE p.id = NEW.payment_id;
    IF EXISTS (SELECT FROM payment_status_history h
                WHERE h.payment_id = NEW.payment_id AND h.seq = NEW.seq
                  AND h.at >= coalesce(v_from, '-infinity')) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

-- The ledger's per-payment statements name the month they read (migration 0032, issue #23).
--
-- Since 0022 every lookup by transfer id, by resolution or by an account's neighbouring
-- entry went to every live month's partition of ledger_transfers / ledger_entries (the id
-- carries no date): one index probe per month, and per call the executor opened every
-- month's partition. At 500 days of history (17 months) a payment's write path took 2.67x as
-- long as at 5 days. Here each such read goes to the one month where the row is:
--
-- 1. By transfer id: ledger_transfer_ids (unpartitioned, one row per transfer) holds each
--    transfer's created_at; the functions read it first, then the wide row by
--    (id, created_at), which the executor prunes to one partition (a PL/pgSQL variable is a
--    parameter of the generic plan: pruned when the plan starts). Likewise the pending
--    transfer a post or void resolves, and its resolution (the id table's unique index on
--    pending_id). A concurrent writer committing between the two reads is the race the
--    engine already retries (the insert fails on the id table's key).
-- 2. The entries check reads each new entry's predecessor in the statement's months first;
--    only when one is not there (an account's first entry of a month) does it read every
--    month, exactly as 0022 did. Its duplicate-version check reads from the month before
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
                 LEFT JOIN ledger_archived_accounts z ON z.account_id = n.account_id
                WHERE n.version > 1 AND z.version IS DISTINCT FROM n.version - 1
                  AND NOT EXISTS (SELECT FROM ledger_entries p
                                   WHERE p.account_id = n.account_id
                                     AND p.version = n.version - 1
                                     AND p.created_at >= v_from AND p.created_at < v_to)) THEN
        -- a predecessor in another month (an account's first entry of a month, or an entry
        -- dated before its predecessor): every month is read, as 0022 did
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
        -- every predecessor is in the statement's months (or at the archive's boundary): a
        -- second entry of the same version lies from the month before them onward (see 2.)
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

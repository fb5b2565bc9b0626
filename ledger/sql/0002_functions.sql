-- The ledger's posting rules (ledger/models.py has the specification in prose).
-- Installed by migration 0002; 0003_functions.sql replaces the batch function.

-- Apply the balance deltas of one transfer to its two accounts and write both entries.
CREATE FUNCTION ledger_post_legs(
    p_transfer_id text, p_debit text, p_credit text,
    p_pending_delta bigint, p_posted_delta bigint,
    p_credit_pending_delta bigint, p_credit_posted_delta bigint
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a ledger_accounts%ROWTYPE;
BEGIN
    UPDATE ledger_accounts
       SET debits_pending = debits_pending + p_pending_delta,
           debits_posted = debits_posted + p_posted_delta,
           version = version + 1
     WHERE id = p_debit
    RETURNING * INTO a;
    INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
        debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
        debits_posted, credits_pending, credits_posted)
    VALUES (a.id, a.version, p_transfer_id, 'debit', p_pending_delta, p_posted_delta, 0, 0,
        a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted);

    UPDATE ledger_accounts
       SET credits_pending = credits_pending + p_credit_pending_delta,
           credits_posted = credits_posted + p_credit_posted_delta,
           version = version + 1
     WHERE id = p_credit
    RETURNING * INTO a;
    INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
        debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
        debits_posted, credits_pending, credits_posted)
    VALUES (a.id, a.version, p_transfer_id, 'credit', 0, 0, p_credit_pending_delta,
        p_credit_posted_delta, a.debits_pending, a.debits_posted, a.credits_pending,
        a.credits_posted);
END $$;


-- Validate and apply one event; returns its result code. Writes nothing unless 'ok'.
CREATE FUNCTION ledger_apply_transfer(e jsonb, p_now timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text := e->>'id';
    v_kind text := e->>'kind';
    v_debit text := e->>'debit_account_id';
    v_credit text := e->>'credit_account_id';
    v_amount bigint := (e->>'amount')::bigint;
    v_currency text := e->>'currency';
    v_code text := e->>'code';
    v_pending_id text := e->>'pending_id';
    v_timeout integer := coalesce((e->>'timeout_seconds')::integer, 0);
    v_linked boolean := coalesce((e->>'linked')::boolean, false);
    t ledger_transfers%ROWTYPE;
    p ledger_transfers%ROWTYPE;
    d ledger_accounts%ROWTYPE;
    c ledger_accounts%ROWTYPE;
    v_resolution text;
BEGIN
    -- 1. a repeated id answers with the original outcome
    SELECT * INTO t FROM ledger_transfers WHERE id = v_id;
    IF FOUND THEN
        IF t.kind <> v_kind OR t.linked <> v_linked THEN RETURN 'exists_with_different_flags'; END IF;
        IF t.pending_id IS DISTINCT FROM v_pending_id THEN
            RETURN 'exists_with_different_pending_id';
        END IF;
        IF t.timeout_seconds <> v_timeout THEN RETURN 'exists_with_different_timeout'; END IF;
        IF v_debit IS NOT NULL AND v_debit <> t.debit_account_id THEN
            RETURN 'exists_with_different_debit_account_id';
        END IF;
        IF v_credit IS NOT NULL AND v_credit <> t.credit_account_id THEN
            RETURN 'exists_with_different_credit_account_id';
        END IF;
        IF v_amount IS NOT NULL AND v_amount <> t.amount THEN
            RETURN 'exists_with_different_amount';
        END IF;
        IF v_currency IS NOT NULL AND v_currency <> t.currency THEN
            RETURN 'exists_with_different_currency';
        END IF;
        IF v_code <> t.code THEN RETURN 'exists_with_different_code'; END IF;
        RETURN 'exists';
    END IF;
    PERFORM 1 FROM ledger_transfer_failures WHERE id = v_id;
    IF FOUND THEN RETURN 'id_already_failed'; END IF;

    IF v_timeout > 0 AND v_kind <> 'pending' THEN
        RETURN 'timeout_reserved_for_pending_transfer';
    END IF;

    IF v_kind IN ('single', 'pending') THEN
        -- 2. a new single or pending transfer
        IF v_pending_id IS NOT NULL THEN RETURN 'pending_id_must_be_empty'; END IF;
        IF v_amount IS NULL OR v_amount <= 0 THEN RETURN 'amount_must_be_positive'; END IF;
        IF v_debit = v_credit THEN RETURN 'accounts_must_be_different'; END IF;
        SELECT * INTO d FROM ledger_accounts WHERE id = v_debit;
        IF NOT FOUND THEN RETURN 'debit_account_not_found'; END IF;
        SELECT * INTO c FROM ledger_accounts WHERE id = v_credit;
        IF NOT FOUND THEN RETURN 'credit_account_not_found'; END IF;
        IF d.currency <> v_currency OR c.currency <> v_currency OR v_currency IS NULL THEN
            RETURN 'currency_mismatch';
        END IF;
        IF d.debits_must_not_exceed_credits
           AND d.debits_pending + d.debits_posted + v_amount > d.credits_posted THEN
            RETURN 'exceeds_credits';
        END IF;
        IF c.credits_must_not_exceed_debits
           AND c.credits_pending + c.credits_posted + v_amount > c.debits_posted THEN
            RETURN 'exceeds_debits';
        END IF;
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
            code, kind, linked, timeout_seconds, expires_at)
        VALUES (v_id, v_debit, v_credit, v_amount, v_currency, v_code, v_kind, v_linked,
            v_timeout,
            CASE WHEN v_timeout > 0 THEN p_now + make_interval(secs => v_timeout) END);
        IF v_kind = 'single' THEN
            PERFORM ledger_post_legs(v_id, v_debit, v_credit, 0, v_amount, 0, v_amount);
        ELSE
            PERFORM ledger_post_legs(v_id, v_debit, v_credit, v_amount, 0, v_amount, 0);
        END IF;
        RETURN 'ok';
    END IF;

    -- 3. a new post or void of a pending transfer
    IF v_pending_id IS NULL THEN RETURN 'pending_id_required'; END IF;
    IF v_pending_id = v_id THEN RETURN 'pending_id_must_be_different'; END IF;
    IF v_amount IS NOT NULL AND v_amount <= 0 THEN RETURN 'amount_must_be_positive'; END IF;
    SELECT * INTO p FROM ledger_transfers WHERE id = v_pending_id;
    IF NOT FOUND THEN RETURN 'pending_transfer_not_found'; END IF;
    IF p.kind <> 'pending' THEN RETURN 'pending_transfer_not_pending'; END IF;
    IF v_debit IS NOT NULL AND v_debit <> p.debit_account_id THEN
        RETURN 'pending_transfer_has_different_debit_account_id';
    END IF;
    IF v_credit IS NOT NULL AND v_credit <> p.credit_account_id THEN
        RETURN 'pending_transfer_has_different_credit_account_id';
    END IF;
    IF v_currency IS NOT NULL AND v_currency <> p.currency THEN
        RETURN 'pending_transfer_has_different_currency';
    END IF;
    SELECT kind INTO v_resolution FROM ledger_transfers WHERE pending_id = v_pending_id;
    IF v_resolution = 'post_pending' THEN RETURN 'pending_transfer_already_posted'; END IF;
    IF v_resolution = 'void_pending' THEN RETURN 'pending_transfer_already_voided'; END IF;
    IF v_resolution = 'expire_pending' OR p.expires_at <= p_now THEN
        RETURN 'pending_transfer_expired';
    END IF;
    IF v_kind = 'post_pending' THEN
        IF v_amount > p.amount THEN RETURN 'exceeds_pending_transfer_amount'; END IF;
        v_amount := coalesce(v_amount, p.amount);
    ELSE
        IF v_amount IS NOT NULL AND v_amount <> p.amount THEN
            RETURN 'pending_transfer_has_different_amount';
        END IF;
        v_amount := p.amount;
    END IF;
    INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
        code, kind, linked, pending_id)
    VALUES (v_id, p.debit_account_id, p.credit_account_id, v_amount, p.currency, v_code,
        v_kind, v_linked, v_pending_id);
    IF v_kind = 'post_pending' THEN
        PERFORM ledger_post_legs(v_id, p.debit_account_id, p.credit_account_id,
            -p.amount, v_amount, -p.amount, v_amount);
    ELSE
        PERFORM ledger_post_legs(v_id, p.debit_account_id, p.credit_account_id,
            -p.amount, 0, -p.amount, 0);
    END IF;
    RETURN 'ok';
END $$;


-- Apply a batch of events in one round trip; one result code per event, in order.
CREATE FUNCTION ledger_create_transfers(p_events jsonb, p_now timestamptz DEFAULT NULL)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_n integer := jsonb_array_length(p_events);
    v_results text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_start integer := 0;
    v_end integer;
    v_result text;
    v_failed integer;
    i integer;
BEGIN
    -- Lock every account the batch can touch, in id order, before changing any: concurrent
    -- batches then never wait on each other in a cycle (no deadlocks).
    PERFORM 1 FROM ledger_accounts
     WHERE id IN (
        SELECT x.value->>'debit_account_id' FROM jsonb_array_elements(p_events) x
        UNION SELECT x.value->>'credit_account_id' FROM jsonb_array_elements(p_events) x
        UNION SELECT t.debit_account_id FROM ledger_transfers t
               WHERE t.id IN (SELECT x.value->>'pending_id' FROM jsonb_array_elements(p_events) x)
        UNION SELECT t.credit_account_id FROM ledger_transfers t
               WHERE t.id IN (SELECT x.value->>'pending_id' FROM jsonb_array_elements(p_events) x))
     ORDER BY id FOR UPDATE;

    WHILE v_start < v_n LOOP
        -- the chain runs from v_start to the first event that is not linked
        v_end := v_start;
        WHILE v_end < v_n AND coalesce((p_events->v_end->>'linked')::boolean, false) LOOP
            v_end := v_end + 1;
        END LOOP;
        IF v_end = v_n THEN
            FOR i IN v_start .. v_n - 1 LOOP
                v_results[i + 1] := 'linked_event_chain_open';
            END LOOP;
            EXIT;
        END IF;

        IF v_end = v_start THEN
            -- a lone event checks everything before it writes: no savepoint needed
            v_result := ledger_apply_transfer(p_events->v_start, v_now);
            v_results[v_start + 1] := v_result;
            IF v_result NOT IN ('ok', 'exists') THEN
                PERFORM ledger_remember_failure(p_events->v_start->>'id', v_result);
            END IF;
        ELSE
            v_failed := NULL;
            BEGIN
                FOR i IN v_start .. v_end LOOP
                    v_result := ledger_apply_transfer(p_events->i, v_now);
                    v_results[i + 1] := v_result;
                    IF v_result NOT IN ('ok', 'exists') THEN
                        v_failed := i;
                        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ledger_chain_failed';
                    END IF;
                END LOOP;
            EXCEPTION WHEN raise_exception THEN
                IF SQLERRM <> 'ledger_chain_failed' THEN RAISE; END IF;
            END;
            IF v_failed IS NOT NULL THEN
                FOR i IN v_start .. v_end LOOP
                    IF i <> v_failed THEN v_results[i + 1] := 'linked_event_failed'; END IF;
                END LOOP;
                PERFORM ledger_remember_failure(p_events->v_failed->>'id', v_results[v_failed + 1]);
            END IF;
        END IF;
        v_start := v_end + 1;
    END LOOP;
    RETURN v_results;
END $$;


-- A failed id stays failed; an id that exists (exists_with_different_*) is not a failure.
CREATE FUNCTION ledger_remember_failure(p_id text, p_result text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_result LIKE 'exists%' OR p_result = 'id_already_failed'
       OR p_result LIKE 'linked_event_%' THEN
        RETURN;
    END IF;
    INSERT INTO ledger_transfer_failures (id, result) VALUES (p_id, p_result)
    ON CONFLICT (id) DO NOTHING;
END $$;


-- Release every unresolved pending transfer whose timeout has passed.
CREATE FUNCTION ledger_expire_pending(p_now timestamptz DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    p ledger_transfers%ROWTYPE;
    v_count integer := 0;
BEGIN
    PERFORM 1 FROM ledger_accounts
     WHERE id IN (
        SELECT t.debit_account_id FROM ledger_transfers t
         WHERE t.expires_at <= v_now
           AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
        UNION
        SELECT t.credit_account_id FROM ledger_transfers t
         WHERE t.expires_at <= v_now
           AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id))
     ORDER BY id FOR UPDATE;
    FOR p IN
        SELECT * FROM ledger_transfers t
         WHERE t.expires_at <= v_now
           AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
         ORDER BY t.id
    LOOP
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
            code, kind, pending_id)
        VALUES (p.id || '~expired', p.debit_account_id, p.credit_account_id, p.amount,
            p.currency, p.code, 'expire_pending', p.id);
        PERFORM ledger_post_legs(p.id || '~expired', p.debit_account_id, p.credit_account_id,
            -p.amount, 0, -p.amount, 0);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- The ledger's posting rules, batch-at-a-time (ledger/models.py has the specification).
--
-- 0002 applied each event with its own statements (about nine per transfer). This version
-- reads everything a batch needs in a handful of set-based statements, applies the events
-- in memory (plpgsql arrays: in-place updates), and writes transfers, entries, balances
-- and failures back with one statement each. Accounts are still locked in id order before
-- anything is read, so the outcome is the same as applying the events one by one.

CREATE OR REPLACE FUNCTION ledger_create_transfers(p_events jsonb, p_now timestamptz DEFAULT NULL)
RETURNS text[] LANGUAGE plpgsql AS $$
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
             ORDER BY a.id FOR UPDATE) l;
    a_slot := '{}';
    FOR i IN 1 .. coalesce(cardinality(a_id), 0) LOOP
        a_slot := a_slot || jsonb_build_object(a_id[i], i);
    END LOOP;
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
                IF i < n THEN known := known || jsonb_build_object(e_id[i], jsonb_build_object(
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

    -- write back: one statement each
    IF cardinality(t_id) > 0 THEN
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
            code, kind, pending_id, timeout_seconds, expires_at, linked)
        SELECT * FROM unnest(t_id, t_debit, t_credit, t_amount, t_currency, t_code, t_kind,
            t_pending, t_timeout, t_expires, t_linked);
        INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
            debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
            debits_posted, credits_pending, credits_posted)
        SELECT * FROM unnest(en_account, en_version, en_transfer, en_leg, en_ddpe, en_ddpo,
            en_dcpe, en_dcpo, en_dpe, en_dpo, en_cpe, en_cpo);
    END IF;
    UPDATE ledger_accounts a
       SET debits_pending = u.dpe, debits_posted = u.dpo, credits_pending = u.cpe,
           credits_posted = u.cpo, version = u.ver
      FROM unnest(a_id, a_dpe, a_dpo, a_cpe, a_cpo, a_ver, a_ver0)
           AS u(id, dpe, dpo, cpe, cpo, ver, ver0)
     WHERE a.id = ANY (a_id) AND a.id = u.id AND u.ver <> u.ver0;
    IF cardinality(f_id) > 0 THEN
        INSERT INTO ledger_transfer_failures (id, result)
        SELECT * FROM unnest(f_id, f_result) ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN results;
END $$;


-- A balance change must come with the entries that record it: the entries after the old
-- version add up exactly to the change, and the newest one holds the new balances.
CREATE OR REPLACE FUNCTION ledger_check_account_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    IF NEW.version < OLD.version THEN
        ok := false;
    ELSIF NEW.version = OLD.version THEN
        ok := (NEW.debits_pending, NEW.debits_posted, NEW.credits_pending, NEW.credits_posted)
              = (OLD.debits_pending, OLD.debits_posted, OLD.credits_pending, OLD.credits_posted);
    ELSE
        SELECT count(*) = NEW.version - OLD.version
               AND OLD.debits_pending + sum(e.debits_pending_delta) = NEW.debits_pending
               AND OLD.debits_posted + sum(e.debits_posted_delta) = NEW.debits_posted
               AND OLD.credits_pending + sum(e.credits_pending_delta) = NEW.credits_pending
               AND OLD.credits_posted + sum(e.credits_posted_delta) = NEW.credits_posted
               AND bool_or(e.version = NEW.version AND e.debits_pending = NEW.debits_pending
                           AND e.debits_posted = NEW.debits_posted
                           AND e.credits_pending = NEW.credits_pending
                           AND e.credits_posted = NEW.credits_posted)
          INTO ok
          FROM ledger_entries e
         WHERE e.account_id = NEW.id AND e.version > OLD.version AND e.version <= NEW.version;
    END IF;
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING
            MESSAGE = 'balance of ' || NEW.id || ' changed without matching ledger entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

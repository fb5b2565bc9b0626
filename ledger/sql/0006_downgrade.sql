-- Undo 0006_functions.sql: back to the per-row deferred checks, the entries' foreign keys
-- and the 0002/0003 functions (the migration then re-runs 0003_functions.sql for the batch
-- function and the account-entry check).

DROP TRIGGER ledger_transfers_have_entries ON ledger_transfers;
DROP TRIGGER ledger_entries_balance_their_transfer ON ledger_entries;
DROP TRIGGER ledger_accounts_change_has_entries ON ledger_accounts;
DROP FUNCTION ledger_check_transfers_have_entries();
DROP FUNCTION ledger_check_entries();
DROP FUNCTION ledger_check_account_changes();
DROP FUNCTION ledger_create_transfer(text, text, text, text, bigint, text, text, text, integer,
    boolean, timestamptz);
DROP FUNCTION ledger_create_transfer_locked(text, text, text, text, bigint, text, text, text,
    integer, boolean, timestamptz);
DROP FUNCTION ledger_expire_pending(timestamptz);
ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_account_id_fkey
        FOREIGN KEY (account_id) REFERENCES ledger_accounts(id),
    ADD CONSTRAINT ledger_entries_transfer_id_fkey
        FOREIGN KEY (transfer_id) REFERENCES ledger_transfers(id);

-- from 0002
-- Every transfer has a debit leg and a credit leg of equal size: debits = credits.
CREATE FUNCTION ledger_check_transfer_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    legs integer;
    debits bigint;
    credits bigint;
BEGIN
    SELECT count(*),
           sum(debits_pending_delta + debits_posted_delta),
           sum(credits_pending_delta + credits_posted_delta)
      INTO legs, debits, credits
      FROM ledger_entries WHERE transfer_id = NEW.id;
    IF legs <> 2 OR debits IS DISTINCT FROM credits THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || NEW.id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_transfers_balanced
    AFTER INSERT ON ledger_transfers DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_balanced();

-- from 0002_functions.sql
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

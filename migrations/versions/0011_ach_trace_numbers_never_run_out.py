"""ACH trace numbers that never run out (issue #23).

Before: `ach_trace_seq` cycled at 9,999,999 while `ach_entries.trace_number` was unique
forever, so after ten million ACH payments every ACH insert failed.

Now trace numbers are unique where NACHA needs them to be, and no further:
- `ach_trace_seq` counts entries forever (bigint, no cycle); a trace number carries the ODFI's
  8-digit identification and the count modulo 10^7 (`rails.ach_file.trace_number_for`), so a
  trace number comes back after ten million entries;
- unique within a file: UNIQUE (file_id, trace_number), which also serves the settlement
  notice's match (file, trace);
- unique per ODFI (the trace's first 8 digits) and effective entry date: UNIQUE
  (trace_number, effective_date), so a return (which names the original trace) or a notice
  matches one entry of a day unambiguously; when a trace number comes round again on a date
  that already has it (ten million entries on one effective date), the submitting activity
  takes the next one (activities/rails.py);
- returns are matched by trace, newest effective date first, and by the Individual
  Identification Number the RDFI copies back (the payment id's tail) (api/routers/rails.py).

Entries from before this revision get the creation date their file id names as their
effective date (their trace numbers were unique anyway).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER SEQUENCE ach_trace_seq AS bigint NO MAXVALUE NO CYCLE;
ALTER TABLE ach_entries ADD COLUMN effective_date date;
UPDATE ach_entries SET effective_date = to_date(split_part(file_id, '-', 2), 'YYMMDD');
ALTER TABLE ach_entries
    ALTER COLUMN effective_date SET NOT NULL,
    DROP CONSTRAINT ach_entries_trace_number_key,
    ADD CONSTRAINT ach_entries_trace_date_key UNIQUE (trace_number, effective_date),
    ADD CONSTRAINT ach_entries_file_trace_key UNIQUE (file_id, trace_number);
DROP INDEX ach_entries_file_idx;
"""

DOWNGRADE = """
CREATE INDEX ach_entries_file_idx ON ach_entries (file_id);
ALTER TABLE ach_entries
    DROP CONSTRAINT ach_entries_file_trace_key,
    DROP CONSTRAINT ach_entries_trace_date_key,
    ADD CONSTRAINT ach_entries_trace_number_key UNIQUE (trace_number),
    DROP COLUMN effective_date;
ALTER SEQUENCE ach_trace_seq AS bigint MAXVALUE 9999999 CYCLE;
"""


def upgrade() -> None:
    """Trace numbers unique per file and per effective date; the sequence never cycles."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Back to trace numbers unique forever (fails once a trace number has come round)."""
    op.execute(DOWNGRADE)

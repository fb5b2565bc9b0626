"""NACHA engine: exact record layouts, control totals, round trips, and the validator's codes.

Expected records and totals are written out by hand from the NACHA layouts, not produced by
the code under test.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nacha import (
    MAX_AMOUNT_CENTS,
    RETURN_REASON_CODES,
    Batch,
    EntryDetail,
    FileHeader,
    NachaError,
    NachaFile,
    ReturnAddenda,
    build_file,
    build_return_batch,
    build_return_entry,
    parse_file,
    routing_check_digit,
    routing_number_valid,
    trace_number,
)
from nacha.records import LAYOUTS, RECORD_SIZE

# ------------------------------------------------------------------------------ the example

HEADER = FileHeader(
    immediate_destination="021000021",
    immediate_origin="122105155",
    destination_name="JPMORGAN CHASE",
    origin_name="ACME BANK",
    file_creation=datetime(2024, 3, 15, 9, 30),
    file_id_modifier="A",
    reference_code="REF1",
)
PAYROLL = Batch(
    service_class_code=220,
    company_name="ACME CORP",
    company_identification="1234567890",
    sec_code="PPD",
    company_entry_description="PAYROLL",
    effective_entry_date=date(2024, 3, 18),
    originating_dfi="12210515",
    batch_number=1,
    entries=[
        EntryDetail(
            22, "011000015", "12345678", 150000, "EMP001", "JANE DOE", "", None, "122105150000001"
        ),
        EntryDetail(
            32,
            "021000021",
            "987-654",
            2500,
            "EMP002",
            "JOHN ROE",
            "S",
            "BONUS MARCH",
            "122105150000002",
        ),
    ],
)
INVOICES = Batch(
    service_class_code=225,
    company_name="ACME CORP",
    company_identification="1234567890",
    sec_code="CCD",
    company_entry_description="INVOICES",
    effective_entry_date=date(2024, 3, 19),
    originating_dfi="12210515",
    batch_number=2,
    entries=[
        EntryDetail(
            27, "122105155", "55501", 123456, "INV1001", "GLOBEX LLC", "", None, "122105150000003"
        ),
        EntryDetail(
            37, "011000015", "55502", 1, "INV1002", "INITECH INC", "", None, "122105150000004"
        ),
    ],
)

# Worked by hand. Entry hashes: batch 1 = 01100001 + 02100002 = 3200003;
# batch 2 = 12210515 + 01100001 = 13310516; file = 16510519. Records: 1 + 5 + 4 + 1 = 11,
# so 2 blocks and 9 padding records.
EXPECTED_LINES = [
    # 1 | 01 | b+dest | b+origin | YYMMDD | HHMM | mod | 094 | 10 | 1 | names | reference
    "1" "01" " 021000021" " 122105155" "240315" "0930" "A" "094" "10" "1"
    + "JPMORGAN CHASE".ljust(23) + "ACME BANK".ljust(23) + "REF1".ljust(8),
    # 5 | class | company name | discretionary | company id | SEC | description | descr. date
    #   | effective | settlement | status | ODFI | batch number
    "5" "220" + "ACME CORP".ljust(16) + " " * 20 + "1234567890" "PPD" + "PAYROLL".ljust(10)
    + " " * 6 + "240318" "   " "1" "12210515" "0000001",
    # 6 | code | RDFI | check | account | amount | id | name | discretionary | addenda | trace
    "6" "22" "01100001" "5" + "12345678".ljust(17) + "0000150000" + "EMP001".ljust(15)
    + "JANE DOE".ljust(22) + "  " "0" "122105150000001",
    "6" "32" "02100002" "1" + "987-654".ljust(17) + "0000002500" + "EMP002".ljust(15)
    + "JOHN ROE".ljust(22) + "S " "1" "122105150000002",
    # 7 | 05 | payment related information | addenda sequence | entry detail sequence
    "7" "05" + "BONUS MARCH".ljust(80) + "0001" "0000002",
    # 8 | class | count | hash | debits | credits | company id | MAC | reserved | ODFI | batch
    "8" "220" "000003" "0003200003" "000000000000" "000000152500" "1234567890" + " " * 19
    + " " * 6 + "12210515" "0000001",
    "5" "225" + "ACME CORP".ljust(16) + " " * 20 + "1234567890" "CCD" + "INVOICES".ljust(10)
    + " " * 6 + "240319" "   " "1" "12210515" "0000002",
    "6" "27" "12210515" "5" + "55501".ljust(17) + "0000123456" + "INV1001".ljust(15)
    + "GLOBEX LLC".ljust(22) + "  " "0" "122105150000003",
    "6" "37" "01100001" "5" + "55502".ljust(17) + "0000000001" + "INV1002".ljust(15)
    + "INITECH INC".ljust(22) + "  " "0" "122105150000004",
    "8" "225" "000002" "0013310516" "000000123457" "000000000000" "1234567890" + " " * 19
    + " " * 6 + "12210515" "0000002",
    # 9 | batches | blocks | entries+addenda | hash | debits | credits | reserved
    "9" "000002" "000002" "00000005" "0016510519" "000000123457" "000000152500" + " " * 39,
    *["9" * 94] * 9,
]  # fmt: skip


def example_text() -> str:
    return build_file(HEADER, [PAYROLL, INVOICES])


def example_lines() -> list[str]:
    return example_text().splitlines()


def check_digit(first8: str) -> str:
    """Test-side ABA check digit, independent of nacha.routing."""
    weighted = sum(int(d) * w for d, w in zip(first8, (3, 7, 1, 3, 7, 1, 3, 7), strict=True))
    return str((10 - weighted % 10) % 10)


# -------------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "rtn", ["021000021", "011000015", "122105155", "026009593", "121000358", "111000025"]
)
def test_known_routing_numbers_are_valid(rtn: str) -> None:
    assert routing_number_valid(rtn)
    assert routing_check_digit(rtn[:8]) == rtn[8]


@pytest.mark.parametrize(
    "rtn",
    [
        "021000022",  # wrong check digit
        "121000021",  # first digit changed
        "02100002",  # 8 digits
        "0210000210",  # 10 digits
        "02100002a",
        " 21000021",
        "",
        "02100002\u0661",  # Arabic-Indic one: a digit to str.isdigit(), not to a bank
    ],
)
def test_invalid_routing_numbers_are_refused(rtn: str) -> None:
    assert not routing_number_valid(rtn)


@given(st.text("0123456789", min_size=8, max_size=8), st.integers(0, 8), st.integers(1, 9))
def test_any_single_digit_change_breaks_the_check_digit(
    first8: str, position: int, delta: int
) -> None:
    rtn = first8 + check_digit(first8)
    assert routing_number_valid(rtn)
    changed = rtn[:position] + str((int(rtn[position]) + delta) % 10) + rtn[position + 1 :]
    # weights 3, 7 and 1 are all coprime with 10, so no single substitution goes unnoticed
    assert not routing_number_valid(changed)


# ------------------------------------------------------------------------------- building


def test_layouts_cover_94_characters_without_gaps() -> None:
    for layout in LAYOUTS:
        assert layout.fields[0].start == 1
        assert layout.fields[-1].end == RECORD_SIZE
        for before, after in zip(layout.fields, layout.fields[1:], strict=False):
            assert after.start == before.end + 1, (layout.name, after.name)


def test_built_file_matches_the_hand_written_records() -> None:
    text = example_text()
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    for number, (got, want) in enumerate(zip(lines, EXPECTED_LINES, strict=True), start=1):
        assert got == want, f"line {number}"


def test_built_file_structure_and_controls() -> None:
    lines = example_lines()
    assert all(len(line) == 94 for line in lines)
    assert len(lines) % 10 == 0
    control = lines[10]
    assert control[0] == "9"
    assert int(control[1:7]) == 2  # batches
    assert int(control[7:13]) == len(lines) // 10  # blocks
    assert int(control[13:21]) == 4 + 1  # entries + addenda
    assert int(control[21:31]) == 1100001 + 2100002 + 12210515 + 1100001
    assert int(control[31:43]) == 123456 + 1  # debits, cents
    assert int(control[43:55]) == 150000 + 2500  # credits, cents
    assert lines[11:] == ["9" * 94] * 9


def test_file_with_exactly_ten_records_gets_no_padding() -> None:
    one_entry = replace(INVOICES, entries=INVOICES.entries[:1], batch_number=3)
    lines = build_file(HEADER, [PAYROLL, one_entry]).splitlines()
    assert len(lines) == 10
    assert lines[-1][0] == "9" and lines[-1] != "9" * 94
    assert lines[-1][7:13] == "000001"


def test_entry_hash_keeps_the_low_order_ten_digits() -> None:
    rtn = "99999999" + check_digit("99999999")
    assert rtn == "999999992"
    entries = [
        EntryDetail(22, rtn, f"ACCT{i}", 1, "", "X", "", None, trace_number("12210515", i))
        for i in range(1, 201)
    ]
    lines = build_file(HEADER, [replace(PAYROLL, entries=entries)]).splitlines()
    # 200 * 99999999 = 19,999,999,800: the leading 1 is dropped
    assert lines[202][10:20] == "9999999800"
    assert lines[203][21:31] == "9999999800"
    assert int(lines[202][4:10]) == 200
    assert len(lines) == 210  # 204 records + 6 padding


def test_largest_amount_fits_and_one_cent_more_does_not() -> None:
    biggest = replace(PAYROLL.entries[0], amount_cents=MAX_AMOUNT_CENTS)
    lines = build_file(HEADER, [replace(PAYROLL, entries=[biggest])]).splitlines()
    assert lines[2][29:39] == "9999999999"
    assert lines[3][32:44] == "009999999999"
    too_big = replace(biggest, amount_cents=MAX_AMOUNT_CENTS + 1)
    with pytest.raises(NachaError) as err:
        build_file(HEADER, [replace(PAYROLL, entries=[too_big])])
    assert (err.value.code, err.value.field) == ("field_overflow", "amount")


def test_crlf_line_endings_on_request() -> None:
    text = build_file(HEADER, [PAYROLL], line_ending="\r\n")
    assert text.count("\r\n") == 10 and text.count("\n") == 10
    assert parse_file(text) == NachaFile(HEADER, [PAYROLL])


def test_seconds_of_the_creation_time_are_dropped() -> None:
    header = replace(HEADER, file_creation=datetime(2024, 3, 15, 9, 30, 59, 999))
    assert parse_file(build_file(header, [PAYROLL])).header == HEADER


BuildCase = tuple[str, Callable[[], tuple[FileHeader, list[Batch]]], str]


def _with_entry(**changes: object) -> tuple[FileHeader, list[Batch]]:
    entry = replace(PAYROLL.entries[0], **changes)  # type: ignore[arg-type]
    return HEADER, [replace(PAYROLL, entries=[entry])]


BUILD_ERRORS: list[BuildCase] = [
    ("float amount", lambda: _with_entry(amount_cents=1500.0), "non_numeric_field"),
    ("negative amount", lambda: _with_entry(amount_cents=-1), "invalid_field"),
    ("name too long", lambda: _with_entry(individual_name="X" * 23), "field_overflow"),
    ("non-ASCII name", lambda: _with_entry(individual_name="JOSÉ"), "invalid_character"),
    ("bad RDFI", lambda: _with_entry(receiving_dfi_routing="011000016"), "bad_routing_check_digit"),
    ("8-digit RDFI", lambda: _with_entry(receiving_dfi_routing="01100001"), "non_numeric_field"),
    ("debit in credit batch", lambda: _with_entry(transaction_code=27), "service_class_mismatch"),
    ("prenote with amount", lambda: _with_entry(transaction_code=23), "prenote_amount"),
    ("unknown code", lambda: _with_entry(transaction_code=24), "invalid_transaction_code"),
    ("foreign trace", lambda: _with_entry(trace_number="011000010000001"), "trace_number_mismatch"),
    (
        "both addenda",
        lambda: _with_entry(
            addenda="X", return_addenda=ReturnAddenda("R01", "122105150000001", "01100001")
        ),
        "addenda_conflict",
    ),
    (
        "traces not ascending",
        lambda: (HEADER, [replace(PAYROLL, entries=PAYROLL.entries[::-1])]),
        "trace_number_order",
    ),
    ("empty batch", lambda: (HEADER, [replace(PAYROLL, entries=[])]), "empty_batch"),
    ("no batches", lambda: (HEADER, []), "no_batches"),
    (
        "batch numbers not ascending",
        lambda: (HEADER, [INVOICES, replace(PAYROLL, batch_number=2)]),
        "batch_number_order",
    ),
    (
        "20th-century date",
        lambda: (HEADER, [replace(PAYROLL, effective_entry_date=date(1999, 12, 31))]),
        "invalid_date",
    ),
    ("WEB batch", lambda: (HEADER, [replace(PAYROLL, sec_code="WEB")]), "invalid_sec_code"),
    (
        "7-digit ODFI",
        lambda: (HEADER, [replace(PAYROLL, originating_dfi="1221051")]),
        "non_numeric_field",
    ),
    ("short trace", lambda: _with_entry(trace_number="12210515000001"), "non_numeric_field"),
    ("int account", lambda: _with_entry(dfi_account_number=12345678), "invalid_field"),
    (
        "date as creation time",
        # a caller without type checking passes a date: refused, not written as midnight
        lambda: (replace(HEADER, file_creation=date(2024, 3, 15)), [PAYROLL]),  # type: ignore[arg-type]
        "invalid_date",
    ),
    (
        "lower-case modifier",
        lambda: (replace(HEADER, file_id_modifier="a"), [PAYROLL]),
        "invalid_field",
    ),
    (
        "bad destination",
        lambda: (replace(HEADER, immediate_destination="021000022"), [PAYROLL]),
        "bad_routing_check_digit",
    ),
]


@pytest.mark.parametrize(
    ("make", "code"),
    [(make, code) for _, make, code in BUILD_ERRORS],
    ids=[c[0] for c in BUILD_ERRORS],
)
def test_builder_refuses_what_a_bank_would(
    make: Callable[[], tuple[FileHeader, list[Batch]]], code: str
) -> None:
    header, batches = make()
    with pytest.raises(NachaError) as err:
        build_file(header, batches)
    assert err.value.code == code


# ----------------------------------------------------------------------------- round trips


def test_example_round_trips() -> None:
    parsed = parse_file(example_text())
    assert parsed == NachaFile(HEADER, [PAYROLL, INVOICES])
    assert parsed.batches[0].entries[1].addenda == "BONUS MARCH"
    assert build_file(parsed.header, parsed.batches) == example_text()


def test_parse_tolerates_crlf_and_a_missing_final_newline() -> None:
    text = example_text()
    expected = NachaFile(HEADER, [PAYROLL, INVOICES])
    assert parse_file(text.rstrip("\n")) == expected
    assert parse_file(text.replace("\n", "\r\n")) == expected


def test_return_entries_are_built_and_parsed_back() -> None:
    salary, bonus = PAYROLL.entries
    r01 = build_return_entry(salary, "R01", trace_sequence=17)
    r15 = build_return_entry(
        bonus, "R15", trace_sequence=3, date_of_death=date(2024, 3, 1), addenda_information="DCSD"
    )
    # back to the ODFI (12210515, check digit 5), under the RDFI's own trace number
    assert r01.transaction_code == 21 and r15.transaction_code == 31
    assert r01.receiving_dfi_routing == "122105155"
    assert r01.trace_number == "011000010000017"
    assert r01.amount_cents == 150000 and r01.dfi_account_number == "12345678"
    assert r15.addenda is None
    assert r01.return_addenda == ReturnAddenda(
        return_reason_code="R01",
        original_entry_trace_number="122105150000001",
        original_receiving_dfi="01100001",
    )
    # one return batch per returning RDFI
    from_jpm = build_return_batch(
        PAYROLL, [r15], batch_number=1, effective_entry_date=date(2024, 3, 20)
    )
    from_fed = build_return_batch(
        PAYROLL, [r01], batch_number=2, effective_entry_date=date(2024, 3, 20)
    )
    assert from_jpm.originating_dfi == "02100002" and from_fed.originating_dfi == "01100001"
    header = replace(HEADER, immediate_destination="122105155", immediate_origin="021000021")
    text = build_file(header, [from_jpm, from_fed])
    lines = text.splitlines()
    assert lines[3] == (
        "7" "99" "R15" "122105150000002" "240301" "02100002" + "DCSD".ljust(44)
        + "021000020000003"
    )  # fmt: skip
    assert lines[2][1:3] == "31" and lines[2][78] == "1"
    assert lines[7] == (
        "7" "99" "R01" "122105150000001" "      " "01100001" + " " * 44 + "011000010000017"
    )  # fmt: skip
    assert parse_file(text) == NachaFile(header, [from_jpm, from_fed])
    assert RETURN_REASON_CODES["R01"] == "Insufficient Funds"
    assert RETURN_REASON_CODES["R03"] == "No Account/Unable to Locate Account"


def test_return_helpers_refuse_nonsense() -> None:
    salary = PAYROLL.entries[0]
    with pytest.raises(NachaError) as err:
        build_return_entry(salary, "R99", trace_sequence=1)
    assert err.value.code == "invalid_return_code"
    returned = build_return_entry(salary, "R01", trace_sequence=1)
    with pytest.raises(NachaError) as err:
        build_return_entry(returned, "R01", trace_sequence=2)  # a return is not returned
    assert err.value.code == "invalid_transaction_code"
    with pytest.raises(NachaError) as err:
        build_return_entry(salary, "R01", trace_sequence=10_000_000)
    assert err.value.code == "field_overflow"
    with pytest.raises(NachaError) as err:
        build_return_batch(
            PAYROLL, [salary], batch_number=1, effective_entry_date=date(2024, 3, 20)
        )
    assert err.value.code == "invalid_transaction_code"
    other_rdfi = build_return_entry(PAYROLL.entries[1], "R02", trace_sequence=2)
    with pytest.raises(NachaError) as err:
        build_return_batch(
            PAYROLL, [returned, other_rdfi], batch_number=1, effective_entry_date=date(2024, 3, 20)
        )
    assert err.value.code == "trace_number_mismatch"


# ------------------------------------------------------------------------------ Hypothesis

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
DIGITS8 = st.text("0123456789", min_size=8, max_size=8)
ROUTING = DIGITS8.map(lambda first8: first8 + check_digit(first8))
CODES = {220: [22, 23, 32, 33], 225: [27, 28, 37, 38], 200: [22, 23, 27, 28, 32, 33, 37, 38]}


def alphanumeric(max_size: int, *, required: bool = False) -> st.SearchStrategy[str]:
    # the file cannot tell trailing spaces from padding, so values never end in one
    text = st.text(PRINTABLE, min_size=int(required), max_size=max_size).map(str.rstrip)
    return text.filter(bool) if required else text


@st.composite
def entries(draw: st.DrawFn, odfi: str, service_class: int) -> list[EntryDetail]:
    count = draw(st.integers(1, 6))
    sequences = draw(st.lists(st.integers(0, 9_999_999), min_size=count, max_size=count,
                              unique=True))  # fmt: skip
    result = []
    for sequence in sorted(sequences):
        code = draw(st.sampled_from(CODES[service_class]))
        prenote = code % 5 == 3  # 23, 28, 33, 38
        result.append(
            EntryDetail(
                transaction_code=code,
                receiving_dfi_routing=draw(ROUTING),
                dfi_account_number=draw(alphanumeric(17, required=True)),
                amount_cents=0 if prenote else draw(st.integers(0, MAX_AMOUNT_CENTS)),
                individual_id=draw(alphanumeric(15)),
                individual_name=draw(alphanumeric(22)),
                discretionary_data=draw(alphanumeric(2)),
                addenda=draw(st.none() | alphanumeric(80)),
                trace_number=f"{odfi}{sequence:07d}",
            )
        )
    return result


@st.composite
def batch(draw: st.DrawFn, batch_number: int) -> Batch:
    service_class = draw(st.sampled_from([200, 220, 225]))
    odfi = draw(DIGITS8)
    return Batch(
        service_class_code=service_class,
        company_name=draw(alphanumeric(16, required=True)),
        company_identification=draw(alphanumeric(10, required=True)),
        sec_code=draw(st.sampled_from(["PPD", "CCD"])),
        company_entry_description=draw(alphanumeric(10, required=True)),
        effective_entry_date=draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))),
        originating_dfi=odfi,
        batch_number=batch_number,
        entries=draw(entries(odfi, service_class)),
        company_discretionary_data=draw(alphanumeric(20)),
        company_descriptive_date=draw(alphanumeric(6)),
        settlement_date=draw(st.sampled_from(["", "001", "075", "366"])),
        originator_status_code=draw(st.sampled_from(["0", "1", "2"])),
        message_authentication_code=draw(alphanumeric(19)),
    )


@st.composite
def nacha_files(draw: st.DrawFn) -> NachaFile:
    numbers = draw(st.lists(st.integers(0, 9_999_999), min_size=1, max_size=4, unique=True))
    header = FileHeader(
        immediate_destination=draw(ROUTING),
        immediate_origin=draw(ROUTING),
        destination_name=draw(alphanumeric(23)),
        origin_name=draw(alphanumeric(23)),
        file_creation=draw(
            st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59))
        ).replace(second=0, microsecond=0),
        file_id_modifier=draw(st.sampled_from(string.ascii_uppercase + string.digits)),
        reference_code=draw(alphanumeric(8)),
    )
    return NachaFile(header, [draw(batch(n)) for n in sorted(numbers)])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(nacha_files())
def test_random_files_round_trip(nacha: NachaFile) -> None:
    text = build_file(nacha.header, nacha.batches)
    lines = text.splitlines()
    assert all(len(line) == 94 for line in lines)
    assert len(lines) % 10 == 0
    assert parse_file(text) == nacha
    all_entries = [e for b in nacha.batches for e in b.entries]
    control = next(line for line in lines if line[0] == "9")
    debits = sum(e.amount_cents for e in all_entries if e.transaction_code in (27, 28, 37, 38))
    credits = sum(e.amount_cents for e in all_entries if e.transaction_code in (22, 23, 32, 33))
    records = 1 + sum(2 + len(b.entries) for b in nacha.batches) + 1
    records += sum(e.addenda is not None for e in all_entries)
    assert (int(control[31:43]), int(control[43:55])) == (debits, credits)
    assert int(control[21:31]) == sum(int(e.receiving_dfi_routing[:8]) for e in all_entries) % (
        10**10
    )
    assert int(control[7:13]) == len(lines) // 10 == (records + 9) // 10
    assert lines[records:] == ["9" * 94] * (len(lines) - records)


@settings(max_examples=75, suppress_health_check=[HealthCheck.too_slow])
@given(nacha_files(), st.data())
def test_random_returns_round_trip(nacha: NachaFile, data: st.DataObject) -> None:
    original = nacha.batches[0]
    by_rdfi: dict[str, list[EntryDetail]] = {}
    for sequence, entry in enumerate(original.entries, start=1):
        returned = build_return_entry(
            entry,
            data.draw(st.sampled_from(sorted(RETURN_REASON_CODES))),
            trace_sequence=sequence,
            date_of_death=data.draw(st.none() | st.dates(date(2000, 1, 1), date(2099, 12, 31))),
            addenda_information=data.draw(alphanumeric(44)),
        )
        by_rdfi.setdefault(returned.trace_number[:8], []).append(returned)
    batches = [
        build_return_batch(original, group, batch_number=n, effective_entry_date=date(2030, 1, 2))
        for n, group in enumerate(by_rdfi.values(), start=1)
    ]
    parsed = parse_file(build_file(nacha.header, batches))
    assert parsed.batches == tuple(batches)
    for returned_batch in parsed.batches:
        for entry in returned_batch.entries:
            assert entry.return_addenda is not None
            assert entry.transaction_code in (21, 26, 31, 36)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(nacha_files(), st.data())
def test_any_changed_amount_digit_is_caught(nacha: NachaFile, data: st.DataObject) -> None:
    lines = build_file(nacha.header, nacha.batches).splitlines()
    entry_lines = [i for i, line in enumerate(lines) if line[0] == "6"]
    i = data.draw(st.sampled_from(entry_lines))
    position = data.draw(st.integers(29, 38))  # amount, 0-based
    old = lines[i][position]
    new = data.draw(st.sampled_from([d for d in string.digits if d != old]))
    lines[i] = lines[i][:position] + new + lines[i][position + 1 :]
    with pytest.raises(NachaError) as err:
        parse_file("\n".join(lines))
    prenote = lines[i][1:3] in ("23", "28", "33", "38")
    assert err.value.code == ("prenote_amount" if prenote else "batch_totals_mismatch")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_arbitrary_damage_raises_only_nacha_error(data: st.DataObject) -> None:
    text = example_text()
    position = data.draw(st.integers(0, len(text) - 1))
    damage = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    char = data.draw(st.characters(max_codepoint=0x2FF))
    if damage == "replace":
        text = text[:position] + char + text[position + 1 :]
    elif damage == "delete":
        text = text[:position] + text[position + 1 :]
    else:
        text = text[:position] + char + text[position:]
    try:
        parse_file(text)
    except NachaError as err:
        assert err.line is not None and 1 <= err.line <= 21
        assert err.code
    # no other exception type may escape: a bank's parser must not crash on garbage


# ---------------------------------------------------------------------- validator errors

Lines = list[str]


def put(line: int, column: int, text: str) -> Callable[[Lines], Lines]:
    """Overwrite characters at a 1-based line and column, as positions are printed in the Rules."""

    def change(lines: Lines) -> Lines:
        old = lines[line - 1]
        lines[line - 1] = old[: column - 1] + text + old[column - 1 + len(text) :]
        assert len(lines[line - 1]) == len(old)
        return lines

    return change


def delete(*numbers: int) -> Callable[[Lines], Lines]:
    return lambda lines: [x for i, x in enumerate(lines, start=1) if i not in numbers]


def swap(a: int, b: int) -> Callable[[Lines], Lines]:
    def change(lines: Lines) -> Lines:
        lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
        return lines

    return change


def edit(line: int, how: Callable[[str], str]) -> Callable[[Lines], Lines]:
    def change(lines: Lines) -> Lines:
        lines[line - 1] = how(lines[line - 1])
        return lines

    return change


# Line map of the example: 1 file header; 2 batch header (220); 3, 4 entries (4 has an
# addenda); 5 addenda; 6 batch control; 7 batch header (225); 8, 9 entries; 10 batch control;
# 11 file control; 12-20 padding.
CORRUPTIONS: list[tuple[str, Callable[[Lines], Lines], str, int, str | None]] = [
    # (name, corruption, code, line, record type)
    ("93-char line", edit(3, lambda s: s[:93]), "record_length", 3, "6"),
    ("95-char line", edit(3, lambda s: s + " "), "record_length", 3, "6"),
    ("blank line", lambda ls: [*ls[:3], "", *ls[3:]], "record_length", 4, ""),
    ("unknown record type", put(3, 1, "4"), "unknown_record_type", 3, "4"),
    ("entry before batch header", swap(2, 3), "sequence", 2, "6"),
    ("batch control missing", delete(6), "sequence", 6, "5"),
    ("two file headers", lambda ls: [ls[0], *ls], "sequence", 2, "1"),
    ("record after file control", put(12, 1, "6" + "0" * 93), "sequence", 12, "6"),
    ("padding before file control", put(11, 1, "9" * 94), "sequence", 11, "9"),
    ("file control missing", delete(*range(11, 21)), "truncated", 10, None),
    ("missing padding", delete(*range(12, 21)), "blocking_factor", 11, "9"),
    ("one padding record short", delete(20), "blocking_factor", 19, "9"),
    ("excess padding", lambda ls: ls + ["9" * 94] * 10, "excess_padding", 30, "9"),
    ("damaged padding", put(15, 94, "8"), "invalid_padding", 15, "9"),
    ("amount digit changed", put(3, 39, "1"), "batch_totals_mismatch", 6, "8"),
    ("debit amount changed", put(9, 30, "1"), "batch_totals_mismatch", 10, "8"),
    ("letter in amount", put(3, 35, "O"), "non_numeric_field", 3, "6"),
    ("bad routing check digit", put(3, 12, "6"), "bad_routing_check_digit", 3, "6"),
    ("bad destination check digit", put(1, 13, "2"), "bad_routing_check_digit", 1, "1"),
    ("bad origin check digit", put(1, 23, "6"), "bad_routing_check_digit", 1, "1"),
    ("batch entry hash wrong", put(6, 20, "4"), "entry_hash_mismatch", 6, "8"),
    ("batch entry count wrong", put(6, 10, "4"), "entry_count_mismatch", 6, "8"),
    ("batch control class", put(6, 2, "200"), "service_class_mismatch", 6, "8"),
    ("batch control company", put(6, 45, "9"), "company_id_mismatch", 6, "8"),
    ("batch control ODFI", put(6, 87, "6"), "odfi_mismatch", 6, "8"),
    ("batch control number", put(6, 94, "9"), "batch_number_mismatch", 6, "8"),
    ("file batch count wrong", put(11, 7, "3"), "batch_count_mismatch", 11, "9"),
    ("file block count wrong", put(11, 13, "3"), "block_count_mismatch", 11, "9"),
    ("file entry count wrong", put(11, 21, "6"), "entry_count_mismatch", 11, "9"),
    ("file entry hash wrong", put(11, 31, "0"), "entry_hash_mismatch", 11, "9"),
    ("file debit total wrong", put(11, 43, "8"), "file_totals_mismatch", 11, "9"),
    ("file credit total wrong", put(11, 55, "1"), "file_totals_mismatch", 11, "9"),
    ("debit in credits-only batch", put(3, 2, "27"), "service_class_mismatch", 3, "6"),
    ("credit in debits-only batch", put(8, 2, "22"), "service_class_mismatch", 8, "6"),
    ("unknown service class", put(2, 2, "210"), "invalid_service_class", 2, "5"),
    ("unknown transaction code", put(3, 2, "99"), "invalid_transaction_code", 3, "6"),
    ("prenote with an amount", put(3, 2, "23"), "prenote_amount", 3, "6"),
    ("WEB batch", put(2, 51, "WEB"), "invalid_sec_code", 2, "5"),
    ("impossible effective date", put(2, 70, "241332"), "invalid_date", 2, "5"),
    ("impossible creation time", put(1, 30, "2460"), "invalid_date", 1, "1"),
    ("blank company name", put(2, 5, " " * 16), "missing_field", 2, "5"),
    ("blank account number", put(3, 13, " " * 17), "missing_field", 3, "6"),
    ("non-ASCII name", put(3, 55, "É"), "invalid_character", 3, "6"),
    ("destination without blank", put(1, 4, "0"), "invalid_field", 1, "1"),
    ("record size 095", put(1, 35, "095"), "invalid_field", 1, "1"),
    ("blocking factor 20", put(1, 38, "20"), "blocking_factor", 1, "1"),
    ("priority code 02", put(1, 2, "02"), "invalid_field", 1, "1"),
    ("format code 2", put(1, 40, "2"), "invalid_field", 1, "1"),
    ("originator status 3", put(2, 79, "3"), "invalid_field", 2, "5"),
    ("addenda indicator 2", put(3, 79, "2"), "invalid_field", 3, "6"),
    ("lower-case file id modifier", put(1, 34, "a"), "invalid_field", 1, "1"),
    ("bad settlement date", put(2, 76, "367"), "invalid_field", 2, "5"),
    ("reserved field used", put(6, 74, "X"), "invalid_field", 6, "8"),
    ("batch numbers out of order", put(7, 94, "1"), "batch_number_order", 7, "5"),
    ("trace numbers out of order", swap(8, 9), "trace_number_order", 9, "6"),
    ("trace not from the ODFI", put(8, 80, "9"), "trace_number_mismatch", 8, "6"),
    ("indicator 1 without addenda", put(3, 79, "1"), "addenda_indicator_mismatch", 3, "6"),
    ("addenda but indicator 0", put(4, 79, "0"), "addenda_indicator_mismatch", 5, "7"),
    ("two addenda", lambda ls: [*ls[:5], ls[4], *ls[5:-1]], "too_many_addenda", 6, "7"),
    ("addenda type 06", put(5, 2, "06"), "invalid_addenda_type", 5, "7"),
    ("addenda sequence 2", put(5, 87, "2"), "addenda_sequence", 5, "7"),
    ("addenda for another entry", put(5, 94, "9"), "addenda_sequence", 5, "7"),
    ("return addenda on a credit", put(5, 2, "99R01"), "addenda_type_mismatch", 5, "7"),
    ("batch without entries", delete(8, 9), "empty_batch", 8, "8"),
]


@pytest.mark.parametrize(
    ("corrupt", "code", "line", "record_type"),
    [c[1:] for c in CORRUPTIONS],
    ids=[c[0] for c in CORRUPTIONS],
)
def test_validator_pinpoints_each_corruption(
    corrupt: Callable[[Lines], Lines], code: str, line: int, record_type: str | None
) -> None:
    # the pristine file parses, so the error below is due to the corruption alone
    parse_file(example_text())
    text = "\n".join(corrupt(example_lines())) + "\n"
    with pytest.raises(NachaError) as err:
        parse_file(text)
    assert (err.value.code, err.value.line) == (code, line), str(err.value)
    assert err.value.record_type == (record_type or None)
    assert isinstance(err.value, ValueError)
    assert f"line {line}" in str(err.value)


def test_empty_input_and_a_file_without_batches() -> None:
    for text in ("", "\n"):
        with pytest.raises(NachaError) as err:
            parse_file(text)
        assert err.value.code == "empty_file"
    lines = example_lines()
    with pytest.raises(NachaError) as err:
        parse_file("\n".join([lines[0], "9" + "0" * 54 + " " * 39, *["9" * 94] * 8]))
    assert (err.value.code, err.value.line) == ("no_batches", 2)


def _return_file_lines() -> Lines:
    returned = build_return_entry(PAYROLL.entries[0], "R02", trace_sequence=1)
    batch_ = build_return_batch(
        PAYROLL, [returned], batch_number=1, effective_entry_date=date(2024, 3, 20)
    )
    return build_file(HEADER, [batch_]).splitlines()


@pytest.mark.parametrize(
    ("corrupt", "code", "line"),
    [
        (put(4, 4, "R00"), "invalid_return_code", 4),
        (put(4, 2, "05"), "addenda_type_mismatch", 4),
        (put(4, 94, "2"), "addenda_sequence", 4),
        (put(4, 22, "240231"), "invalid_date", 4),
        # the return entry loses its addenda (indicator 0, one padding record more)
        (lambda ls: [*put(3, 79, "0")(ls)[:3], *ls[4:], "9" * 94], "missing_return_addenda", 3),
    ],
    ids=["unknown R-code", "05 addenda on a return", "addenda trace", "date of death", "no 99"],
)
def test_validator_checks_return_entries(
    corrupt: Callable[[Lines], Lines], code: str, line: int
) -> None:
    lines = _return_file_lines()
    assert lines[3][:6] == "799R02"
    with pytest.raises(NachaError) as err:
        parse_file("\n".join(corrupt(lines)))
    assert (err.value.code, err.value.line) == (code, line)

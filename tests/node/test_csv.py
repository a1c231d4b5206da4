"""Batch files as an operator uses them: `riskmesh query|report|retract --file` and
`riskmesh reports list|export` against a real node, and the reader on its own."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.csvbatch import QUERY_COLUMNS, REPORT_COLUMNS, BatchFileError, read_rows
from node.localnet import LocalNet, riskmesh, wait_until

pytestmark = [pytest.mark.e2e]


# -- the reader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"kind,value\nphone,13800138000\n",
        codecs.BOM_UTF8 + b"kind,value\r\nphone,13800138000\r\n",
        b"Kind;Value\n\nphone;13800138000\n",
        "kind,value\nphone,13800138000\n".encode("utf-16"),
    ],
    ids=["plain", "bom-crlf", "semicolon-blank-line", "utf16"],
)
def test_reads_what_spreadsheets_write(data: bytes) -> None:
    [row] = read_rows(data, QUERY_COLUMNS, "f.csv")
    assert row.item == {"kind": "phone", "value": "13800138000"}
    assert row.row == (3 if b"\n\n" in data else 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty; it needs a header row: kind,value"),
        (b"phone,13800138000\n", "the first row is data; add a header row"),
        (b"kind,val\nphone,1\n", "missing value"),
        (b"kind,value,colour\nphone,1,red\n", "unknown column 'colour'"),
        (b"kind,value\nphone,1,2\n", "row 2 has 3 fields"),
        (b"kind,value\n", "no rows under the header"),
        (b"kind,value\nphone,\xff\xfe13800\n", "line 2 is not UTF-8 text"),
    ],
)
def test_bad_files_get_one_line(data: bytes, message: str) -> None:
    with pytest.raises(BatchFileError) as e:
        read_rows(data, QUERY_COLUMNS, "f.csv")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_report_columns_and_numbers() -> None:
    data = b"kind;value;category;severity;ttl_days;ref\nphone;138;other;4;;c1\n"
    [row] = read_rows(data, REPORT_COLUMNS, "r.csv")
    assert row.item == {
        "kind": "phone",
        "value": "138",
        "category": "other",
        "severity": 4,
        "ref": "c1",
    }


# -- the CLI on a running node ---------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNet, Path]]:
    root = tmp_path_factory.mktemp("csv")
    net = LocalNet(root, ["bank-a"], env={"RISKMESH_API_MAX_BATCH": "3"})
    try:
        net.found("alliance", ["bank-a"], ["bank-a"])
        net.start()
        wait_until("a key", lambda: net.status("bank-a")["epochs"], 20)
        yield net, net["bank-a"].home
    finally:
        net.stop()


def cli(*args: str) -> tuple[int, str, str]:
    r = riskmesh(*args)
    return r.returncode, r.stdout, r.stderr


def test_report_query_retract_files(node: tuple[LocalNet, Path], tmp_path: Path) -> None:
    _, home = node
    reports = tmp_path / "cases.csv"
    reports.write_bytes(
        codecs.BOM_UTF8 + b"kind;value;category;severity\n"
        b"phone;+86 138 0013 8001;telecom_fraud;4\n"
        b"phone;12;telecom_fraud;4\n"
        b"email;a@bad.example.cn;phishing;3\n"
        b"email;b@bad.example.cn;phishing;3\n"
        b"email;c@bad.example.cn;not_a_category;3\n"
    )
    code, out, err = cli("report", "--home", str(home), "--file", str(reports), "--json")
    assert code == 1, err  # two rows refused
    rows = json.loads(out)
    assert [(r["row"], "error" in r) for r in rows] == [
        (2, False),
        (3, True),
        (4, False),
        (5, False),
        (6, True),
    ]
    assert rows[1]["error"]["code"] == "invalid_value" and "value" not in rows[1]
    # the valid rows were published, in batches of api.max_batch = 3
    queries = tmp_path / "q.csv"
    queries.write_text(
        "kind,value\nphone,13800138001\nemail,A@bad.example.cn\nemail,d@ok.example.com\n"
        "email,b@bad.example.cn\nfax,1\n"
    )
    code, out, err = cli("query", "--home", str(home), "--file", str(queries), "--echo-value")
    assert code == 1  # the fax row is refused
    lines = out.splitlines()
    assert lines[0].startswith("row 2\tphone\t13800138001\tMATCH")
    assert lines[2].startswith("row 4\temail\td@ok.example.com\tno match")
    assert lines[4].startswith("row 6\tfax\t1\terror unknown_kind")
    assert "5 row(s), 1 refused" in err
    # own reports: listed without values, exported with them, and read back
    code, out, _ = cli("reports", "list", "--home", str(home), "--json")
    listed = json.loads(out)
    assert len(listed) == 3 and all("value" not in r for r in listed)
    export = tmp_path / "ours.csv"
    code, _, err = cli("reports", "export", "--home", str(home), "--out", str(export))
    assert code == 0 and "exported 3" in err
    text = export.read_text()
    assert text.startswith("kind,value,category,severity,ttl_days\n")
    assert "+8613800138001" in text and "a@bad.example.cn" in text
    # retract from a file, then nothing is live
    retracts = tmp_path / "r.csv"
    retracts.write_text(
        "kind,value,reason\n"
        + "".join(
            f"{line.split(',')[0]},{line.split(',')[1]},resolved\n"
            for line in text.splitlines()[1:]
        )
    )
    code, out, err = cli("retract", "--home", str(home), "--file", str(retracts))
    assert code == 0, out + err
    code, out, _ = cli("reports", "list", "--home", str(home), "--json")
    assert json.loads(out) == []


def test_bad_file_is_one_line_and_exit_1(node: tuple[LocalNet, Path], tmp_path: Path) -> None:
    _, home = node
    f = tmp_path / "latin1.csv"
    f.write_bytes("kind,value\nemail,josé@example.com\n".encode("latin-1"))
    code, out, err = cli("query", "--home", str(home), "--file", str(f))
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and "save the file as CSV UTF-8" in err


def test_choices_are_checked_before_sending(node: tuple[LocalNet, Path]) -> None:
    _, home = node
    code, _, err = cli("query", "--home", str(home), "--kind", "fax", "--value", "1")
    assert code == 2 and "'fax' is not one of" in err
    code, _, err = cli(
        "report", "--home", str(home), "--kind", "phone", "--value", "1", "--category", "spam"
    )
    assert code == 2 and "'spam' is not one of" in err


def test_piped_tables_are_not_cut(node: tuple[LocalNet, Path]) -> None:
    net, home = node
    code, out, _ = cli("status", "--home", str(home), "--long")
    assert code == 0
    member_id = net.status("bank-a")["member"]["id"]
    assert member_id in out  # 52 characters, not cut at 80 columns
    assert max(len(line) for line in out.splitlines()) > 80

"""Passwords never shown: every form a PostgreSQL password takes in a store URL (user info of
any length, a ?password= query parameter, %-escapes, quotes, backslashes, non-ASCII letters),
$PGPASSWORD, and the forms a remembered password takes once repr()- or JSON-escaped. Each
URL is also read back by SQLAlchemy, which the store uses: what it would send as the
password must be gone, and everything else (user, host, port, database) must be kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from runner.redact import MASK, mask_url, redact

# (URL, the password SQLAlchemy reads from it)
URLS = [
    ("postgresql+psycopg://owner:p@db.example:5432/sweeps", "p"),  # one character
    ("postgresql+psycopg://owner:pw@db.example:5432/sweeps", "pw"),  # two
    ("postgresql+psycopg://owner:hunter2-long@db.example:5432/sweeps", "hunter2-long"),
    ("postgresql+psycopg://owner:p%40ss%2Fw%3Ard@db.example/sweeps", "p@ss/w:rd"),  # %-escaped
    ('postgresql+psycopg://owner:qu"ote\\slash@db.example/sweeps', 'qu"ote\\slash'),
    ("postgresql+psycopg://owner:pässwörd-ü@db.example/sweeps", "pässwörd-ü"),
    ("postgresql+psycopg://owner:has/slash?and#hash@db.example/sweeps", "has/slash?and#hash"),
    ("postgresql+psycopg://owner:two words@db.example/sweeps", "two words"),
    ("postgresql+psycopg://owner@db.example/sweeps?password=QueryPw1", "QueryPw1"),
    ("postgresql+psycopg://owner@db.example/sweeps?password=q", "q"),
    (
        "postgresql+psycopg://owner@db.example/sweeps?sslmode=require&password=x%22y%C3%A9&"
        "connect_timeout=5",
        'x"yé',
    ),
]


def _password(url: str) -> str | None:
    parsed = sa.engine.make_url(url)
    return parsed.password or parsed.query.get("password")  # type: ignore[return-value]


@pytest.mark.parametrize(("url", "password"), URLS)
def test_mask_url_hides_every_password_form(url: str, password: str) -> None:
    assert _password(url) == password  # the form is one SQLAlchemy really reads
    masked = mask_url(url)
    shown = sa.engine.make_url(masked)
    before = sa.engine.make_url(url)
    assert (shown.username, shown.host, shown.port, shown.database) == (
        before.username,
        before.host,
        before.port,
        before.database,
    )
    assert _password(masked) == MASK
    if len(password) >= 3:  # shorter ones are letters of every word: the URL form is masked
        assert password not in masked
        assert password not in redact(f"error: could not log in with {password}")
    assert {k: v for k, v in shown.query.items() if k != "password"} == {
        k: v for k, v in before.query.items() if k != "password"
    }


def test_mask_url_keeps_urls_without_passwords() -> None:
    for url in (
        "sqlite:////tmp/x.db",
        "sqlite:///relative.db",
        "postgresql+psycopg://owner@db.example:5432/sweeps",
        "postgresql+psycopg://db.example:5432/sweeps?sslmode=require",
        "https://hooks.example.com/services/T0/B0/X",
        "not a url",
    ):
        assert mask_url(url) == url


def test_an_at_sign_in_the_password_is_masked_however_it_is_read() -> None:
    """urllib reads the password up to the last '@' of the host part, SQLAlchemy up to the
    first: neither reading may leave a piece of it."""
    masked = mask_url("postgresql://owner:first@second@db.example/sweeps")
    assert masked == "postgresql://owner:***@db.example/sweeps"


def test_short_passwords_are_masked_in_urls_in_free_text() -> None:
    text = (
        "OperationalError: connection to postgresql://owner:x@db.example/sweeps failed; "
        "retrying postgresql+psycopg://owner:ab@db.example/sweeps?password=c&sslmode=require"
    )
    shown = redact(text)
    assert "owner:x@" not in shown and "owner:ab@" not in shown and "password=c&" not in shown
    assert shown == (
        "OperationalError: connection to postgresql://owner:***@db.example/sweeps failed; "
        "retrying postgresql+psycopg://owner:***@db.example/sweeps?password=***&sslmode=require"
    )


def test_libpq_and_dict_forms_in_free_text() -> None:
    shown = redact(
        "dsn: host=db password=LibpqPw1 dbname=sweeps; kwargs {'password': 'Dict\\'Pw'}; "
        'json {"password": "Json\\"Pw"}; sslpassword=KeyPw'
    )
    for secret in ("LibpqPw1", "Dict", "Json", "KeyPw"):
        assert secret not in shown, shown
    assert "host=db password=*** dbname=sweeps" in shown


def test_a_remembered_password_is_masked_in_every_escaped_form() -> None:
    password = 'Rémi"s\\pass'
    mask_url(f"postgresql://owner:{password}@db.example/sweeps")  # seen once, remembered
    for text in (
        f"plain {password} text",
        json.dumps({"detail": f"failed with {password}"}),  # "Rémi\"s\\pass" as \u00e9
        json.dumps({"detail": password}, ensure_ascii=False),
        repr(f"failed with {password}"),  # 'Rémi"s\\pass'
        "encoded R%C3%A9mi%22s%5Cpass",
    ):
        assert "pass" not in redact(text), (text, redact(text))


def test_pgpassword_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "EnvSecret-42")
    assert redact("psql: error: password EnvSecret-42 rejected") == (
        "psql: error: password *** rejected"
    )
    monkeypatch.setenv("PGPASSWORD", "zq")  # too short to replace in free text ...
    assert redact("frozen quiz") == "frozen quiz"
    assert redact("env: PGPASSWORD=zq HOME=/root") == "env: PGPASSWORD=*** HOME=/root"  # ... but


def test_store_urls_the_cli_prints_are_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`sweepscope ls` names the store in its error and its log file: with the password in
    the query, too."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)  # the log file goes to ./.sweepscope/logs
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none?password=CliQueryPw"  # nothing there
    code = main(["ls", "--store", url])
    out, err = capsys.readouterr()
    assert code != 0
    assert "CliQueryPw" not in out + err
    assert "password=***" in out + err, out + err
    (log,) = (tmp_path / ".sweepscope" / "logs").iterdir()
    assert "CliQueryPw" not in log.read_text() and "password=***" in log.read_text()

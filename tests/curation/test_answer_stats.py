"""The compiled answer figures (line and paragraph repetition, marks, brackets) against the SQL the quality step
used to compute them."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from curation.answer_stats import BRACKETS, answer_stats
from tests.conftest import sample_texts


def sql_answer_stats(texts: list[str | None], min_chars: int, min_run: int, min_para_run: int) -> dict[str, list]:
    """The figures as the quality step's SQL defined them (lists built, filtered and compared by DuckDB)."""
    def loop(items: str, run: int) -> str:
        def runs(n: int, chars: int) -> str:
            same = " AND ".join(f"{items}[k] = {items}[k + {j}]" for j in range(1, n))
            return (f"list_bool_or(list_transform(range(1, len({items}) - {n - 2}), lambda k: "
                    f"length(wtrim({items}[k])) >= {chars} AND {same}))")
        return (f"coalesce(CASE WHEN len({items}) - len(list_distinct({items})) >= {run - 1} "
                f"THEN {runs(run, min_chars)} OR {runs(2 * run, 1)} ELSE false END, false)")

    def count(needle: str) -> str:
        return f"((length(o) - length(replace(o, '{needle}', ''))) // {len(needle)})"

    con = duckdb.connect()
    try:
        con.execute("CREATE MACRO wtrim(x) AS trim(x, chr(9) || chr(10) || chr(12) || chr(13) || ' ')")
        con.register("t", pa.table({"i": range(len(texts)), "o": pa.array(texts, pa.string())}))
        rows = con.execute(f"""
            WITH l AS (
                SELECT i, o, regexp_replace(o, '[^\\p{{S}}\\p{{N}}\\p{{P}}]+', '', 'g') AS o_marks,
                       list_filter(string_split(o, chr(10)), lambda x: length(wtrim(x)) > 0) AS lines,
                       list_filter(string_split_regex(o, '\\n\\s*\\n'), lambda x: length(wtrim(x)) > 0) AS paras
                FROM t)
            SELECT len(list_filter(lines, lambda x: length(wtrim(x)) >= {min_chars})),
                   len(list_filter(lines, lambda x: length(wtrim(x)) >= {min_chars}))
                     - len(list_distinct(list_filter(lines, lambda x: length(wtrim(x)) >= {min_chars}))),
                   {loop('lines', min_run)}, {loop('paras', min_para_run)},
                   length(regexp_replace(o_marks, '[^\\p{{S}}]+', '', 'g')),
                   length(regexp_replace(o_marks, '[^\\p{{N}}]+', '', 'g')),
                   length(regexp_replace(o_marks, '[^\\p{{P}}]+', '', 'g')),
                   {count('(')} + {count('（')}, {count(')')} + {count('）')},
                   {count('[')}, {count(']')}, {count('{')}, {count('}')}
            FROM l ORDER BY i""").fetchall()
    finally:
        con.close()
    names = ("n_long_lines", "dup_long_lines", "line_loop", "para_loop", "n_sym", "n_dig", "n_pun", *BRACKETS)
    return {k: [r[j] for r in rows] for j, k in enumerate(names)}


LOOP = "The same line of the screenplay.\n"
CRAFTED = [
    None, "", "\n\n\n", "one line", "  \t \r\n  ",
    LOOP * 4, LOOP * 3 + "other\n" + LOOP, "short\n" * 8, "ab\n" * 7 + "ab",
    "para one is here\n\npara one is here\n \t\n\npara one is here\n\n\npara one is here",
    "para\n \n \nnext\n\t\n", "x\n\ny\r\n\r\nz", "a\n\n", "\n\na", "lead\n  \n  indented para\n\n  indented para\n\n  indented para",
    "行行重行行，与君生别离。\n" * 5, "零一二三四五六七八九\n" * 4, "é" * 9 + "\n" + ("e\u0301" * 5 + "\n") * 4,
    "trailing spaces   \ntrailing spaces\ntrailing spaces   \ntrailing spaces   \ntrailing spaces   \n",
    "\f form feed line here\n" * 4, ("NAME:\nA line that the speaker says twice.\n") * 4,
    "x" * 40 + "\n" + ("y" * 40 + "\n") * 3 + "x" * 40,
    "f(x) = [a, {b}] (（全角）) $5 + 3% ≥ ½ ¥20 ©™ «quoted» ¿qué? 第３章 ٣ — ‹› 🙂 ↑ ™ ＄ ²",
    "unbalanced ((( and ]]] and }}} and （（",
]


def test_crafted_texts_match_the_sql() -> None:
    for params in ((10, 4, 3), (1, 2, 2), (30, 3, 2)):
        got = {k: v.to_pylist() for k, v in answer_stats(pa.array(CRAFTED, pa.string()), *params).items()}
        want = sql_answer_stats(CRAFTED, *params)
        for k in want:
            # NULL text: the SQL's counts are NULL and its loops false (coalesce); the step never gives NULL text
            assert [w for w, t in zip(want[k], CRAFTED) if t is not None] == [g for g, t in zip(got[k], CRAFTED) if t is not None], (params, k)
        assert got["n_long_lines"][0] is None
        marks = CRAFTED.index("unbalanced ((( and ]]] and }}} and （（") - 1
        assert min(got[k][marks] for k in ("n_sym", "n_dig", "n_pun", *BRACKETS)) > 0
    fired = answer_stats(pa.array([LOOP * 4, "para one is here\n\n" * 3, "short\n" * 8], pa.string()), 10, 4, 3)
    assert fired["line_loop"].to_pylist() == [True, False, True] and fired["para_loop"].to_pylist()[1] is True


def test_bundled_answers_match_the_sql() -> None:
    """The bundled sample's answers, and its answers joined in groups (long texts with repeated lines), in one
    array of over a thousand texts (two threads)."""
    answers = sample_texts(("output",))
    texts = answers + ["\n\n".join(answers[k:k + 6]) for k in range(0, len(answers), 3)]
    texts += ["\n".join([answers[k]] * 5) for k in range(0, len(answers), 50)]
    assert len(texts) > 1000
    got = {k: v.to_pylist() for k, v in answer_stats(pa.chunked_array([texts[:500], texts[500:]], pa.string()), 10, 4, 3).items()}
    assert got == sql_answer_stats(texts, 10, 4, 3)
    assert any(got["line_loop"]) and any(got["para_loop"]) and any(got["dup_long_lines"])
